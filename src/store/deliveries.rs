//! The outbox of web-service deliveries and the log of their attempts. Deliveries are
//! queued in the transaction that records the triggering call events; workers on any
//! instance claim due ones (`FOR UPDATE SKIP LOCKED`) and commit the claim before the
//! HTTP request; a claim lapses after its lease (an instance killed mid-request), so
//! the delivery is sent again with the same `webhook-id`.

use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use serde_json::Value;
use uuid::Uuid;

use super::profiles;
use crate::domain::TenantId;
use crate::domain::profile::{CallFacts, Trigger};

/// Wakes the delivery workers of every instance (payload empty).
pub const CHANNEL: &str = "cidgate_deliveries";

/// The call records of `calls` (with the contact's name and CRM link) as deliveries
/// see them; not the summary of their events the writes keep (calls.summary).
pub(crate) const CALL_SNAPSHOT: &str = "to_jsonb(c) - 'summary' \
     || jsonb_build_object('contact_name', k.name, 'crm_url', k.crm_url)";

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
    let rows = client
        .query(
            &format!(
                "SELECT {CALL_SNAPSHOT} FROM calls c
                 LEFT JOIN contacts k ON k.tenant_id = c.tenant_id AND k.crm_id = c.contact_id
                 WHERE c.tenant_id = $1 AND c.id = ANY($2)"
            ),
            &[&tenant.0, &calls],
        )
        .await
        .context("reading calls for their deliveries")?;
    let (mut ids, mut profile_ids, mut call_ids, mut triggers, mut snapshots) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for row in rows {
        let snapshot: Value = row.get(0);
        let facts: CallFacts = serde_json::from_value(snapshot.clone()).context("a call record")?;
        for (profile_id, spec) in &specs {
            let facts = facts.clone().for_trigger(spec.trigger);
            if spec.trigger.reached(&facts) && spec.matches(&facts) {
                ids.push(Uuid::new_v4());
                profile_ids.push(*profile_id);
                call_ids.push(facts.id);
                triggers.push(spec.trigger.as_str());
                snapshots.push(snapshot.clone());
            }
        }
    }
    if ids.is_empty() {
        return Ok(0);
    }
    let queued = client
        .execute(
            "INSERT INTO webhook_deliveries (id, message_id, tenant_id, profile_id, call_id, trigger, call)
             SELECT u.id, u.id, $1, u.profile_id, u.call_id, u.trigger, u.call
             FROM unnest($2::uuid[], $3::bigint[], $4::uuid[], $5::text[], $6::jsonb[])
                  AS u (id, profile_id, call_id, trigger, call)
             ORDER BY u.call_id
             ON CONFLICT (profile_id, call_id, trigger) WHERE origin = 'event' DO NOTHING",
            &[&tenant.0, &ids, &profile_ids, &call_ids, &triggers, &snapshots],
        )
        .await
        .context("queuing deliveries")?;
    if queued > 0 {
        wake(client).await?;
    }
    Ok(queued)
}

/// Tells every instance's workers that deliveries are due (heard at the commit).
pub async fn wake(client: &impl GenericClient) -> anyhow::Result<()> {
    client
        .execute("SELECT pg_notify($1, '')", &[&CHANNEL])
        .await
        .context("waking delivery workers")?;
    Ok(())
}

/// A call as deliveries see it: by cidgate's UUID, or by its report call id.
pub async fn call_snapshot(
    client: &impl GenericClient,
    tenant: TenantId,
    call: &str,
) -> anyhow::Result<Option<Value>> {
    let call = call.trim();
    let (by_uuid, by_report): (Option<Uuid>, Option<i64>) = (call.parse().ok(), call.parse().ok());
    if by_uuid.is_none() && by_report.is_none() {
        return Ok(None);
    }
    let row = client
        .query_opt(
            &format!(
                "SELECT {CALL_SNAPSHOT} FROM calls c
                 LEFT JOIN contacts k ON k.tenant_id = c.tenant_id AND k.crm_id = c.contact_id
                 WHERE c.tenant_id = $1 AND (c.id = $2 OR c.report_call_id = $3)
                 LIMIT 1"
            ),
            &[&tenant.0, &by_uuid, &by_report],
        )
        .await
        .context("reading a call")?;
    Ok(row.map(|r| r.get(0)))
}

/// Queues a delivery of a stored call through a profile, outside its trigger
/// (`profile run`); answers its id.
pub async fn enqueue_manual(
    client: &impl GenericClient,
    tenant: TenantId,
    profile_id: i64,
    trigger: Trigger,
    call: &Value,
) -> anyhow::Result<Uuid> {
    let id = Uuid::new_v4();
    let call_id: Uuid = call
        .get("id")
        .and_then(Value::as_str)
        .and_then(|s| s.parse().ok())
        .context("a call record without its id")?;
    client
        .execute(
            "INSERT INTO webhook_deliveries (id, message_id, tenant_id, profile_id, call_id, trigger, call, origin)
             VALUES ($1, $1, $2, $3, $4, $5, $6, 'manual')",
            &[&id, &tenant.0, &profile_id, &call_id, &trigger.as_str(), call],
        )
        .await
        .context("queuing a delivery")?;
    wake(client).await?;
    Ok(id)
}

/// Queues again the tenant's deliveries `ids` (same `webhook-id`); answers the new ids.
pub async fn replay(
    client: &impl GenericClient,
    tenant: TenantId,
    ids: &[Uuid],
) -> anyhow::Result<Vec<(Uuid, Uuid)>> {
    let rows = client
        .query(
            "INSERT INTO webhook_deliveries
                 (id, message_id, tenant_id, profile_id, call_id, trigger, call, origin, replay_of)
             SELECT gen_random_uuid(), d.message_id, d.tenant_id, d.profile_id, d.call_id, d.trigger,
                    d.call, 'replay', d.id
             FROM webhook_deliveries d
             WHERE d.tenant_id = $1 AND d.id = ANY($2)
             ORDER BY d.seq
             RETURNING replay_of, id",
            &[&tenant.0, &ids],
        )
        .await
        .context("replaying deliveries")?;
    if !rows.is_empty() {
        wake(client).await?;
    }
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// A claimed delivery, ready to send.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub id: Uuid,
    pub message_id: Uuid,
    pub tenant: TenantId,
    pub profile_id: i64,
    pub trigger: String,
    pub call: Value,
    /// This attempt's number, from 1.
    pub attempt: i32,
}

/// Across tenants on purpose: the workers serve every tenant.
/// Claims up to `limit` due deliveries (of enabled profiles, none behind an earlier
/// pending delivery of the same call to the same profile) for `lease`, and commits the
/// claim (run it outside a transaction). `only` claims one delivery whatever its time.
pub async fn claim(
    client: &impl GenericClient,
    limit: i64,
    lease: Duration,
    only: Option<Uuid>,
) -> anyhow::Result<Vec<Claimed>> {
    let rows = client
        .query(
            "WITH due AS (
                 SELECT d.id FROM webhook_deliveries d
                 JOIN webhook_profiles p ON p.id = d.profile_id AND p.enabled
                 WHERE d.state IN ('pending', 'sending')
                   AND (($3::uuid IS NULL AND d.next_attempt_at <= now()
                         AND coalesce(d.lease_until, d.next_attempt_at) <= now())
                        OR d.id = $3)
                   AND NOT EXISTS (
                       SELECT 1 FROM webhook_deliveries e
                       WHERE e.profile_id = d.profile_id AND e.call_id = d.call_id
                         AND e.seq < d.seq AND e.state IN ('pending', 'sending'))
                 ORDER BY d.next_attempt_at, d.seq
                 LIMIT $1
                 FOR UPDATE OF d SKIP LOCKED)
             UPDATE webhook_deliveries d SET state = 'sending', attempts = d.attempts + 1,
                 lease_until = now() + make_interval(secs => $2)
             FROM due WHERE d.id = due.id
             RETURNING d.id, d.message_id, d.tenant_id, d.profile_id, d.trigger, d.call, d.attempts",
            &[&limit, &lease.as_secs_f64(), &only],
        )
        .await
        .context("claiming deliveries")?;
    Ok(rows.iter().map(claimed_from).collect())
}

/// Claims up to `limit` due deliveries fairly and commits the claim (run it outside a
/// transaction; across tenants on purpose). Each profile gets at most its share: its
/// `max_in_flight`, divided by one plus its run of timeouts, less what is already out
/// under a live lease (on any instance); the claims are taken in turns, each tenant's
/// first before any tenant's second, and within a tenant each profile's first before
/// any profile's second. Claims are serialized by an advisory lock so two workers never
/// both fill the same profile's share.
pub async fn claim_fair(
    client: &mut deadpool_postgres::Client,
    limit: i64,
    lease: Duration,
) -> anyhow::Result<Vec<Claimed>> {
    let tx = client.transaction().await?;
    tx.execute(
        "SELECT pg_advisory_xact_lock(hashtext('cidgate_delivery_claim'))",
        &[],
    )
    .await
    .context("waiting for the delivery claim")?;
    let rows = tx
        .query(
            "WITH share AS (
                 SELECT p.id, p.tenant_id,
                        greatest(1, p.max_in_flight / (1 + least(p.timeout_streak, 1000)))
                        - (SELECT count(*) FROM webhook_deliveries s
                           WHERE s.profile_id = p.id AND s.state = 'sending'
                             AND s.lease_until > now()) AS free
                 FROM webhook_profiles p WHERE p.enabled),
             due AS (
                 SELECT c.id, s.tenant_id, c.next_attempt_at, c.seq,
                        row_number() OVER (PARTITION BY s.id ORDER BY c.next_attempt_at, c.seq) AS nth
                 FROM share s CROSS JOIN LATERAL (
                     SELECT d.id, d.next_attempt_at, d.seq FROM webhook_deliveries d
                     WHERE d.profile_id = s.id AND d.state IN ('pending', 'sending')
                       AND d.next_attempt_at <= now()
                       AND coalesce(d.lease_until, d.next_attempt_at) <= now()
                       AND NOT EXISTS (
                           SELECT 1 FROM webhook_deliveries e
                           WHERE e.profile_id = d.profile_id AND e.call_id = d.call_id
                             AND e.seq < d.seq AND e.state IN ('pending', 'sending'))
                     ORDER BY d.next_attempt_at, d.seq
                     LIMIT s.free) c
                 WHERE s.free > 0),
             turns AS (
                 SELECT id, next_attempt_at, seq, row_number() OVER (
                            PARTITION BY tenant_id ORDER BY nth, next_attempt_at, seq) AS turn
                 FROM due),
             picked AS (
                 SELECT d.id FROM webhook_deliveries d JOIN turns t ON t.id = d.id
                 ORDER BY t.turn, t.next_attempt_at, t.seq
                 LIMIT $1
                 FOR UPDATE OF d SKIP LOCKED)
             UPDATE webhook_deliveries d SET state = 'sending', attempts = d.attempts + 1,
                 lease_until = now() + make_interval(secs => $2)
             FROM picked WHERE d.id = picked.id
             RETURNING d.id, d.message_id, d.tenant_id, d.profile_id, d.trigger, d.call, d.attempts",
            &[&limit, &lease.as_secs_f64()],
        )
        .await
        .context("claiming deliveries")?;
    tx.commit().await.context("committing the claim")?;
    Ok(rows.iter().map(claimed_from).collect())
}

fn claimed_from(r: &tokio_postgres::Row) -> Claimed {
    Claimed {
        id: r.get(0),
        message_id: r.get(1),
        tenant: TenantId(r.get(2)),
        profile_id: r.get(3),
        trigger: r.get(4),
        call: r.get(5),
        attempt: r.get(6),
    }
}

/// When the next delivery falls due (`None`: nothing waits); across tenants on purpose.
/// Those due already are not counted: they are claimed, or held back by their
/// profile's share until one of its deliveries finishes.
pub async fn next_due(client: &impl GenericClient) -> anyhow::Result<Option<DateTime<Utc>>> {
    let row = client
        .query_one(
            "SELECT (SELECT d.next_attempt_at FROM webhook_deliveries d
                     JOIN webhook_profiles p ON p.id = d.profile_id AND p.enabled
                     WHERE d.state = 'pending' AND d.next_attempt_at > now()
                       AND NOT EXISTS (
                           SELECT 1 FROM webhook_deliveries e
                           WHERE e.profile_id = d.profile_id AND e.call_id = d.call_id
                             AND e.seq < d.seq AND e.state IN ('pending', 'sending'))
                     ORDER BY d.next_attempt_at LIMIT 1),
                    (SELECT min(lease_until) FROM webhook_deliveries
                     WHERE state = 'sending' AND lease_until > now())",
            &[],
        )
        .await
        .context("finding the next due delivery")?;
    let pending: Option<DateTime<Utc>> = row.get(0);
    let lease: Option<DateTime<Utc>> = row.get(1);
    Ok([pending, lease].into_iter().flatten().min())
}

/// What one attempt did to its delivery.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub id: Uuid,
    pub tenant: TenantId,
    pub attempted_at: DateTime<Utc>,
    pub status: Option<i32>,
    pub latency_ms: i32,
    pub error: Option<String>,
    pub response: String,
    /// `delivered`, `failed`, or `pending` (with `next_attempt_at`).
    pub state: &'static str,
    pub next_attempt_at: Option<DateTime<Utc>>,
}

/// Logs the attempts and moves each delivery on (deliveries claimed across tenants).
pub async fn record(client: &impl GenericClient, attempts: &[Recorded]) -> anyhow::Result<()> {
    if attempts.is_empty() {
        return Ok(());
    }
    let ids: Vec<Uuid> = attempts.iter().map(|a| a.id).collect();
    let tenants: Vec<i64> = attempts.iter().map(|a| a.tenant.0).collect();
    let at: Vec<DateTime<Utc>> = attempts.iter().map(|a| a.attempted_at).collect();
    let status: Vec<Option<i32>> = attempts.iter().map(|a| a.status).collect();
    let latency: Vec<i32> = attempts.iter().map(|a| a.latency_ms).collect();
    let error: Vec<Option<&str>> = attempts.iter().map(|a| a.error.as_deref()).collect();
    let response: Vec<&str> = attempts.iter().map(|a| a.response.as_str()).collect();
    let state: Vec<&str> = attempts.iter().map(|a| a.state).collect();
    let next: Vec<Option<DateTime<Utc>>> = attempts.iter().map(|a| a.next_attempt_at).collect();
    client
        .execute(
            "INSERT INTO webhook_attempts (delivery_id, attempted_at, status, latency_ms, error, response, tenant_id)
             SELECT * FROM unnest($1::uuid[], $2::timestamptz[], $3::int[], $4::int[], $5::text[], $6::text[], $7::bigint[])",
            &[&ids, &at, &status, &latency, &error, &response, &tenants],
        )
        .await
        .context("logging attempts")?;
    client
        .execute(
            "UPDATE webhook_deliveries d SET state = u.state, lease_until = NULL,
                 next_attempt_at = coalesce(u.next, d.next_attempt_at),
                 last_status = u.status, last_error = u.error,
                 finished_at = CASE WHEN u.state IN ('delivered', 'failed') THEN now() END
             FROM unnest($1::uuid[], $2::text[], $3::timestamptz[], $4::int[], $5::text[])
                  AS u (id, state, next, status, error)
             WHERE d.id = u.id",
            &[&ids, &state, &next, &status, &error],
        )
        .await
        .context("moving deliveries on")?;
    Ok(())
}

/// One row of the delivery log.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LoggedDelivery {
    pub id: Uuid,
    pub webhook_id: String,
    pub profile: String,
    pub call_id: Uuid,
    pub trigger: String,
    pub origin: String,
    pub replay_of: Option<Uuid>,
    pub state: String,
    pub attempts: i32,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub last_status: Option<i32>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// Filters of the delivery log.
#[derive(Debug, Clone, Default)]
pub struct LogFilter {
    pub profile: Option<String>,
    pub failed: bool,
    pub since: Option<DateTime<Utc>>,
    pub limit: i64,
}

/// The tenant's deliveries, newest first.
pub async fn list(
    client: &impl GenericClient,
    tenant: TenantId,
    filter: &LogFilter,
) -> anyhow::Result<Vec<LoggedDelivery>> {
    let rows = client
        .query(
            "SELECT d.id, d.message_id, p.name, d.call_id, d.trigger, d.origin, d.replay_of, d.state,
                    d.attempts, d.next_attempt_at, d.last_status, d.last_error, d.created_at,
                    d.finished_at
             FROM webhook_deliveries d JOIN webhook_profiles p ON p.id = d.profile_id
             WHERE d.tenant_id = $1
               AND ($2::text IS NULL OR p.name = $2)
               AND (NOT $3 OR d.state = 'failed' OR (d.state = 'pending' AND d.attempts > 0))
               AND ($4::timestamptz IS NULL OR d.created_at >= $4)
             ORDER BY d.created_at DESC, d.seq DESC
             LIMIT $5",
            &[&tenant.0, &filter.profile, &filter.failed, &filter.since, &filter.limit],
        )
        .await
        .context("listing deliveries")?;
    Ok(rows
        .iter()
        .map(|r| {
            let pending = r.get::<_, String>(7) == "pending";
            LoggedDelivery {
                id: r.get(0),
                webhook_id: webhook_id(r.get(1)),
                profile: r.get(2),
                call_id: r.get(3),
                trigger: r.get(4),
                origin: r.get(5),
                replay_of: r.get(6),
                state: r.get(7),
                attempts: r.get(8),
                next_attempt_at: pending.then(|| r.get(9)),
                last_status: r.get(10),
                last_error: r.get(11),
                created_at: r.get(12),
                finished_at: r.get(13),
            }
        })
        .collect())
}

/// One attempt in the log.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LoggedAttempt {
    pub at: DateTime<Utc>,
    pub status: Option<i32>,
    pub latency_ms: i32,
    pub error: Option<String>,
    pub response: Option<String>,
}

/// A delivery's attempts, oldest first (`None`: no such delivery of the tenant).
pub async fn attempts(
    client: &impl GenericClient,
    tenant: TenantId,
    delivery: Uuid,
) -> anyhow::Result<Option<Vec<LoggedAttempt>>> {
    let exists = client
        .query_opt(
            "SELECT 1 FROM webhook_deliveries WHERE tenant_id = $1 AND id = $2",
            &[&tenant.0, &delivery],
        )
        .await
        .context("finding a delivery")?;
    if exists.is_none() {
        return Ok(None);
    }
    let rows = client
        .query(
            "SELECT attempted_at, status, latency_ms, error, response FROM webhook_attempts
             WHERE tenant_id = $1 AND delivery_id = $2 ORDER BY id",
            &[&tenant.0, &delivery],
        )
        .await
        .context("reading attempts")?;
    Ok(Some(
        rows.iter()
            .map(|r| LoggedAttempt {
                at: r.get(0),
                status: r.get(1),
                latency_ms: r.get(2),
                error: r.get(3),
                response: r.get(4),
            })
            .collect(),
    ))
}

/// The ids of the tenant's failed deliveries (of a profile, since a time), for replay.
pub async fn failed_ids(
    client: &impl GenericClient,
    tenant: TenantId,
    profile: Option<&str>,
    since: Option<DateTime<Utc>>,
) -> anyhow::Result<Vec<Uuid>> {
    let rows = client
        .query(
            "SELECT d.id FROM webhook_deliveries d JOIN webhook_profiles p ON p.id = d.profile_id
             WHERE d.tenant_id = $1 AND d.state = 'failed'
               AND ($2::text IS NULL OR p.name = $2)
               AND ($3::timestamptz IS NULL OR d.created_at >= $3)
             ORDER BY d.seq",
            &[&tenant.0, &profile, &since],
        )
        .await
        .context("finding failed deliveries")?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// The queue's depth and how long its oldest due delivery has waited (for metrics;
/// across tenants on purpose).
pub async fn queue_figures(client: &impl GenericClient) -> anyhow::Result<(i64, f64)> {
    let row = client
        .query_one(
            "SELECT count(*), coalesce(extract(epoch FROM now() - min(next_attempt_at)
                 FILTER (WHERE next_attempt_at <= now())), 0)::float8
             FROM webhook_deliveries WHERE state IN ('pending', 'sending')",
            &[],
        )
        .await
        .context("measuring the delivery queue")?;
    Ok((row.get(0), row.get(1)))
}

/// Deletes finished deliveries (and their attempts) older than `days` (retention:
/// across tenants on purpose).
pub async fn prune(client: &impl GenericClient, days: u32) -> anyhow::Result<u64> {
    client
        .execute(
            "DELETE FROM webhook_deliveries
             WHERE state IN ('delivered', 'failed') AND created_at < now() - make_interval(days => $1)",
            &[&(days as i32)],
        )
        .await
        .context("pruning the delivery log")
}

/// The `webhook-id` header of a message.
pub fn webhook_id(message: Uuid) -> String {
    format!("msg_{}", message.simple())
}

/// Whose delivery `id` is (for commands given only its id; the operator's command line
/// crosses tenants).
pub async fn tenant_of(client: &impl GenericClient, id: Uuid) -> anyhow::Result<Option<TenantId>> {
    let row = client
        .query_opt(
            "SELECT tenant_id FROM webhook_deliveries WHERE id = $1",
            &[&id],
        )
        .await
        .context("finding a delivery")?;
    Ok(row.map(|r| TenantId(r.get(0))))
}
