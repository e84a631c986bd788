//! `leg-event` deliveries (issue 27): one request for every pickup, missed and hangup
//! of every leg, as the FocalScope URL adapter calls back, each describing its own leg.
//! Queued in the transaction that records the events, in the events' order, once per
//! profile, call, leg and event (a repeated report sends nothing twice). Which are
//! queued is `webhook::triggers`' choice.

use anyhow::Context;
use deadpool_postgres::GenericClient;
use serde_json::Value;
use uuid::Uuid;

use super::deliveries::wake;
use crate::domain::TenantId;
use crate::domain::profile::NewLegDelivery;
use crate::domain::profile::Trigger;

/// Queues `deliveries`, in their order (a call's deliveries to a profile are sent in
/// `seq` order). Run it in the transaction that recorded the events. Answers how many
/// were queued.
pub async fn enqueue(
    client: &impl GenericClient,
    tenant: TenantId,
    deliveries: &[NewLegDelivery],
) -> anyhow::Result<u64> {
    if deliveries.is_empty() {
        return Ok(0);
    }
    let ids: Vec<Uuid> = deliveries.iter().map(|_| Uuid::new_v4()).collect();
    let profile_ids: Vec<i64> = deliveries.iter().map(|d| d.profile_id).collect();
    let call_ids: Vec<Uuid> = deliveries.iter().map(|d| d.call_id).collect();
    let keys: Vec<&str> = deliveries.iter().map(|d| d.leg_event.as_str()).collect();
    let snapshots: Vec<&Value> = deliveries.iter().map(|d| &d.call).collect();
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
