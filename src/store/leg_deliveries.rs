//! `leg-event` deliveries (issue 27): one request for every pickup, missed and hangup
//! of every leg, as the FocalScope URL adapter calls back, each describing its own leg.
//! Queued in the transaction that records the events, in the events' order, once per
//! profile, call, leg and event (a repeated report sends nothing twice).

use anyhow::Context;
use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use serde_json::{Value, json};
use uuid::Uuid;

use super::calls::{ChangedCall, IncomingEvent};
use super::deliveries::{CALL_SNAPSHOT, wake};
use super::profiles;
use crate::domain::profile::{CallFacts, Trigger};
use crate::domain::{EventKind, LegRole, TenantId};

/// One pickup, missed or hangup of one leg of a call.
#[derive(Debug, Clone, PartialEq)]
pub struct LegEvent {
    /// cidgate's id of the call.
    pub call: Uuid,
    /// The leg's PBX call id.
    pub leg_call_id: String,
    pub guid: Option<String>,
    pub leg: Option<LegRole>,
    pub event: EventKind,
    at: DateTime<Utc>,
}

impl LegEvent {
    /// Its key in the outbox: one delivery per profile, call and this.
    fn key(&self) -> String {
        format!("{}/{}", self.leg_call_id, self.event.as_str())
    }

    /// What a delivery of it adds to the call record.
    fn facts(&self) -> Value {
        json!({
            "call_id": self.leg_call_id,
            "guid": self.guid,
            "leg": self.leg.map(|l| match l {
                LegRole::Agent => "agent",
                LegRole::External => "external",
            }),
            "event": self.event.as_str(),
        })
    }
}

/// The leg events among a batch's new events (`new[i]`: whether `events[i]` was not a
/// repeat), each with the call it changed, in time order.
pub fn leg_events(events: &[IncomingEvent], new: &[bool], calls: &[ChangedCall]) -> Vec<LegEvent> {
    let mut found: Vec<LegEvent> = events
        .iter()
        .zip(new)
        .filter(|(e, new)| {
            **new
                && matches!(
                    e.event.kind(),
                    EventKind::Pickup | EventKind::Missed | EventKind::Hangup
                )
        })
        .filter_map(|(e, _)| {
            let (call, leg) = calls.iter().find_map(|c| {
                let leg = c
                    .summary
                    .legs
                    .iter()
                    .find(|l| l.call_id == e.event.call_id)?;
                Some((c.id, leg))
            })?;
            Some(LegEvent {
                call,
                leg_call_id: e.event.call_id.clone(),
                guid: e.event.guid.clone().or_else(|| leg.guid.clone()),
                leg: e.event.leg.or(leg.leg),
                event: e.event.kind(),
                at: e.event.at.unwrap_or(e.received_at),
            })
        })
        .collect();
    found.sort_by_key(|e| e.at);
    found
}

/// Queues a delivery of each leg event to every enabled `leg-event` profile whose
/// criteria its call meets. Run it in the transaction that recorded the events, after
/// the calls were rewritten. Answers how many were queued.
pub async fn enqueue(
    client: &impl GenericClient,
    tenant: TenantId,
    legs: &[LegEvent],
) -> anyhow::Result<u64> {
    if legs.is_empty() {
        return Ok(0);
    }
    let profiles = profiles::enabled(client, tenant).await?;
    let specs: Vec<_> = profiles
        .iter()
        .filter_map(|p| p.spec().ok().map(|spec| (p.id, spec)))
        .filter(|(_, spec)| spec.trigger == Trigger::LegEvent)
        .collect();
    if specs.is_empty() {
        return Ok(0);
    }
    let mut calls: Vec<Uuid> = legs.iter().map(|l| l.call).collect();
    calls.sort_unstable();
    calls.dedup();
    let rows = client
        .query(
            &format!(
                "SELECT c.id, {CALL_SNAPSHOT} FROM calls c
                 LEFT JOIN contacts k ON k.tenant_id = c.tenant_id AND k.crm_id = c.contact_id
                 WHERE c.tenant_id = $1 AND c.id = ANY($2)"
            ),
            &[&tenant.0, &calls],
        )
        .await
        .context("reading calls for their leg deliveries")?;
    let snapshot_of = |call: Uuid| {
        rows.iter()
            .find(|r| r.get::<_, Uuid>(0) == call)
            .map(|r| r.get::<_, Value>(1))
    };
    let (mut ids, mut profile_ids, mut call_ids, mut keys, mut snapshots) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for leg in legs {
        let Some(mut snapshot) = snapshot_of(leg.call) else {
            continue;
        };
        snapshot["leg_event"] = leg.facts();
        let facts: CallFacts = serde_json::from_value(snapshot.clone()).context("a call record")?;
        let facts = facts.for_trigger(Trigger::LegEvent);
        for (profile_id, spec) in &specs {
            if spec.matches(&facts) {
                ids.push(Uuid::new_v4());
                profile_ids.push(*profile_id);
                call_ids.push(leg.call);
                keys.push(leg.key());
                snapshots.push(snapshot.clone());
            }
        }
    }
    if ids.is_empty() {
        return Ok(0);
    }
    // In the events' order: a call's deliveries to a profile are sent in `seq` order.
    let queued = client
        .execute(
            "INSERT INTO webhook_deliveries
                 (id, message_id, tenant_id, profile_id, call_id, trigger, call, origin, leg_event)
             SELECT u.id, u.id, $1, u.profile_id, u.call_id, $2, u.call, 'leg', u.leg_event
             FROM unnest($3::uuid[], $4::bigint[], $5::uuid[], $6::text[], $7::jsonb[])
                  WITH ORDINALITY AS u (id, profile_id, call_id, leg_event, call, n)
             ORDER BY u.n
             ON CONFLICT (profile_id, call_id, leg_event) WHERE origin = 'leg' DO NOTHING",
            &[
                &tenant.0,
                &Trigger::LegEvent.as_str(),
                &ids,
                &profile_ids,
                &call_ids,
                &keys,
                &snapshots,
            ],
        )
        .await
        .context("queuing leg deliveries")?;
    if queued > 0 {
        wake(client).await?;
    }
    Ok(queued)
}
