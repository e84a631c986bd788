//! `cidgate service-user`: who BI, billing and payroll systems pull reports and call
//! records as, each with keys limited to some agents or groups (or none: every agent).

use anyhow::{Context, bail};
use clap::Subcommand;

use super::db::{find_tenant, migrated_pool};
use crate::config::DatabaseArgs;
use crate::domain::{Extension, GroupName, ServiceUserName, agent_extension};
use crate::store::service_users;

#[derive(Debug, Subcommand)]
pub enum ServiceUserCommand {
    /// Create a service user and print its key (shown only this once)
    Create {
        #[arg(long)]
        tenant: String,
        name: String,
        /// Comma-separated extensions (or `Name(extension)`) whose calls it sees
        #[arg(long)]
        agents: Option<String>,
        /// Comma-separated groups whose agents' and calls it sees
        #[arg(long)]
        groups: Option<String>,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// List the tenant's service users (never their keys)
    List {
        #[arg(long)]
        tenant: String,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// Revoke a service user and all its keys; its reports stop
    Revoke {
        #[arg(long)]
        tenant: String,
        name: String,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// Print a new key for the service user; its other keys work for the grace period
    Rotate {
        #[arg(long)]
        tenant: String,
        name: String,
        /// How long the old keys stay valid, e.g. 30m, 24h, 7d
        #[arg(long, default_value = "24h", value_parser = humantime::parse_duration)]
        grace: std::time::Duration,
        #[command(flatten)]
        db: DatabaseArgs,
    },
}

const MAX_GRACE_SECS: u64 = 30 * 24 * 3600;

fn extensions(raw: &str) -> anyhow::Result<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for item in raw.split(',') {
        let extension = agent_extension(item)
            .map(Extension::parse)
            .unwrap_or_else(|| Err("an empty item".into()))
            .map_err(|e| anyhow::anyhow!("--agents: {e}"))?;
        if !out.iter().any(|e| e == extension.as_str()) {
            out.push(extension.as_str().to_owned());
        }
    }
    Ok(out)
}

/// What a service user sees, for people.
pub fn sees(agents: Option<&[String]>, groups: Option<&[String]>) -> String {
    match (agents, groups) {
        (None, None) => "every agent".into(),
        (agents, groups) => {
            let mut parts = Vec::new();
            if let Some(agents) = agents.filter(|a| !a.is_empty()) {
                parts.push(format!("agents {}", agents.join(",")));
            }
            if let Some(groups) = groups.filter(|g| !g.is_empty()) {
                parts.push(format!("groups {}", groups.join(",")));
            }
            parts.join(" and ")
        }
    }
}

pub async fn run(cmd: ServiceUserCommand) -> anyhow::Result<()> {
    match cmd {
        ServiceUserCommand::Create {
            tenant,
            name,
            agents,
            groups,
            db,
        } => {
            let name = ServiceUserName::parse(&name).map_err(anyhow::Error::msg)?;
            let agents = agents.as_deref().map(extensions).transpose()?;
            let groups = match groups.as_deref() {
                Some(raw) => Some(
                    GroupName::parse_list(raw)
                        .map_err(|e| anyhow::anyhow!("--groups: {e}"))?
                        .iter()
                        .map(|g| g.as_str().to_owned())
                        .collect::<Vec<_>>(),
                ),
                None => None,
            };
            let pool = migrated_pool(&db).await?;
            let tenant = find_tenant(&pool, &tenant).await?;
            let mut client = pool.get().await?;
            let tx = client.transaction().await?;
            let (user, key) =
                service_users::create(&tx, tenant.id, &name, agents.as_deref(), groups.as_deref())
                    .await
                    .map_err(|e| match e {
                        crate::domain::CreateError::Exists(_) => anyhow::anyhow!("{e}"),
                        crate::domain::CreateError::Unexpected(e) => e,
                    })?;
            tx.commit().await.context("saving the service user")?;
            eprintln!(
                "created service user `{name}` of `{}`, seeing {}; its key (a `report` key) \
                 is shown only this once:",
                tenant.slug,
                sees(user.agents.as_deref(), user.groups.as_deref())
            );
            println!("{}", key.expose());
        }
        ServiceUserCommand::List { tenant, db } => {
            let pool = migrated_pool(&db).await?;
            let tenant = find_tenant(&pool, &tenant).await?;
            let client = pool.get().await?;
            println!(
                "{:<24} {:<8} {:<5} {:<25} SEES",
                "NAME", "STATE", "KEYS", "CREATED"
            );
            for user in service_users::list(&client, tenant.id).await? {
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
        ServiceUserCommand::Revoke { tenant, name, db } => {
            let name = ServiceUserName::parse(&name).map_err(anyhow::Error::msg)?;
            let pool = migrated_pool(&db).await?;
            let tenant = find_tenant(&pool, &tenant).await?;
            let client = pool.get().await?;
            if !service_users::revoke(&client, tenant.id, &name).await? {
                bail!("`{}` has no active service user `{name}`", tenant.slug);
            }
            eprintln!("revoked service user `{name}` and its keys; its reports stop");
        }
        ServiceUserCommand::Rotate {
            tenant,
            name,
            grace,
            db,
        } => {
            anyhow::ensure!(
                grace.as_secs() <= MAX_GRACE_SECS,
                "--grace: at most 30 days (720h); the old keys should stop working soon"
            );
            let name = ServiceUserName::parse(&name).map_err(anyhow::Error::msg)?;
            let pool = migrated_pool(&db).await?;
            let tenant = find_tenant(&pool, &tenant).await?;
            let mut client = pool.get().await?;
            let tx = client.transaction().await?;
            let Some((key, expiring)) = service_users::rotate(&tx, tenant.id, &name, grace).await?
            else {
                bail!("`{}` has no active service user `{name}`", tenant.slug);
            };
            tx.commit().await?;
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
        assert_eq!(extensions("200, Agent1(201),200").unwrap(), ["200", "201"]);
        assert!(extensions("200,,201").is_err());
        assert_eq!(sees(None, None), "every agent");
        let groups = ["Sales".to_owned()];
        assert_eq!(sees(None, Some(&groups)), "groups Sales");
    }
}
