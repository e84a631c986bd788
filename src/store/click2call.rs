//! Click-to-call: the tenant's dialer and dial policy, and the requests with their
//! per-tenant RequestIDs.

use anyhow::Context;
use deadpool_postgres::GenericClient;
use tokio_postgres::Row;

use crate::domain::{DialPolicy, DialStatus, TenantId};
use crate::domain::{NewRequest, Opened, RequestRow, StoredDialer};

/// Sets (or replaces) the tenant's dialer.
pub async fn set_dialer(
    client: &impl GenericClient,
    tenant: TenantId,
    dialer: &StoredDialer,
) -> anyhow::Result<()> {
    client
        .execute(
            "INSERT INTO dialers (tenant_id, kind, settings, secret) VALUES ($1, $2, $3, $4)
             ON CONFLICT (tenant_id) DO UPDATE
                 SET kind = excluded.kind, settings = excluded.settings,
                     secret = excluded.secret, updated_at = now()",
            &[
                &tenant.0,
                &dialer.kind,
                &dialer.settings,
                &super::secrets::seal_json(super::secrets::DIALER_SECRET, dialer.secret.as_ref())?,
            ],
        )
        .await
        .context("setting the dialer")?;
    Ok(())
}

pub async fn dialer(
    client: &impl GenericClient,
    tenant: TenantId,
) -> anyhow::Result<Option<StoredDialer>> {
    let row = client
        .query_opt(
            "SELECT kind, settings, secret FROM dialers WHERE tenant_id = $1",
            &[&tenant.0],
        )
        .await
        .context("reading the dialer")?;
    row.map(|r| {
        Ok(StoredDialer {
            kind: r.get(0),
            settings: r.get(1),
            secret: super::secrets::open_json(super::secrets::DIALER_SECRET, r.get(2))?,
        })
    })
    .transpose()
}

/// Removes the tenant's dialer; false when it had none.
pub async fn remove_dialer(client: &impl GenericClient, tenant: TenantId) -> anyhow::Result<bool> {
    let n = client
        .execute("DELETE FROM dialers WHERE tenant_id = $1", &[&tenant.0])
        .await
        .context("removing the dialer")?;
    Ok(n == 1)
}

/// The tenant's dial policy (the defaults when none is set).
pub async fn policy(client: &impl GenericClient, tenant: TenantId) -> anyhow::Result<DialPolicy> {
    let row = client
        .query_opt(
            "SELECT policy FROM dial_policies WHERE tenant_id = $1",
            &[&tenant.0],
        )
        .await
        .context("reading the dial policy")?;
    match row {
        Some(row) => serde_json::from_value(row.get(0)).context("reading the stored dial policy"),
        None => Ok(DialPolicy::default()),
    }
}

pub async fn set_policy(
    client: &impl GenericClient,
    tenant: TenantId,
    policy: &DialPolicy,
) -> anyhow::Result<()> {
    client
        .execute(
            "INSERT INTO dial_policies (tenant_id, policy) VALUES ($1, $2)
             ON CONFLICT (tenant_id) DO UPDATE SET policy = excluded.policy, updated_at = now()",
            &[&tenant.0, &serde_json::to_value(policy)?],
        )
        .await
        .context("setting the dial policy")?;
    Ok(())
}

/// A request counts as in flight until its call ends, its dialer fails, or this long
/// passes without news (a PBX that sends no events must not block the agent for good).
const IN_FLIGHT_AT_MOST: &str = "2 minutes";

/// The requests of a tenant (`$1`) in flight, with `{and}` narrowing them.
fn in_flight_sql(select: &str, and: &str) -> String {
    format!(
        "SELECT {select} FROM click2call_requests r
         WHERE r.tenant_id = $1 {and} AND r.status <> 'failed'
           AND r.created_at > now() - interval '{IN_FLIGHT_AT_MOST}'
           AND NOT EXISTS (
               SELECT 1 FROM call_keys k
               JOIN calls c ON c.tenant_id = k.tenant_id AND c.id = k.call_id
                           AND c.month = k.month
               WHERE k.tenant_id = r.tenant_id AND k.key = 'r:' || r.request_id
                 AND c.ended_at IS NOT NULL)"
    )
}

/// Opens a request, unless the agent has one in flight or is over `per_minute`, or the
/// tenant is over `tenant_in_flight` or `tenant_per_minute`. The agent's row, then the
/// tenant's counter row, are locked, so clicks at once cannot both pass the checks.
pub async fn open(
    client: &mut deadpool_postgres::Object,
    tenant: TenantId,
    request: &NewRequest<'_>,
    policy: &DialPolicy,
) -> anyhow::Result<Opened> {
    let tx = client.transaction().await.context("opening a request")?;
    let agent = tx
        .query_opt(
            "SELECT name || '(' || extension || ')' FROM agents
             WHERE tenant_id = $1 AND extension = $2 FOR UPDATE",
            &[&tenant.0, &request.extension.as_str()],
        )
        .await
        .context("locking the agent")?;
    let Some(agent) = agent else {
        return Ok(Opened::NoAgent);
    };
    let agent: String = agent.get(0);
    let sql = in_flight_sql("r.request_id", "AND r.extension = $2")
        + " ORDER BY r.request_id DESC LIMIT 1";
    let in_flight = tx
        .query_opt(&sql, &[&tenant.0, &request.extension.as_str()])
        .await
        .context("finding a request in flight")?;
    if let Some(row) = in_flight {
        return Ok(Opened::InFlight(row.get(0)));
    }
    let recent: i64 = tx
        .query_one(
            "SELECT count(*) FROM click2call_requests
             WHERE tenant_id = $1 AND extension = $2 AND created_at > now() - interval '1 minute'",
            &[&tenant.0, &request.extension.as_str()],
        )
        .await
        .context("counting recent requests")?
        .get(0);
    if recent >= i64::from(policy.per_minute) {
        return Ok(Opened::TooMany);
    }
    // The tenant's turn: its counter row is locked until this request is recorded.
    tx.execute(
        "INSERT INTO click2call_counters (tenant_id) VALUES ($1)
         ON CONFLICT (tenant_id) DO UPDATE SET last_request_id = click2call_counters.last_request_id",
        &[&tenant.0],
    )
    .await
    .context("locking the tenant's requests")?;
    let tenant_in_flight: i64 = tx
        .query_one(&in_flight_sql("count(*)", ""), &[&tenant.0])
        .await
        .context("counting the tenant's requests in flight")?
        .get(0);
    if tenant_in_flight >= i64::from(policy.tenant_in_flight) {
        return Ok(Opened::TenantInFlight);
    }
    let tenant_recent: i64 = tx
        .query_one(
            "SELECT count(*) FROM click2call_requests
             WHERE tenant_id = $1 AND created_at > now() - interval '1 minute'",
            &[&tenant.0],
        )
        .await
        .context("counting the tenant's recent requests")?
        .get(0);
    if tenant_recent >= i64::from(policy.tenant_per_minute) {
        return Ok(Opened::TenantTooMany);
    }
    let request_id: i64 = tx
        .query_one(
            "INSERT INTO click2call_counters (tenant_id, last_request_id) VALUES ($1, 1)
             ON CONFLICT (tenant_id) DO UPDATE
                 SET last_request_id = click2call_counters.last_request_id + 1
             RETURNING last_request_id",
            &[&tenant.0],
        )
        .await
        .context("taking a RequestID")?
        .get(0);
    tx.execute(
        "INSERT INTO click2call_requests
             (tenant_id, request_id, extension, agent, number, dialled, queue)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        &[
            &tenant.0,
            &request_id,
            &request.extension.as_str(),
            &agent,
            &request.number,
            &request.dialled,
            &request.queue,
        ],
    )
    .await
    .context("recording a request")?;
    tx.commit().await.context("committing a request")?;
    Ok(Opened::Request { request_id, agent })
}

/// Records what the dialer said. A failure reported later (the PBX's asynchronous
/// result) overrides an acceptance; nothing overrides a failure.
pub async fn record_dial(
    client: &impl GenericClient,
    tenant: TenantId,
    request_id: i64,
    status: &DialStatus,
    pbx_id: Option<&str>,
) -> anyhow::Result<()> {
    let (status, reason) = match status {
        DialStatus::Pending => ("pending", None),
        DialStatus::Accepted => ("accepted", None),
        DialStatus::Failed(reason) => ("failed", Some(reason.as_str())),
    };
    client
        .execute(
            "UPDATE click2call_requests
             SET status = $3, reason = $4, pbx_id = coalesce($5, pbx_id), updated_at = now()
             WHERE tenant_id = $1 AND request_id = $2 AND status <> 'failed'",
            &[&tenant.0, &request_id, &status, &reason, &pbx_id],
        )
        .await
        .context("recording the dialer's answer")?;
    Ok(())
}

fn request_row(r: &Row) -> RequestRow {
    RequestRow {
        request_id: r.get("request_id"),
        extension: r.get("extension"),
        agent: r.get("agent"),
        number: r.get("number"),
        dialled: r.get("dialled"),
        queue: r.get("queue"),
        dial: DialStatus::from_stored(r.get("status"), r.get("reason")),
        pbx_id: r.get("pbx_id"),
        created_at: r.get("created_at"),
    }
}

pub async fn request(
    client: &impl GenericClient,
    tenant: TenantId,
    request_id: i64,
) -> anyhow::Result<Option<RequestRow>> {
    let row = client
        .query_opt(
            "SELECT request_id, extension, agent, number, dialled, queue, status, reason,
                    pbx_id, created_at
             FROM click2call_requests WHERE tenant_id = $1 AND request_id = $2",
            &[&tenant.0, &request_id],
        )
        .await
        .context("reading a request")?;
    Ok(row.as_ref().map(request_row))
}
