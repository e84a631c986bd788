//! A tenant's spam list (issue 36): numbers flagged at once by the tenant, and reports
//! counted from complaint data. The CLI and the sync API call the same operations.

use super::{Db, Error};
use crate::domain::{PhoneNumber, SpamEntry, Tenant};
use crate::store;
use crate::store::spam::Reported;

/// The number as the list keeps it (normalized as lookups are).
pub fn number(tenant: &Tenant, raw: &str) -> Result<PhoneNumber, Error> {
    crate::trust::listed_number(raw, tenant.region).map_err(|e| Error::invalid("number", e))
}

/// Flags `number` at once; whether it was new to the list, and its entry.
pub async fn add(
    db: &Db,
    tenant: &Tenant,
    number: &PhoneNumber,
    label: Option<&str>,
) -> Result<(bool, SpamEntry), Error> {
    let label = crate::trust::label(label).map_err(|e| Error::invalid("label", e))?;
    let (new, entry) = db
        .run(async |client| {
            let new = store::spam::add(&*client, tenant.id, number.as_str(), label).await?;
            let entry = store::spam::get(&*client, tenant.id, number.as_str()).await?;
            Ok((new, entry))
        })
        .await?;
    let entry = entry.ok_or_else(|| anyhow::anyhow!("a listed number vanished"))?;
    Ok((new, entry))
}

/// Takes `number` off the list, its reports too.
pub async fn remove(db: &Db, tenant: &Tenant, number: &PhoneNumber) -> Result<(), Error> {
    let removed = db
        .run(async |client| store::spam::remove(&*client, tenant.id, number.as_str()).await)
        .await?;
    if removed {
        Ok(())
    } else {
        Err(Error::NotFound(format!(
            "{} is not on the spam list of `{}`",
            number.as_str(),
            tenant.slug
        )))
    }
}

/// The tenant's list.
pub async fn list(db: &Db, tenant: &Tenant) -> Result<Vec<SpamEntry>, Error> {
    Ok(db
        .run(async |client| store::spam::list(&*client, tenant.id).await)
        .await?)
}

/// Adds the reports of an import (or replaces earlier ones), in one transaction.
pub async fn import(
    db: &Db,
    tenant: &Tenant,
    numbers: &[Reported],
    replace: bool,
) -> Result<(), Error> {
    db.run(async |client| {
        let tx = client.transaction().await?;
        store::spam::import(&tx, tenant.id, numbers, replace).await?;
        tx.commit().await?;
        Ok(())
    })
    .await?;
    Ok(())
}
