//! `cidgate allow`: a tenant's IP allowlist for lookups.

use anyhow::{Context, bail};
use clap::Subcommand;
use ipnetwork::IpNetwork;

use super::db::{find_tenant, migrated_pool};
use crate::config::{self, DatabaseArgs};
use crate::store;

#[derive(Debug, Subcommand)]
pub enum AllowCommand {
    /// Allow lookups from a network (CIDR or single address)
    Add {
        #[arg(long)]
        tenant: String,
        cidr: String,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// List allowed networks
    List {
        #[arg(long)]
        tenant: String,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// Remove a network
    Remove {
        #[arg(long)]
        tenant: String,
        cidr: String,
        #[command(flatten)]
        db: DatabaseArgs,
    },
}

fn parse_network(raw: &str) -> anyhow::Result<IpNetwork> {
    config::parse_network(raw).map_err(anyhow::Error::msg)
}

pub async fn run(cmd: AllowCommand) -> anyhow::Result<()> {
    match cmd {
        AllowCommand::Add { tenant, cidr, db } => {
            let network = parse_network(&cidr)?;
            let pool = migrated_pool(&db).await?;
            let tenant = find_tenant(&pool, &tenant).await?;
            let mut client = pool.get().await?;
            let tx = client.transaction().await?;
            let added = store::allowlist::add(&tx, tenant.id, network)
                .await
                .with_context(|| format!("cannot add {network}"))?;
            tx.commit().await?;
            eprintln!(
                "{network} {} the allowlist of `{}`",
                if added { "added to" } else { "was already on" },
                tenant.slug
            );
        }
        AllowCommand::List { tenant, db } => {
            let pool = migrated_pool(&db).await?;
            let tenant = find_tenant(&pool, &tenant).await?;
            let client = pool.get().await?;
            let networks = store::allowlist::list(&client, tenant.id).await?;
            if networks.is_empty() {
                eprintln!("no allowlist: lookups are accepted from any address");
            }
            for network in networks {
                println!("{network}");
            }
        }
        AllowCommand::Remove { tenant, cidr, db } => {
            let network = parse_network(&cidr)?;
            let pool = migrated_pool(&db).await?;
            let tenant = find_tenant(&pool, &tenant).await?;
            let client = pool.get().await?;
            if !store::allowlist::remove(&client, tenant.id, network).await? {
                bail!("{network} is not on the allowlist of `{}`", tenant.slug);
            }
            eprintln!("removed {network} from the allowlist of `{}`", tenant.slug);
        }
    }
    Ok(())
}
