//! `cidgate agent`: a tenant's agents (extension, name, groups), named `Name(extension)`
//! in events and reports.

use anyhow::bail;
use clap::Subcommand;

use super::db::{find_tenant, migrated_pool};
use crate::config::DatabaseArgs;
use crate::domain::{Agent, AgentName, Extension, GroupName};
use crate::store;

#[derive(Debug, Subcommand)]
pub enum AgentCommand {
    /// Add an agent, or replace the one with this extension
    Add {
        #[arg(long)]
        tenant: String,
        extension: String,
        #[arg(long)]
        name: String,
        /// Comma-separated groups or skills, as calls carry them in `group`
        #[arg(long)]
        groups: Option<String>,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// List the tenant's agents
    List {
        #[arg(long)]
        tenant: String,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// Remove an agent (its calls stay, named as the PBX named them)
    Remove {
        #[arg(long)]
        tenant: String,
        extension: String,
        #[command(flatten)]
        db: DatabaseArgs,
    },
}

pub async fn run(cmd: AgentCommand) -> anyhow::Result<()> {
    match cmd {
        AgentCommand::Add {
            tenant,
            extension,
            name,
            groups,
            db,
        } => {
            let agent = Agent {
                extension: Extension::parse(&extension).map_err(anyhow::Error::msg)?,
                name: AgentName::parse(&name).map_err(|e| anyhow::anyhow!("--name: {e}"))?,
                groups: match groups.as_deref() {
                    Some(raw) => {
                        GroupName::parse_list(raw).map_err(|e| anyhow::anyhow!("--groups: {e}"))?
                    }
                    None => Vec::new(),
                },
            };
            let pool = migrated_pool(&db).await?;
            let tenant = find_tenant(&pool, &tenant).await?;
            let mut client = pool.get().await?;
            let verb = match store::agents::put_capped(&mut client, tenant.id, &agent).await? {
                crate::domain::Put::Added => "added",
                crate::domain::Put::Replaced => "replaced",
                crate::domain::Put::OverCap(cap) => bail!(
                    "`{}` has its {cap} agents already; raise the cap with `cidgate tenant set {} --max-agents N`",
                    tenant.slug,
                    tenant.slug
                ),
            };
            eprintln!("{verb} agent {} of `{}`", agent.key(), tenant.slug);
        }
        AgentCommand::List { tenant, db } => {
            let pool = migrated_pool(&db).await?;
            let tenant = find_tenant(&pool, &tenant).await?;
            let client = pool.get().await?;
            println!("{:<12} {:<30} GROUPS", "EXTENSION", "AGENT");
            for agent in store::agents::list(&client, tenant.id).await? {
                let groups: Vec<&str> = agent.groups.iter().map(GroupName::as_str).collect();
                println!(
                    "{:<12} {:<30} {}",
                    agent.extension,
                    agent.key(),
                    groups.join(",")
                );
            }
        }
        AgentCommand::Remove {
            tenant,
            extension,
            db,
        } => {
            let extension = Extension::parse(&extension).map_err(anyhow::Error::msg)?;
            let pool = migrated_pool(&db).await?;
            let tenant = find_tenant(&pool, &tenant).await?;
            let client = pool.get().await?;
            if !store::agents::remove(&client, tenant.id, &extension).await? {
                bail!("`{}` has no agent with extension {extension}", tenant.slug);
            }
            eprintln!("removed agent {extension} of `{}`", tenant.slug);
        }
    }
    Ok(())
}
