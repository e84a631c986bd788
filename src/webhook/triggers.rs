//! Which deliveries a change of calls queues (DESIGN §8): for each enabled profile, the
//! calls that reached its trigger and meet its criteria; for `leg-event` profiles, each
//! new pickup, missed and hangup of a leg. Runs in the transaction that recorded the
//! events; `store::deliveries` and `store::leg_deliveries` read and write the rows.

use anyhow::Context;
use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::domain::profile::{CallFacts, ProfileSpec, Trigger};
use crate::domain::profile::{NewDelivery, NewLegDelivery};
use crate::domain::{ChangedCall, IncomingEvent};
use crate::domain::{EventKind, LegRole, TenantId};
use crate::store::deliveries;
use crate::store::leg_deliveries;
use crate::store::profiles;

/// Queues a delivery for each enabled profile of the tenant whose trigger each changed
/// call has reached and whose criteria it meets (once per call, profile and trigger).
/// Run it in the transaction that changed the calls. Answers how many were queued.
pub async fn enqueue_for_calls(
    client: &impl GenericClient,
    tenant: TenantId,
    calls: &[Uuid],
) -> anyhow::Result<u64> {
    if calls.is_empty() {
        return Ok(0);
    }
    let profiles = profiles::enabled(client, tenant).await?;
    if profiles.is_empty() {
        return Ok(0);
    }
    let specs: Vec<_> = profiles
        .iter()
        .filter_map(|p| match p.spec() {
            Ok(spec) => Some((p.id, spec)),
            Err(e) => {
                tracing::warn!(error = format!("{e:#}"), "skipping a profile");
                None
            }
        })
        .collect();
    let found = deliveries::calls_facts(client, tenant, calls).await?;
    let mut queued = Vec::new();
    for facts in found {
        let stored = stored(&facts)?;
        for (profile_id, spec) in &specs {
            if let Some(delivery) = reached(*profile_id, spec, &facts, &stored) {
                queued.push(delivery);
            }
        }
    }
    deliveries::enqueue(client, tenant, &queued).await
}

/// The delivery of `facts` through a profile, if the call reached its trigger and meets
/// its criteria.
fn reached(
    profile_id: i64,
    spec: &ProfileSpec,
    facts: &CallFacts,
    stored: &Value,
) -> Option<NewDelivery> {
    let facts = facts.clone().for_trigger(spec.trigger);
    (spec.trigger.reached(&facts) && spec.matches(&facts)).then(|| NewDelivery {
        profile_id,
        call_id: facts.record.call_id,
        trigger: spec.trigger,
        call: stored.clone(),
    })
}

/// The facts as a delivery stores them.
fn stored(facts: &CallFacts) -> anyhow::Result<Value> {
    serde_json::to_value(facts).context("a call record")
}

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
pub async fn enqueue_for_legs(
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
    let found = deliveries::calls_facts(client, tenant, &calls).await?;
    let mut queued = Vec::new();
    for leg in legs {
        let Some(call) = found.iter().find(|f| f.record.call_id == leg.call) else {
            continue;
        };
        let mut snapshot = stored(call)?;
        snapshot["leg_event"] = leg.facts();
        let facts: CallFacts = serde_json::from_value(snapshot.clone()).context("a call record")?;
        let facts = facts.for_trigger(Trigger::LegEvent);
        for (profile_id, spec) in &specs {
            if spec.matches(&facts) {
                queued.push(NewLegDelivery {
                    profile_id: *profile_id,
                    call_id: leg.call,
                    leg_event: leg.key(),
                    call: snapshot.clone(),
                });
            }
        }
    }
    leg_deliveries::enqueue(client, tenant, &queued).await
}
