//! `cidgate token`: create, list, rotate and revoke API tokens.

use clap::Subcommand;

use super::db::{TenantArgs, open};
use crate::admin::{Db, tokens};
use crate::config::DatabaseArgs;
use crate::domain::{Tenant, TokenScopes};

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token and print it (shown only this once)
    Create {
        #[command(flatten)]
        at: TenantArgs,
        /// lookup, sync, report or admin
        #[arg(long)]
        scope: String,
        #[arg(long, default_value = "")]
        label: String,
    },
    /// List a tenant's tokens (never their secrets)
    List {
        #[command(flatten)]
        at: TenantArgs,
    },
    /// Revoke a token by its id
    Revoke {
        id: i64,
        /// The tenant the token must belong to (default: whichever it does)
        #[arg(long)]
        tenant: Option<String>,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// Issue a new token in place of ID and print it; ID keeps working for the grace period
    Rotate {
        id: i64,
        /// The tenant the token must belong to (default: whichever it does)
        #[arg(long)]
        tenant: Option<String>,
        /// How long the old token stays valid, e.g. 30m, 24h, 7d
        #[arg(long, default_value = "24h", value_parser = humantime::parse_duration)]
        grace: std::time::Duration,
        #[command(flatten)]
        db: DatabaseArgs,
    },
}

pub async fn run(cmd: TokenCommand) -> anyhow::Result<()> {
    match cmd {
        TokenCommand::Create { at, scope, label } => {
            let scope = TokenScopes::parse(&scope).map_err(|e| anyhow::anyhow!("--scope: {e}"))?;
            let (db, tenant) = at.open().await?;
            let issued = tokens::create(&db, &tenant, scope.clone(), &label).await?;
            println!("{}", issued.token.expose());
            eprintln!(
                "created {scope} token {} for `{}`; it is shown only this once",
                issued.id, tenant.slug
            );
        }
        TokenCommand::List { at } => {
            let (db, tenant) = at.open().await?;
            println!(
                "{:>6} {:<7} {:<25} {:<25} {:<8} LABEL",
                "ID", "SCOPE", "CREATED", "LAST USED", "STATE"
            );
            for t in tokens::list(&db, &tenant).await? {
                let state = match (t.revoked_at, t.expires_at) {
                    (Some(_), _) => "revoked",
                    (None, Some(at)) if at <= chrono::Utc::now() => "expired",
                    (None, Some(_)) => "expiring",
                    (None, None) => "active",
                };
                let last_used = t
                    .last_used_at
                    .map_or_else(|| "-".to_owned(), |at| at.to_rfc3339());
                println!(
                    "{:>6} {:<7} {:<25} {:<25} {:<8} {}",
                    t.id,
                    t.scope,
                    t.created_at.to_rfc3339(),
                    last_used,
                    state,
                    t.label
                );
            }
        }
        TokenCommand::Rotate {
            id,
            tenant,
            grace,
            db,
        } => {
            let (db, tenant) = owner(&db, tenant.as_deref()).await?;
            let rotated = tokens::rotate(&db, tenant.as_ref(), id, grace).await?;
            println!("{}", rotated.issued.token.expose());
            eprintln!(
                "token {} replaces token {id}, which stops working at {}",
                rotated.issued.id,
                rotated.old_expires.to_rfc3339()
            );
        }
        TokenCommand::Revoke { id, tenant, db } => {
            let (db, tenant) = owner(&db, tenant.as_deref()).await?;
            tokens::revoke(&db, tenant.as_ref(), id).await?;
            eprintln!("revoked token {id}");
        }
    }
    Ok(())
}

/// The database, and the tenant `--tenant` names when it names one.
async fn owner(db: &DatabaseArgs, tenant: Option<&str>) -> anyhow::Result<(Db, Option<Tenant>)> {
    let db = open(db).await?;
    let tenant = match tenant {
        Some(slug) => Some(db.tenant(slug).await?),
        None => None,
    };
    Ok((db, tenant))
}
