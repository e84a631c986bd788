//! API tokens: create (shown once), list, rotate, revoke.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{Db, Error};
use crate::domain::TokenInfo;
use crate::domain::{ApiToken, Tenant, TenantId, TokenScopes};
use crate::store;

/// The longest an old token keeps working after a rotation.
const MAX_GRACE: Duration = Duration::from_secs(30 * 24 * 3600);

/// A token just made: its id and its secret (shown this once).
pub struct Issued {
    pub id: i64,
    pub token: ApiToken,
}

pub async fn create(
    db: &Db,
    tenant: &Tenant,
    scopes: TokenScopes,
    label: &str,
) -> Result<Issued, Error> {
    let (id, token) = db
        .run(async |client| store::tokens::create(&*client, tenant.id, scopes, label).await)
        .await?;
    Ok(Issued { id, token })
}

pub async fn list(db: &Db, tenant: &Tenant) -> Result<Vec<TokenInfo>, Error> {
    Ok(db
        .run(async |client| store::tokens::list(&*client, tenant.id).await)
        .await?)
}

/// The tenant whose token `id` is to be acted on: `tenant` when given (the token must be
/// its), else the token's own; refuses a token no tenant has.
async fn owner(db: &Db, tenant: Option<&Tenant>, id: i64) -> Result<TenantId, Error> {
    let owner = match tenant {
        Some(tenant) => Some(tenant.id),
        None => {
            db.run(async |client| store::tokens::tenant_of(&*client, id).await)
                .await?
        }
    };
    owner.ok_or_else(|| no_token(id, tenant))
}

fn no_token(id: i64, tenant: Option<&Tenant>) -> Error {
    let of = tenant.map_or_else(String::new, |t| format!(" for `{}`", t.slug));
    Error::NotFound(format!("no active token with id {id}{of}"))
}

/// A token issued in place of another, which stops working at `old_expires`.
pub struct Rotated {
    pub issued: Issued,
    pub old_expires: DateTime<Utc>,
}

/// Issues a token in place of `id`; `id` keeps working for `grace`.
pub async fn rotate(
    db: &Db,
    tenant: Option<&Tenant>,
    id: i64,
    grace: Duration,
) -> Result<Rotated, Error> {
    if grace > MAX_GRACE {
        return Err(Error::invalid(
            "grace",
            "at most 30 days (720h); the old token should stop working soon",
        ));
    }
    let owner = owner(db, tenant, id).await?;
    let rotated = db
        .run(async |client| {
            let tx = client.transaction().await?;
            let rotated = store::tokens::rotate(&tx, owner, id, grace).await?;
            tx.commit().await?;
            Ok(rotated)
        })
        .await?;
    let (new_id, token, old_expires) = rotated.ok_or_else(|| no_token(id, tenant))?;
    Ok(Rotated {
        issued: Issued { id: new_id, token },
        old_expires,
    })
}

pub async fn revoke(db: &Db, tenant: Option<&Tenant>, id: i64) -> Result<(), Error> {
    let owner = owner(db, tenant, id).await?;
    let revoked = db
        .run(async |client| store::tokens::revoke(&*client, owner, id).await)
        .await?;
    if revoked {
        Ok(())
    } else {
        Err(no_token(id, tenant))
    }
}
