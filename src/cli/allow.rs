//! `cidgate allow`: a tenant's IP allowlist for lookups.

use clap::Subcommand;
use ipnetwork::IpNetwork;

use super::db::TenantArgs;
use crate::admin::allowlist;
use crate::config;

#[derive(Debug, Subcommand)]
pub enum AllowCommand {
    /// Allow lookups from a network (CIDR or single address)
    Add {
        #[command(flatten)]
        at: TenantArgs,
        cidr: String,
    },
    /// List allowed networks
    List {
        #[command(flatten)]
        at: TenantArgs,
    },
    /// Remove a network
    Remove {
        #[command(flatten)]
        at: TenantArgs,
        cidr: String,
    },
}

fn parse_network(raw: &str) -> anyhow::Result<IpNetwork> {
    config::parse_network(raw).map_err(anyhow::Error::msg)
}

pub async fn run(cmd: AllowCommand) -> anyhow::Result<()> {
    match cmd {
        AllowCommand::Add { at, cidr } => {
            let network = parse_network(&cidr)?;
            let (db, tenant) = at.open().await?;
            let added = allowlist::add(&db, &tenant, network).await?;
            eprintln!(
                "{network} {} the allowlist of `{}`",
                if added { "added to" } else { "was already on" },
                tenant.slug
            );
        }
        AllowCommand::List { at } => {
            let (db, tenant) = at.open().await?;
            let networks = allowlist::list(&db, &tenant).await?;
            if networks.is_empty() {
                eprintln!("no allowlist: lookups are accepted from any address");
            }
            for network in networks {
                println!("{network}");
            }
        }
        AllowCommand::Remove { at, cidr } => {
            let network = parse_network(&cidr)?;
            let (db, tenant) = at.open().await?;
            allowlist::remove(&db, &tenant, network).await?;
            eprintln!("removed {network} from the allowlist of `{}`", tenant.slug);
        }
    }
    Ok(())
}
