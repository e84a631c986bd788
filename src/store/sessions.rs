//! Agents' sessions: started for an agent, found by the hash of their secret, ended.

use anyhow::Context;
use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;

use crate::domain::Session;
use crate::domain::{Extension, SessionHours, SessionSecret, TenantId};

/// Starts a session for the agent; `None` when the tenant has no agent with that
/// extension. The secret is kept only as its hash.
pub async fn start(
    client: &impl GenericClient,
    tenant: TenantId,
    extension: &Extension,
    secret: &SessionSecret,
    hours: SessionHours,
) -> anyhow::Result<Option<DateTime<Utc>>> {
    let row = client
        .query_opt(
            "INSERT INTO agent_sessions (secret_hash, tenant_id, extension, expires_at)
             SELECT $1, tenant_id, extension, now() + make_interval(hours => $4)
             FROM agents WHERE tenant_id = $2 AND extension = $3
             RETURNING expires_at",
            &[
                &secret.hash().as_slice(),
                &tenant.0,
                &extension.as_str(),
                &i32::from(hours.get()),
            ],
        )
        .await
        .context("starting a session")?;
    Ok(row.map(|r| r.get(0)))
}

/// The session with this secret, live or expired (an expired one is the CRM's cue to
/// sign in again, not a guess). Crosses tenants on purpose: the secret alone names the
/// tenant, as a token does.
pub async fn find(
    client: &impl GenericClient,
    secret: &SessionSecret,
) -> anyhow::Result<Option<Session>> {
    let row = client
        .query_opt(
            "SELECT tenant_id, extension, expires_at FROM agent_sessions
             WHERE secret_hash = $1",
            &[&secret.hash().as_slice()],
        )
        .await
        .context("finding a session")?;
    row.map(|r| {
        Ok(Session {
            tenant: TenantId(r.get(0)),
            extension: Extension::parse(r.get(1)).map_err(anyhow::Error::msg)?,
            expires_at: r.get(2),
        })
    })
    .transpose()
}

/// Ends the agent's sessions (every browser and CRM tab it signed in); how many.
pub async fn end_all(
    client: &impl GenericClient,
    tenant: TenantId,
    extension: &Extension,
) -> anyhow::Result<u64> {
    client
        .execute(
            "DELETE FROM agent_sessions WHERE tenant_id = $1 AND extension = $2",
            &[&tenant.0, &extension.as_str()],
        )
        .await
        .context("ending sessions")
}

/// Ends the one session with this secret, if it is the agent's.
pub async fn end(
    client: &impl GenericClient,
    tenant: TenantId,
    extension: &Extension,
    secret: &SessionSecret,
) -> anyhow::Result<u64> {
    client
        .execute(
            "DELETE FROM agent_sessions
             WHERE tenant_id = $1 AND extension = $2 AND secret_hash = $3",
            &[&tenant.0, &extension.as_str(), &secret.hash().as_slice()],
        )
        .await
        .context("ending a session")
}

/// Removes sessions expired for a week (the retention job); until then an expired
/// session is told apart from a guessed one. Crosses tenants on purpose.
pub async fn prune(client: &impl GenericClient) -> anyhow::Result<u64> {
    client
        .execute(
            "DELETE FROM agent_sessions WHERE expires_at <= now() - interval '7 days'",
            &[],
        )
        .await
        .context("pruning sessions")
}
