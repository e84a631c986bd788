//! `cidgate token`: create, list, rotate and revoke API tokens.

use anyhow::bail;
use clap::Subcommand;
use deadpool_postgres::Pool;

use super::db::{find_tenant, migrated_pool};
use crate::config::DatabaseArgs;
use crate::domain::{TenantId, TokenScopes};
use crate::store;

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token and print it (shown only this once)
    Create {
        #[arg(long)]
        tenant: String,
        /// lookup, sync, report or admin
        #[arg(long)]
        scope: String,
        #[arg(long, default_value = "")]
        label: String,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// List a tenant's tokens (never their secrets)
    List {
        #[arg(long)]
        tenant: String,
        #[command(flatten)]
        db: DatabaseArgs,
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

const MAX_GRACE_SECS: u64 = 30 * 24 * 3600;

pub async fn run(cmd: TokenCommand) -> anyhow::Result<()> {
    match cmd {
        TokenCommand::Create {
            tenant,
            scope,
            label,
            db,
        } => {
            let scope = TokenScopes::parse(&scope).map_err(|e| anyhow::anyhow!("--scope: {e}"))?;
            let pool = migrated_pool(&db).await?;
            let tenant = find_tenant(&pool, &tenant).await?;
            let client = pool.get().await?;
            let (id, token) =
                store::tokens::create(&client, tenant.id, scope.clone(), &label).await?;
            println!("{}", token.expose());
            eprintln!(
                "created {scope} token {id} for `{}`; it is shown only this once",
                tenant.slug
            );
        }
        TokenCommand::List { tenant, db } => {
            let pool = migrated_pool(&db).await?;
            let tenant = find_tenant(&pool, &tenant).await?;
            let client = pool.get().await?;
            println!(
                "{:>6} {:<7} {:<25} {:<25} {:<8} LABEL",
                "ID", "SCOPE", "CREATED", "LAST USED", "STATE"
            );
            for t in store::tokens::list(&client, tenant.id).await? {
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
            anyhow::ensure!(
                grace.as_secs() <= MAX_GRACE_SECS,
                "--grace: at most 30 days (720h); the old token should stop working soon"
            );
            let pool = migrated_pool(&db).await?;
            let owner = owner(&pool, tenant.as_deref(), id).await?;
            let mut client = pool.get().await?;
            let tx = client.transaction().await?;
            let rotated = match owner {
                Some(owner) => store::tokens::rotate(&tx, owner, id, grace).await?,
                None => None,
            };
            let Some((new_id, token, old_expires)) = rotated else {
                bail!("no active token with id {id}{}", of(tenant.as_deref()));
            };
            tx.commit().await?;
            println!("{}", token.expose());
            eprintln!(
                "token {new_id} replaces token {id}, which stops working at {}",
                old_expires.to_rfc3339()
            );
        }
        TokenCommand::Revoke { id, tenant, db } => {
            let pool = migrated_pool(&db).await?;
            let owner = owner(&pool, tenant.as_deref(), id).await?;
            let client = pool.get().await?;
            let revoked = match owner {
                Some(owner) => store::tokens::revoke(&client, owner, id).await?,
                None => false,
            };
            if !revoked {
                bail!("no active token with id {id}{}", of(tenant.as_deref()));
            }
            eprintln!("revoked token {id}");
        }
    }
    Ok(())
}

/// Whose token `id` is to be: the tenant `--tenant` names, else the token's own (`None`:
/// no token has that id).
async fn owner(pool: &Pool, tenant: Option<&str>, id: i64) -> anyhow::Result<Option<TenantId>> {
    match tenant {
        Some(slug) => Ok(Some(find_tenant(pool, slug).await?.id)),
        None => store::tokens::tenant_of(&pool.get().await?, id).await,
    }
}

/// Names the tenant in a message, when `--tenant` named one.
fn of(tenant: Option<&str>) -> String {
    tenant.map_or_else(String::new, |slug| format!(" for `{slug}`"))
}
