//! `cidgate popup`: a tenant's screen-pop signing keys.

use clap::Subcommand;

use super::db::TenantArgs;
use crate::admin::tenants;

#[derive(Debug, Subcommand)]
pub enum PopupCommand {
    /// Start signing screen-pop links with a new key; links signed with older keys keep
    /// working until they expire
    RotateKey {
        #[command(flatten)]
        at: TenantArgs,
    },
    /// Stop accepting links signed with an older key at once (a key that leaked); the
    /// newest key cannot be retired: rotate first
    RetireKey {
        #[command(flatten)]
        at: TenantArgs,
        /// The key's number: the third part of the links it made (`2.<tenant>.<key id>.…`),
        /// the second of older ones (`1.<key id>.…`)
        #[arg(long)]
        key_id: i32,
    },
}

pub async fn run(cmd: PopupCommand) -> anyhow::Result<()> {
    match cmd {
        PopupCommand::RotateKey { at } => {
            let (db, tenant) = at.open().await?;
            let key_id = tenants::rotate_signing_key(&db, &tenant).await?;
            eprintln!(
                "`{}` now signs screen-pop links with key {key_id}",
                tenant.slug
            );
        }
        PopupCommand::RetireKey { at, key_id } => {
            let (db, tenant) = at.open().await?;
            tenants::retire_signing_key(&db, &tenant, key_id).await?;
            eprintln!(
                "`{}` no longer accepts links signed with key {key_id}",
                tenant.slug
            );
        }
    }
    Ok(())
}
