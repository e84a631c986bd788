//! Each changed call's record from its bounded summary (issue 29): the batch's new events
//! are folded into the summary kept on the call's row, so a call's other events are not
//! read again. A call written before summaries were kept has its events read once.

use std::collections::{HashMap, HashSet};

use anyhow::Context;
use chrono::NaiveDate;
use deadpool_postgres::GenericClient;
use uuid::Uuid;

use super::calls::{Before, ids_and_months};
use super::contacts;
use crate::domain::{
    CallFold, ChangedCall, IncomingEvent, PhoneNumber, Region, Stamp, StoredEvent, TenantId,
};

/// The batch being written: its events, the call of each, whether each was new, and the
/// calls it creates.
pub(super) struct Batch<'a> {
    pub events: &'a [IncomingEvent],
    pub calls: &'a [(Uuid, NaiveDate)],
    pub new: &'a [bool],
    pub created: &'a HashSet<Uuid>,
}

/// What a call's row keeps besides its record: how many events, and their summary.
pub(super) struct Kept {
    pub events: i32,
    pub summary: CallFold,
}

/// The records of `calls` (each gained an event in `batch`), with their contacts.
pub(super) async fn summarize(
    client: &impl GenericClient,
    tenant: TenantId,
    region: Region,
    calls: &[(Uuid, NaiveDate)],
    before: &HashMap<Uuid, Before>,
    batch: &Batch<'_>,
) -> anyhow::Result<(Vec<ChangedCall>, Vec<Kept>)> {
    let unsummarized: Vec<(Uuid, NaiveDate)> = calls
        .iter()
        .filter(|(id, _)| {
            !batch.created.contains(id) && before.get(id).is_none_or(|b| b.summary.is_none())
        })
        .copied()
        .collect();
    let mut kept: HashMap<Uuid, Kept> = read_events(client, tenant, &unsummarized).await?;
    let read: HashSet<Uuid> = kept.keys().copied().collect();
    for ((incoming, (call, _)), new) in batch.events.iter().zip(batch.calls).zip(batch.new) {
        if !new || read.contains(call) {
            continue;
        }
        let held = kept.entry(*call).or_insert_with(|| match before.get(call) {
            Some(b) => Kept {
                events: i32::try_from(b.events).unwrap_or(i32::MAX),
                summary: b.summary.clone().unwrap_or_default(),
            },
            None => Kept {
                events: 0,
                summary: CallFold::default(),
            },
        });
        let stamp = Stamp::new(incoming.at(), &incoming.event.fingerprint());
        held.summary.add(&stamp, &incoming.event);
        held.events = held.events.saturating_add(1);
    }

    let mut changed = Vec::with_capacity(calls.len());
    let mut kept_in_order = Vec::with_capacity(calls.len());
    for &(id, _) in calls {
        let held = kept.remove(&id).context("a changed call has no events")?;
        let summary = held
            .summary
            .summary()
            .context("a changed call has no events")?;
        changed.push(ChangedCall {
            id,
            report_call_id: 0,
            contact_id: summary.lookup.as_ref().and_then(|l| l.contact_id.clone()),
            summary,
        });
        kept_in_order.push(held);
    }
    match_contacts(client, tenant, region, &mut changed).await?;
    Ok((changed, kept_in_order))
}

/// The summaries of calls kept before summaries were: made from all their events (the
/// batch's included, which this transaction sees).
async fn read_events(
    client: &impl GenericClient,
    tenant: TenantId,
    calls: &[(Uuid, NaiveDate)],
) -> anyhow::Result<HashMap<Uuid, Kept>> {
    if calls.is_empty() {
        return Ok(HashMap::new());
    }
    let (ids, months) = ids_and_months(calls);
    let rows = client
        .query(
            "SELECT e.call_id, e.at, e.fingerprint, e.event
             FROM unnest($2::uuid[], $3::date[]) AS q (call_id, month)
             JOIN call_events e ON e.tenant_id = $1 AND e.month = q.month AND e.call_id = q.call_id",
            &[&tenant.0, &ids, &months],
        )
        .await
        .context("reading call events")?;
    let mut events: HashMap<Uuid, Vec<StoredEvent>> = HashMap::new();
    for r in rows {
        let fingerprint: Vec<u8> = r.get(2);
        events.entry(r.get(0)).or_default().push(StoredEvent {
            at: r.get(1),
            fingerprint: fingerprint.try_into().unwrap_or([0; 32]),
            event: serde_json::from_value(r.get(3)).context("a stored event does not parse")?,
        });
    }
    Ok(events
        .into_iter()
        .map(|(id, stored)| {
            let kept = Kept {
                events: i32::try_from(stored.len()).unwrap_or(i32::MAX),
                summary: CallFold::of(&stored),
            };
            (id, kept)
        })
        .collect())
}

/// The contact each call's other party is, from the mirror (unless the lookup that
/// opened the call already named one), and the caller's name from it when the PBX
/// gave none.
async fn match_contacts(
    client: &impl GenericClient,
    tenant: TenantId,
    region: Region,
    calls: &mut [ChangedCall],
) -> anyhow::Result<()> {
    let numbers: Vec<Option<PhoneNumber>> = calls
        .iter()
        .map(|c| {
            c.summary
                .other_party()
                .and_then(|n| PhoneNumber::parse(n, region).ok())
        })
        .collect();
    let wanted: Vec<(TenantId, &str)> = numbers
        .iter()
        .flatten()
        .map(|n| (tenant, n.as_str()))
        .collect();
    if wanted.is_empty() {
        return Ok(());
    }
    let mut hits = contacts::find_by_numbers(client, &wanted)
        .await?
        .into_iter();
    for (call, number) in calls.iter_mut().zip(&numbers) {
        if number.is_none() {
            continue;
        }
        let Some(hit) = hits.next().flatten() else {
            continue;
        };
        if call.contact_id.is_none() {
            call.contact_id = Some(hit.id().to_owned());
        }
        if call.summary.caller_name.is_none() {
            call.summary.caller_name = Some(hit.name().to_owned());
        }
    }
    Ok(())
}
