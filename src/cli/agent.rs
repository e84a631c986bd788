//! `cidgate agent`: a tenant's agents (extension, name, groups), named `Name(extension)`
//! in events and reports.

use anyhow::bail;
use clap::Subcommand;

use super::db::TenantArgs;
use crate::admin::agents::{self, Put};
use crate::domain::{Agent, AgentName, Extension, GroupName};

#[derive(Debug, Subcommand)]
pub enum AgentCommand {
    /// Add an agent, or replace the one with this extension
    Add {
        #[command(flatten)]
        at: TenantArgs,
        extension: String,
        #[arg(long)]
        name: String,
        /// Comma-separated groups or skills, as calls carry them in `group`
        #[arg(long)]
        groups: Option<String>,
    },
    /// List the tenant's agents
    List {
        #[command(flatten)]
        at: TenantArgs,
    },
    /// Remove an agent (its calls stay, named as the PBX named them)
    Remove {
        #[command(flatten)]
        at: TenantArgs,
        extension: String,
    },
}

pub async fn run(cmd: AgentCommand) -> anyhow::Result<()> {
    match cmd {
        AgentCommand::Add {
            at,
            extension,
            name,
            groups,
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
            let (db, tenant) = at.open().await?;
            let verb = match agents::put(&db, &tenant, &agent).await? {
                Put::Added => "added",
                _ => "replaced",
            };
            eprintln!("{verb} agent {} of `{}`", agent.key(), tenant.slug);
        }
        AgentCommand::List { at } => {
            let (db, tenant) = at.open().await?;
            println!("{:<12} {:<30} GROUPS", "EXTENSION", "AGENT");
            for agent in agents::list(&db, &tenant).await? {
                let groups: Vec<&str> = agent.groups.iter().map(GroupName::as_str).collect();
                println!(
                    "{:<12} {:<30} {}",
                    agent.extension,
                    agent.key(),
                    groups.join(",")
                );
            }
        }
        AgentCommand::Remove { at, extension } => {
            let extension = Extension::parse(&extension).map_err(anyhow::Error::msg)?;
            let (db, tenant) = at.open().await?;
            if !agents::remove(&db, &tenant, &extension).await? {
                bail!("`{}` has no agent with extension {extension}", tenant.slug);
            }
            eprintln!("removed agent {extension} of `{}`", tenant.slug);
        }
    }
    Ok(())
}
