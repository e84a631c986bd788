//! Agents (extension, name, groups) and their sessions, as the CLI and the agents API
//! manage them.

use chrono::{DateTime, Utc};

use super::{Db, Error};
use crate::domain::{Agent, Extension, SessionSecret, Tenant};
use crate::store;

pub use crate::domain::Put;

/// Adds `agent`, or replaces the one with its extension; refuses a new agent past the
/// tenant's cap.
pub async fn put(db: &Db, tenant: &Tenant, agent: &Agent) -> Result<Put, Error> {
    let put = db
        .run(async |client| store::agents::put_capped(client, tenant.id, agent).await)
        .await?;
    match put {
        Put::OverCap(cap) => Err(Error::AgentCap {
            tenant: tenant.slug.to_string(),
            cap,
        }),
        put => Ok(put),
    }
}

pub async fn find(db: &Db, tenant: &Tenant, extension: &Extension) -> Result<Option<Agent>, Error> {
    let wanted = vec![extension.as_str().to_owned()];
    let found = db
        .run(async |client| store::agents::matching(&*client, tenant.id, &wanted, &[]).await)
        .await?;
    Ok(found.into_iter().next())
}

pub async fn list(db: &Db, tenant: &Tenant) -> Result<Vec<Agent>, Error> {
    Ok(db
        .run(async |client| store::agents::list(&*client, tenant.id).await)
        .await?)
}

/// Removes the agent and ends its sessions (its calls stay); `false`: no such agent.
pub async fn remove(db: &Db, tenant: &Tenant, extension: &Extension) -> Result<bool, Error> {
    Ok(db
        .run(async |client| store::agents::remove(&*client, tenant.id, extension).await)
        .await?)
}

/// A session just started: its secret (shown this once) and when it ends.
pub struct Started {
    pub secret: SessionSecret,
    pub expires_at: DateTime<Utc>,
}

/// Signs the agent in for the tenant's session length; `None`: no such agent.
pub async fn start_session(
    db: &Db,
    tenant: &Tenant,
    extension: &Extension,
) -> Result<Option<Started>, Error> {
    let secret = SessionSecret::generate();
    let started = db
        .run(async |client| {
            let hours = store::click2call::policy(&*client, tenant.id)
                .await?
                .session_hours();
            store::sessions::start(&*client, tenant.id, extension, &secret, hours).await
        })
        .await?;
    Ok(started.map(|expires_at| Started { secret, expires_at }))
}

/// Signs the agent out: the one session given, or all of its sessions. How many ended.
pub async fn end_sessions(
    db: &Db,
    tenant: &Tenant,
    extension: &Extension,
    one: Option<&SessionSecret>,
) -> Result<u64, Error> {
    Ok(db
        .run(async |client| match one {
            Some(secret) => store::sessions::end(&*client, tenant.id, extension, secret).await,
            None => store::sessions::end_all(&*client, tenant.id, extension).await,
        })
        .await?)
}
