//! A tenant's IP allowlist for lookups.

use anyhow::Context;
use ipnetwork::IpNetwork;

use super::{Db, Error};
use crate::domain::Tenant;
use crate::store;

/// Adds `network`; `false` when it was on the list already.
pub async fn add(db: &Db, tenant: &Tenant, network: IpNetwork) -> Result<bool, Error> {
    Ok(db
        .run(async |client| {
            let tx = client.transaction().await?;
            let added = store::allowlist::add(&tx, tenant.id, network)
                .await
                .with_context(|| format!("cannot add {network}"))?;
            tx.commit().await?;
            Ok(added)
        })
        .await?)
}

pub async fn list(db: &Db, tenant: &Tenant) -> Result<Vec<IpNetwork>, Error> {
    Ok(db
        .run(async |client| store::allowlist::list(&*client, tenant.id).await)
        .await?)
}

pub async fn remove(db: &Db, tenant: &Tenant, network: IpNetwork) -> Result<(), Error> {
    let removed = db
        .run(async |client| store::allowlist::remove(&*client, tenant.id, network).await)
        .await?;
    if !removed {
        return Err(Error::NotFound(format!(
            "{network} is not on the allowlist of `{}`",
            tenant.slug
        )));
    }
    Ok(())
}
