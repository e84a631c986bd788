//! The database as one-shot commands reach it: a small pool, migrated, and the tenant
//! a `--tenant` names.

use anyhow::Context;
use deadpool_postgres::Pool;

use crate::config::DatabaseArgs;
use crate::domain::{Tenant, TenantSlug};
use crate::store;

/// A small pool for one-shot commands; runs migrations so a fresh database works.
pub fn admin_pool(db: &DatabaseArgs) -> anyhow::Result<Pool> {
    store::connect_pool(
        db.database_url.expose(),
        2,
        std::time::Duration::from_secs(30),
    )
}

pub async fn migrated_pool(db: &DatabaseArgs) -> anyhow::Result<Pool> {
    let pool = admin_pool(db)?;
    store::migrate(&pool).await?;
    Ok(pool)
}

pub async fn find_tenant(pool: &Pool, slug: &str) -> anyhow::Result<Tenant> {
    let slug = TenantSlug::parse(slug).map_err(anyhow::Error::msg)?;
    let client = pool.get().await.context("connecting to the database")?;
    store::tenants::find_by_slug(&client, &slug)
        .await?
        .with_context(|| format!("no tenant `{slug}` (see `cidgate tenant list`)"))
}
