//! Writing call events: one transaction per batch groups events into calls (through
//! `call_keys`), keeps each event once, and rewrites the record of every call that
//! gained one. Run it inside a transaction.

use std::collections::{BTreeSet, HashMap};

use anyhow::Context;
use chrono::{DateTime, Datelike, NaiveDate, Utc};
use deadpool_postgres::GenericClient;
use serde_json::{Value, json};
use uuid::Uuid;

use super::contacts;
use crate::domain::{CallEvent, CallSummary, PhoneNumber, Region, StoredEvent, TenantId};

/// An event as a handler accepted it.
#[derive(Debug, Clone)]
pub struct IncomingEvent {
    pub event: CallEvent,
    /// What the PBX sent, credentials left out.
    pub raw: Value,
    pub received_at: DateTime<Utc>,
}

impl IncomingEvent {
    fn at(&self) -> DateTime<Utc> {
        self.event.at.unwrap_or(self.received_at)
    }
}

/// A call whose record changed in the batch.
#[derive(Debug, Clone)]
pub struct ChangedCall {
    pub id: Uuid,
    pub report_call_id: i64,
    pub summary: CallSummary,
    pub contact_id: Option<String>,
}

/// What a batch did: for each event (in order) whether it was new, and the calls changed.
#[derive(Debug, Default)]
pub struct Ingested {
    pub new: Vec<bool>,
    pub calls: Vec<ChangedCall>,
}

/// The first day of `at`'s month: the partition a new call goes to.
pub fn month_of(at: DateTime<Utc>) -> NaiveDate {
    NaiveDate::from_ymd_opt(at.year(), at.month(), 1).expect("the first of a month exists")
}

/// The keys that group an event into a call: its leg, and its click-to-call request.
fn grouping_keys(e: &CallEvent) -> Vec<String> {
    let mut keys = vec![format!("c:{}", e.call_id)];
    if let Some(request) = e.request_id {
        keys.push(format!("r:{request}"));
    }
    keys
}

/// Every key that should find the event's call, its GUID included.
fn all_keys(e: &CallEvent) -> Vec<String> {
    let mut keys = grouping_keys(e);
    if let Some(guid) = &e.guid {
        keys.push(format!("g:{guid}"));
    }
    keys
}

/// Records `events` of one tenant; `region` reads the numbers they carry.
pub async fn ingest(
    client: &impl GenericClient,
    tenant: TenantId,
    region: Region,
    events: &[IncomingEvent],
) -> anyhow::Result<Ingested> {
    if events.is_empty() {
        return Ok(Ingested::default());
    }
    // The tenant's event writes take turns from here to the commit: two batches cannot
    // both create the call of a new leg, and change numbers become visible in order.
    let change_seq: i64 = client
        .query_one(
            "INSERT INTO call_counters AS c (tenant_id, last_change_seq) VALUES ($1, 1)
             ON CONFLICT (tenant_id) DO UPDATE SET last_change_seq = c.last_change_seq + 1
             RETURNING last_change_seq",
            &[&tenant.0],
        )
        .await
        .context("taking the tenant's turn to write calls")?
        .get(0);
    let keys: BTreeSet<String> = events
        .iter()
        .flat_map(|e| grouping_keys(&e.event))
        .collect();
    let key_list: Vec<&String> = keys.iter().collect();
    let known: HashMap<String, (Uuid, NaiveDate)> = client
        .query(
            "SELECT key, call_id, month FROM call_keys WHERE tenant_id = $1 AND key = ANY($2)",
            &[&tenant.0, &key_list],
        )
        .await
        .context("finding calls")?
        .into_iter()
        .map(|r| (r.get(0), (r.get(1), r.get(2))))
        .collect();

    // Events sharing a key are one call; an existing call is found by any of its keys
    // (a request's key first: every leg of a click-to-call belongs to it).
    let groups = group_events(events);
    let mut call_of_event = vec![(Uuid::nil(), NaiveDate::MIN); events.len()];
    let mut new_calls: Vec<(Uuid, NaiveDate)> = Vec::new();
    for group in &groups {
        let found = group
            .iter()
            .flat_map(|&i| grouping_keys(&events[i].event))
            .filter_map(|k| known.get(&k).map(|c| (!k.starts_with("r:"), *c)))
            .min_by_key(|(not_request, _)| *not_request)
            .map(|(_, c)| c);
        let call = found.unwrap_or_else(|| {
            let first = group
                .iter()
                .map(|&i| events[i].at())
                .min()
                .expect("groups are not empty");
            let call = (Uuid::new_v4(), month_of(first));
            new_calls.push(call);
            call
        });
        for &i in group {
            call_of_event[i] = call;
        }
    }
    let report_ids = allocate_report_ids(client, tenant, new_calls.len()).await?;
    let report_id_of: HashMap<Uuid, i64> = new_calls.iter().map(|c| c.0).zip(report_ids).collect();

    // Keys not yet known (a new call's, a new leg's, a GUID first seen).
    let mut new_keys: Vec<(String, Uuid, NaiveDate)> = Vec::new();
    for (e, call) in events.iter().zip(&call_of_event) {
        for key in all_keys(&e.event) {
            if !known.contains_key(&key) && !new_keys.iter().any(|(k, ..)| *k == key) {
                new_keys.push((key, call.0, call.1));
            }
        }
    }
    let (k_keys, (k_calls, k_months)): (Vec<String>, (Vec<Uuid>, Vec<NaiveDate>)) =
        new_keys.into_iter().map(|(k, c, m)| (k, (c, m))).unzip();
    client
        .execute(
            "INSERT INTO call_keys (tenant_id, key, call_id, month)
             SELECT $1, * FROM unnest($2::text[], $3::uuid[], $4::date[])
             ON CONFLICT DO NOTHING",
            &[&tenant.0, &k_keys, &k_calls, &k_months],
        )
        .await
        .context("recording call keys")?;

    let new = insert_events(client, tenant, events, &call_of_event).await?;
    let mut changed: Vec<(Uuid, NaiveDate)> = call_of_event
        .iter()
        .zip(&new)
        .filter(|(_, new)| **new)
        .map(|(call, _)| *call)
        .collect();
    changed.sort_unstable();
    changed.dedup();
    let calls = rewrite_calls(client, tenant, region, &changed, &report_id_of, change_seq).await?;
    Ok(Ingested { new, calls })
}

/// Indexes of events that share a grouping key, transitively.
fn group_events(events: &[IncomingEvent]) -> Vec<Vec<usize>> {
    let mut parent: Vec<usize> = (0..events.len()).collect();
    fn root(parent: &mut [usize], mut i: usize) -> usize {
        while parent[i] != i {
            parent[i] = parent[parent[i]];
            i = parent[i];
        }
        i
    }
    let mut owner: HashMap<String, usize> = HashMap::new();
    for (i, e) in events.iter().enumerate() {
        for key in grouping_keys(&e.event) {
            match owner.get(&key) {
                Some(&j) => {
                    let (a, b) = (root(&mut parent, i), root(&mut parent, j));
                    parent[a] = b;
                }
                None => {
                    owner.insert(key, i);
                }
            }
        }
    }
    let mut groups: HashMap<usize, Vec<usize>> = HashMap::new();
    for i in 0..events.len() {
        let r = root(&mut parent, i);
        groups.entry(r).or_default().push(i);
    }
    let mut groups: Vec<Vec<usize>> = groups.into_values().collect();
    groups.sort_unstable();
    groups
}

async fn allocate_report_ids(
    client: &impl GenericClient,
    tenant: TenantId,
    count: usize,
) -> anyhow::Result<Vec<i64>> {
    if count == 0 {
        return Ok(Vec::new());
    }
    let count = i64::try_from(count)?;
    // The tenant's row is already locked by this transaction.
    let last: i64 = client
        .query_one(
            "UPDATE call_counters SET last_report_call_id = last_report_call_id + $2
             WHERE tenant_id = $1 RETURNING last_report_call_id",
            &[&tenant.0, &count],
        )
        .await
        .context("allocating report call ids")?
        .get(0);
    Ok((last - count + 1..=last).collect())
}

/// Inserts the events; for each, whether it was new (not a repeat of a recorded one).
async fn insert_events(
    client: &impl GenericClient,
    tenant: TenantId,
    events: &[IncomingEvent],
    calls: &[(Uuid, NaiveDate)],
) -> anyhow::Result<Vec<bool>> {
    let fingerprints: Vec<Vec<u8>> = events
        .iter()
        .map(|e| e.event.fingerprint().to_vec())
        .collect();
    let call_ids: Vec<Uuid> = calls.iter().map(|c| c.0).collect();
    let months: Vec<NaiveDate> = calls.iter().map(|c| c.1).collect();
    let ats: Vec<DateTime<Utc>> = events.iter().map(IncomingEvent::at).collect();
    let received: Vec<DateTime<Utc>> = events.iter().map(|e| e.received_at).collect();
    let applied: Vec<Value> = events
        .iter()
        .map(|e| serde_json::to_value(&e.event))
        .collect::<Result<_, _>>()?;
    let raw: Vec<&Value> = events.iter().map(|e| &e.raw).collect();
    let rows = client
        .query(
            "INSERT INTO call_events (tenant_id, call_id, month, fingerprint, at, received_at, event, raw)
             SELECT $1, * FROM unnest($2::uuid[], $3::date[], $4::bytea[], $5::timestamptz[],
                                      $6::timestamptz[], $7::jsonb[], $8::jsonb[])
             ON CONFLICT DO NOTHING
             RETURNING call_id, fingerprint",
            &[&tenant.0, &call_ids, &months, &fingerprints, &ats, &received, &applied, &raw],
        )
        .await
        .context("recording call events")?;
    let inserted: BTreeSet<(Uuid, Vec<u8>)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    // A report repeated within the batch is new only the first time.
    let mut seen: BTreeSet<(Uuid, &[u8])> = BTreeSet::new();
    Ok(call_ids
        .iter()
        .zip(&fingerprints)
        .map(|(call, fp)| {
            inserted.contains(&(*call, fp.clone())) && seen.insert((*call, fp.as_slice()))
        })
        .collect())
}

/// Recomputes each call from all its events and writes the record.
async fn rewrite_calls(
    client: &impl GenericClient,
    tenant: TenantId,
    region: Region,
    calls: &[(Uuid, NaiveDate)],
    report_id_of: &HashMap<Uuid, i64>,
    change_seq: i64,
) -> anyhow::Result<Vec<ChangedCall>> {
    if calls.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<Uuid> = calls.iter().map(|c| c.0).collect();
    let months: Vec<NaiveDate> = calls.iter().map(|c| c.1).collect();
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
    let mut changed = Vec::with_capacity(calls.len());
    for &(id, _) in calls {
        let summary = events
            .get(&id)
            .and_then(|e| CallSummary::from_events(e))
            .context("a changed call has no events")?;
        changed.push(ChangedCall {
            id,
            report_call_id: report_id_of.get(&id).copied().unwrap_or(0),
            contact_id: summary.lookup.as_ref().and_then(|l| l.contact_id.clone()),
            summary,
        });
    }
    match_contacts(client, tenant, region, &mut changed).await?;

    let records: Vec<Value> = calls
        .iter()
        .zip(&changed)
        .map(|(&(_, month), call)| row_json(month, call, region))
        .collect();
    client
        .execute(
            "INSERT INTO calls (tenant_id, month, id, report_call_id, activecallkey, request_id,
                 direction, caller_number, caller_name, contact_id, dnis, external_number, other_number, agent,
                 call_group, account_codes, tags, started_at, answered_at, ended_at, duration_ms,
                 talk_ms, outcome, recorded, recording_url, legs, lookup, extra, change_seq)
             SELECT $1, r.*, $3
             FROM jsonb_to_recordset($2::jsonb) AS r (month date, id uuid, report_call_id bigint,
                 activecallkey text, request_id bigint, direction text, caller_number text,
                 caller_name text, contact_id text, dnis text, external_number text, other_number text, agent text,
                 call_group text, account_codes text[], tags text[], started_at timestamptz,
                 answered_at timestamptz, ended_at timestamptz, duration_ms bigint, talk_ms bigint,
                 outcome text, recorded boolean, recording_url text, legs jsonb, lookup jsonb,
                 extra jsonb)
             ON CONFLICT (tenant_id, id, month) DO UPDATE SET
                 activecallkey = excluded.activecallkey, request_id = excluded.request_id,
                 direction = excluded.direction, caller_number = excluded.caller_number,
                 caller_name = excluded.caller_name, contact_id = excluded.contact_id,
                 dnis = excluded.dnis, external_number = excluded.external_number,
                 other_number = excluded.other_number,
                 agent = excluded.agent, call_group = excluded.call_group,
                 account_codes = excluded.account_codes, tags = excluded.tags,
                 started_at = excluded.started_at, answered_at = excluded.answered_at,
                 ended_at = excluded.ended_at, duration_ms = excluded.duration_ms,
                 talk_ms = excluded.talk_ms, outcome = excluded.outcome,
                 recorded = excluded.recorded, recording_url = excluded.recording_url,
                 legs = excluded.legs, lookup = excluded.lookup, extra = excluded.extra,
                 change_seq = excluded.change_seq",
            &[&tenant.0, &Value::Array(records), &change_seq],
        )
        .await
        .context("writing call records")?;
    Ok(changed)
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

fn row_json(month: NaiveDate, call: &ChangedCall, region: Region) -> Value {
    let s = &call.summary;
    let normalized = |n: &Option<String>| {
        n.as_deref()
            .and_then(|n| PhoneNumber::parse(n, region).ok())
            .map(|n| n.as_str().to_owned())
    };
    json!({
        "month": month,
        "id": call.id,
        "report_call_id": call.report_call_id,
        "activecallkey": s.activecallkey,
        "request_id": s.request_id,
        "direction": s.direction.map(|d| d.as_str()),
        // The other party (DESIGN §7, docs/profiles.md): on an outbound or internal call
        // that is the number called, not the agent's own caller id.
        "caller_number": normalized(&s.other_party().map(str::to_owned)),
        "caller_name": s.caller_name,
        "contact_id": call.contact_id,
        "dnis": s.dnis,
        "external_number": s.external_number,
        "other_number": s.other_party().and_then(|n| PhoneNumber::parse(n, region).ok()).map(|n| n.as_str().to_owned()),
        "agent": s.agent,
        "call_group": s.group,
        "account_codes": s.account_codes,
        "tags": s.tags,
        "started_at": s.started_at,
        "answered_at": s.answered_at,
        "ended_at": s.ended_at,
        "duration_ms": s.duration_ms(),
        "talk_ms": s.talk_ms(),
        "outcome": s.outcome.as_str(),
        "recorded": s.recorded,
        "recording_url": s.recording_url,
        "legs": s.legs,
        "lookup": s.lookup,
        "extra": s.extra,
    })
}
