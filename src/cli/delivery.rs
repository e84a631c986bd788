//! `cidgate delivery`: the delivery log of web-service profiles, and replay.

use anyhow::bail;
use chrono::{DateTime, Utc};
use clap::Subcommand;
use uuid::Uuid;

use super::db::{TenantArgs, open};
use crate::admin::deliveries;
use crate::config::DatabaseArgs;
use crate::domain::profile::LogFilter;

#[derive(Debug, Subcommand)]
pub enum DeliveryCommand {
    /// List deliveries, newest first
    List {
        #[command(flatten)]
        at: TenantArgs,
        #[arg(long)]
        profile: Option<String>,
        /// Only failed ones (given up, or waiting to be retried)
        #[arg(long)]
        failed: bool,
        /// Only those queued since: an RFC 3339 time or a duration ago (`2h`, `7d`)
        #[arg(long, value_parser = parse_since)]
        since: Option<DateTime<Utc>>,
        #[arg(long, default_value_t = 100)]
        limit: i64,
    },
    /// Show a delivery's attempts
    Show {
        id: Uuid,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// Queue deliveries again, with the same webhook-id: one by id, or the failed ones
    /// of a tenant (`--tenant T --failed [--profile P] [--since T]`)
    Replay {
        id: Option<Uuid>,
        #[arg(long)]
        tenant: Option<String>,
        #[arg(long)]
        profile: Option<String>,
        #[arg(long)]
        failed: bool,
        #[arg(long, value_parser = parse_since)]
        since: Option<DateTime<Utc>>,
        #[command(flatten)]
        db: DatabaseArgs,
    },
}

/// An RFC 3339 time, or a duration before now.
pub fn parse_since(raw: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(at) = DateTime::parse_from_rfc3339(raw.trim()) {
        return Ok(at.with_timezone(&Utc));
    }
    let ago = humantime::parse_duration(raw.trim())
        .map_err(|_| format!("`{raw}` is neither an RFC 3339 time nor a duration such as 2h"))?;
    Ok(Utc::now() - chrono::Duration::from_std(ago).map_err(|e| e.to_string())?)
}

pub async fn run(cmd: DeliveryCommand) -> anyhow::Result<()> {
    match cmd {
        DeliveryCommand::List {
            at,
            profile,
            failed,
            since,
            limit,
        } => {
            let (db, tenant) = at.open().await?;
            let filter = LogFilter {
                profile,
                failed,
                since,
                limit: limit.clamp(1, 10_000),
            };
            for d in deliveries::list(&db, tenant.id, &filter).await? {
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
                    d.id,
                    d.state,
                    d.attempts,
                    d.last_status.map_or_else(|| "-".into(), |s| s.to_string()),
                    d.profile,
                    d.trigger,
                    d.created_at.to_rfc3339(),
                    d.last_error.unwrap_or_default()
                );
            }
        }
        DeliveryCommand::Show { id, db } => {
            let db = open(&db).await?;
            for a in deliveries::attempts(&db, None, id).await? {
                println!(
                    "{}\t{}\t{} ms\t{}\t{}",
                    a.at.to_rfc3339(),
                    a.status.map_or_else(|| "-".into(), |s| s.to_string()),
                    a.latency_ms,
                    a.error.unwrap_or_default(),
                    a.response
                        .unwrap_or_default()
                        .chars()
                        .take(120)
                        .collect::<String>()
                );
            }
        }
        DeliveryCommand::Replay {
            id,
            tenant,
            profile,
            failed,
            since,
            db,
        } => {
            let db = open(&db).await?;
            let replayed = match (id, tenant) {
                (Some(id), _) => deliveries::replay(&db, None, id).await?,
                (None, Some(tenant)) if failed => {
                    let tenant = db.tenant(&tenant).await?.id;
                    deliveries::replay_failed(&db, tenant, profile.as_deref(), since).await?
                }
                _ => bail!("give a delivery id, or --tenant T --failed [--profile P] [--since T]"),
            };
            for (old, new) in &replayed {
                println!("{old} -> {new}");
            }
            eprintln!(
                "{} deliveries queued again; the gateway sends them",
                replayed.len()
            );
        }
    }
    Ok(())
}
