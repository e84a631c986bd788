//! `cidgate service-user`: who BI, billing and payroll systems pull reports and call
//! records as, each with keys limited to some agents or groups (or none: every agent).

use clap::Subcommand;

use super::db::TenantArgs;
use crate::admin::service_users::{self, sees};
use crate::domain::{Extension, GroupName, ServiceUserName, agent_extension};

#[derive(Debug, Subcommand)]
pub enum ServiceUserCommand {
    /// Create a service user and print its key (shown only this once)
    Create {
        #[command(flatten)]
        at: TenantArgs,
        name: String,
        /// Comma-separated extensions (or `Name(extension)`) whose calls it sees
        #[arg(long)]
        agents: Option<String>,
        /// Comma-separated groups whose agents' and calls it sees
        #[arg(long)]
        groups: Option<String>,
    },
    /// List the tenant's service users (never their keys)
    List {
        #[command(flatten)]
        at: TenantArgs,
    },
    /// Revoke a service user and all its keys; its reports stop
    Revoke {
        #[command(flatten)]
        at: TenantArgs,
        name: String,
    },
    /// Print a new key for the service user; its other keys work for the grace period
    Rotate {
        #[command(flatten)]
        at: TenantArgs,
        name: String,
        /// How long the old keys stay valid, e.g. 30m, 24h, 7d
        #[arg(long, default_value = "24h", value_parser = humantime::parse_duration)]
        grace: std::time::Duration,
    },
}

fn extensions(raw: &str) -> anyhow::Result<Vec<Extension>> {
    let mut out: Vec<Extension> = Vec::new();
    for item in raw.split(',') {
        let extension = agent_extension(item)
            .map(Extension::parse)
            .unwrap_or_else(|| Err("an empty item".into()))
            .map_err(|e| anyhow::anyhow!("--agents: {e}"))?;
        if !out.contains(&extension) {
            out.push(extension);
        }
    }
    Ok(out)
}

fn name(raw: &str) -> anyhow::Result<ServiceUserName> {
    ServiceUserName::parse(raw).map_err(anyhow::Error::msg)
}

pub async fn run(cmd: ServiceUserCommand) -> anyhow::Result<()> {
    match cmd {
        ServiceUserCommand::Create {
            at,
            name: raw,
            agents,
            groups,
        } => {
            let name = name(&raw)?;
            let agents = agents.as_deref().map(extensions).transpose()?;
            let groups = groups
                .as_deref()
                .map(|raw| GroupName::parse_list(raw).map_err(|e| anyhow::anyhow!("--groups: {e}")))
                .transpose()?;
            let (db, tenant) = at.open().await?;
            let (user, key) =
                service_users::create(&db, &tenant, &name, agents.as_deref(), groups.as_deref())
                    .await?;
            eprintln!(
                "created service user `{name}` of `{}`, seeing {}; its key (a `report` key) \
                 is shown only this once:",
                tenant.slug,
                sees(user.agents.as_deref(), user.groups.as_deref())
            );
            println!("{}", key.expose());
        }
        ServiceUserCommand::List { at } => {
            let (db, tenant) = at.open().await?;
            println!(
                "{:<24} {:<8} {:<5} {:<25} SEES",
                "NAME", "STATE", "KEYS", "CREATED"
            );
            for user in service_users::list(&db, &tenant).await? {
                let state = if user.revoked_at.is_some() {
                    "revoked"
                } else {
                    "active"
                };
                println!(
                    "{:<24} {:<8} {:<5} {:<25} {}",
                    user.name,
                    state,
                    user.live_keys,
                    user.created_at.to_rfc3339(),
                    sees(user.agents.as_deref(), user.groups.as_deref())
                );
            }
        }
        ServiceUserCommand::Revoke { at, name: raw } => {
            let name = name(&raw)?;
            let (db, tenant) = at.open().await?;
            service_users::revoke(&db, &tenant, &name).await?;
            eprintln!("revoked service user `{name}` and its keys; its reports stop");
        }
        ServiceUserCommand::Rotate {
            at,
            name: raw,
            grace,
        } => {
            let name = name(&raw)?;
            let (db, tenant) = at.open().await?;
            let (key, expiring) = service_users::rotate(&db, &tenant, &name, grace).await?;
            eprintln!(
                "new key for `{name}`; its {expiring} other key(s) stop working in {}:",
                humantime::format_duration(grace)
            );
            println!("{}", key.expose());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agents_are_read_as_extensions() {
        let read: Vec<String> = extensions("200, Agent1(201),200")
            .unwrap()
            .iter()
            .map(|e| e.as_str().to_owned())
            .collect();
        assert_eq!(read, ["200", "201"]);
        assert!(extensions("200,,201").is_err());
    }
}
