//! `cidgate popup`: a tenant's screen-pop signing keys.

use clap::Subcommand;

use super::db::{find_tenant, migrated_pool};
use crate::config::DatabaseArgs;
use crate::store;

#[derive(Debug, Subcommand)]
pub enum PopupCommand {
    /// Start signing screen-pop links with a new key; links signed with older keys keep
    /// working until they expire
    RotateKey {
        #[arg(long)]
        tenant: String,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// Stop accepting links signed with an older key at once (a key that leaked); the
    /// newest key cannot be retired: rotate first
    RetireKey {
        #[arg(long)]
        tenant: String,
        /// The key's number: the third part of the links it made (`2.<tenant>.<key id>.…`),
        /// the second of older ones (`1.<key id>.…`)
        #[arg(long)]
        key_id: i32,
        #[command(flatten)]
        db: DatabaseArgs,
    },
}

pub async fn run(cmd: PopupCommand) -> anyhow::Result<()> {
    match cmd {
        PopupCommand::RotateKey { tenant, db } => {
            let pool = migrated_pool(&db).await?;
            let tenant = find_tenant(&pool, &tenant).await?;
            // The key and its notification commit together, or neither does.
            let mut client = pool.get().await?;
            let tx = client.transaction().await?;
            let key_id = store::signing_keys::rotate(&tx, tenant.id).await?;
            tx.commit().await?;
            eprintln!(
                "`{}` now signs screen-pop links with key {key_id}",
                tenant.slug
            );
        }
        PopupCommand::RetireKey { tenant, key_id, db } => {
            let pool = migrated_pool(&db).await?;
            let tenant = find_tenant(&pool, &tenant).await?;
            let mut client = pool.get().await?;
            let tx = client.transaction().await?;
            store::signing_keys::retire(&tx, tenant.id, key_id).await?;
            tx.commit().await?;
            eprintln!(
                "`{}` no longer accepts links signed with key {key_id}",
                tenant.slug
            );
        }
    }
    Ok(())
}
