//! The database as one-shot commands reach it (a small pool, migrated, every use timed
//! through `admin::Db`), and the arguments every command naming a tenant shares.

use clap::Args;
use deadpool_postgres::Pool;

use crate::admin::Db;
use crate::config::DatabaseArgs;
use crate::domain::Tenant;
use crate::store;

/// How long one database step of a command may take (as long as a command waits for
/// a connection).
pub const STEP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// The tenant a command acts on, and the database it is kept in.
#[derive(Debug, Args)]
pub struct TenantArgs {
    #[arg(long)]
    pub tenant: String,
    #[command(flatten)]
    pub db: DatabaseArgs,
}

impl TenantArgs {
    /// The migrated database and the tenant `--tenant` names.
    pub async fn open(&self) -> anyhow::Result<(Db, Tenant)> {
        let db = open(&self.db).await?;
        let tenant = db.tenant(&self.tenant).await?;
        Ok((db, tenant))
    }
}

/// A small pool for one-shot commands; runs migrations so a fresh database works.
pub fn admin_pool(db: &DatabaseArgs) -> anyhow::Result<Pool> {
    store::connect_pool(db.database_url.expose(), 2, STEP_TIMEOUT)
}

pub async fn migrated_pool(db: &DatabaseArgs) -> anyhow::Result<Pool> {
    let pool = admin_pool(db)?;
    store::migrate(&pool).await?;
    Ok(pool)
}

/// The migrated database, for the services.
pub async fn open(db: &DatabaseArgs) -> anyhow::Result<Db> {
    Ok(Db::new(migrated_pool(db).await?, STEP_TIMEOUT))
}
