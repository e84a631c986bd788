//! The delivery log of web-service profiles, and replay.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Db, Error};
use crate::domain::TenantId;
use crate::domain::profile::{LogFilter, LoggedAttempt, LoggedDelivery};
use crate::store::deliveries;

fn no_delivery(id: Uuid) -> Error {
    Error::NotFound(format!("no delivery {id}"))
}

/// The tenant's deliveries, newest first.
pub async fn list(
    db: &Db,
    tenant: TenantId,
    filter: &LogFilter,
) -> Result<Vec<LoggedDelivery>, Error> {
    Ok(db
        .run(async |client| deliveries::list(&*client, tenant, filter).await)
        .await?)
}

/// Whose delivery `id` is: `tenant`'s when given (an admin token's), else its own (an
/// operator's command line).
async fn owner(db: &Db, tenant: Option<TenantId>, id: Uuid) -> Result<TenantId, Error> {
    match tenant {
        Some(tenant) => Ok(tenant),
        None => db
            .run(async |client| deliveries::tenant_of(&*client, id).await)
            .await?
            .ok_or_else(|| no_delivery(id)),
    }
}

/// A delivery's attempts.
pub async fn attempts(
    db: &Db,
    tenant: Option<TenantId>,
    id: Uuid,
) -> Result<Vec<LoggedAttempt>, Error> {
    let tenant = owner(db, tenant, id).await?;
    db.run(async |client| deliveries::attempts(&*client, tenant, id).await)
        .await?
        .ok_or_else(|| no_delivery(id))
}

/// Queues delivery `id` again with the same `webhook-id`: (its id, the new one).
pub async fn replay(
    db: &Db,
    tenant: Option<TenantId>,
    id: Uuid,
) -> Result<Vec<(Uuid, Uuid)>, Error> {
    let tenant = owner(db, tenant, id).await?;
    let replayed = db
        .run(async |client| deliveries::replay(&*client, tenant, &[id]).await)
        .await?;
    if replayed.is_empty() {
        return Err(no_delivery(id));
    }
    Ok(replayed)
}

/// Queues the tenant's failed deliveries (of `profile`, queued `since`) again.
pub async fn replay_failed(
    db: &Db,
    tenant: TenantId,
    profile: Option<&str>,
    since: Option<DateTime<Utc>>,
) -> Result<Vec<(Uuid, Uuid)>, Error> {
    Ok(db
        .run(async |client| {
            let ids = deliveries::failed_ids(&*client, tenant, profile, since).await?;
            deliveries::replay(&*client, tenant, &ids).await
        })
        .await?)
}
