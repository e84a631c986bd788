//! `cidgate events` and `cidgate calls`: how a PBX reports calls, and call records out.

use clap::Subcommand;

use super::db::{find_tenant, migrated_pool};
use crate::calls::call_end::{CALL_END_MAPPING, CallEndMapping};
use crate::calls::cdr::{RangeEnd, csv_header, csv_rows, parse_date, tenant_zone};
use crate::config::DatabaseArgs;
use crate::domain::TokenScope;
use crate::store::{self, cdr};

#[derive(Debug, Subcommand)]
pub enum EventsCommand {
    /// The IVR's call-end variables: which one holds which call field
    #[command(subcommand)]
    Mapping(MappingCommand),
    /// Print the URL to paste into the PBX's event adapter (makes a new `events` token)
    AdapterUrl {
        #[arg(long)]
        tenant: String,
        /// The PBX's adapter dialect
        #[arg(long, value_parser = ["focalscope"])]
        style: String,
        /// The gateway's address as the PBX reaches it
        #[arg(long, env = "CIDGATE_PUBLIC_URL")]
        public_url: url::Url,
        #[command(flatten)]
        db: DatabaseArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum MappingCommand {
    /// Replace the mapping: FIELD=VARIABLE pairs, e.g. caller=ani call_id=uniqueid
    Set {
        #[arg(long)]
        tenant: String,
        #[arg(required = true)]
        pairs: Vec<String>,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// Print the mapping, one FIELD=VARIABLE a line
    Show {
        #[arg(long)]
        tenant: String,
        #[command(flatten)]
        db: DatabaseArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum CallsCommand {
    /// Write the ended calls started in a range as CSV (the CDR API's columns)
    Export {
        #[arg(long)]
        tenant: String,
        /// RFC 3339, or YYYY-MM-DD[ HH:MM:SS] in the tenant's time zone
        #[arg(long)]
        from: String,
        #[arg(long)]
        to: String,
        #[command(flatten)]
        db: DatabaseArgs,
    },
}

/// The FocalScope URL adapter's callback parameters (reference/dial-api-and-event-url-adapter).
const FOCALSCOPE_QUERY: &str = "CallType={{CallTypeName}}&Event={{DialApiEventName}}&CallID={{CallID}}&RequestID={{DialApiRequestID}}&EventCode={{DialApiEventCode}}&IsCallRecorded={{IsCallRecorded}}&Guid={{CallUUID}}";

pub async fn run(cmd: EventsCommand) -> anyhow::Result<()> {
    match cmd {
        EventsCommand::Mapping(MappingCommand::Set { tenant, pairs, db }) => {
            let mapping = CallEndMapping::parse_pairs(pairs.iter().map(String::as_str))
                .map_err(anyhow::Error::msg)?;
            let pool = migrated_pool(&db).await?;
            let tenant = find_tenant(&pool, &tenant).await?;
            let client = pool.get().await?;
            store::tenants::set_setting(&client, tenant.id, CALL_END_MAPPING, &mapping.to_json())
                .await?;
            eprintln!("call-end mapping of `{}` set", tenant.slug);
        }
        EventsCommand::Mapping(MappingCommand::Show { tenant, db }) => {
            let pool = migrated_pool(&db).await?;
            let tenant = find_tenant(&pool, &tenant).await?;
            let mapping = CallEndMapping::from_json(tenant.settings.get(CALL_END_MAPPING));
            for (field, variable) in mapping.entries() {
                println!("{field}={variable}");
            }
        }
        EventsCommand::AdapterUrl {
            tenant,
            style: _,
            public_url,
            db,
        } => {
            let pool = migrated_pool(&db).await?;
            let tenant = find_tenant(&pool, &tenant).await?;
            let client = pool.get().await?;
            let (_, token) =
                store::tokens::create(&client, tenant.id, TokenScope::Events, "focalscope adapter")
                    .await?;
            let base = public_url.as_str().trim_end_matches('/');
            println!(
                "{base}/api/v1/events/focalscope?{FOCALSCOPE_QUERY}&token={}",
                token.expose()
            );
            eprintln!(
                "made a new events token for `{}`; it is in the URL above only",
                tenant.slug
            );
        }
    }
    Ok(())
}

pub async fn run_calls(cmd: CallsCommand) -> anyhow::Result<()> {
    let CallsCommand::Export {
        tenant,
        from,
        to,
        db,
    } = cmd;
    let pool = migrated_pool(&db).await?;
    let tenant = find_tenant(&pool, &tenant).await?;
    let zone = tenant_zone(&tenant.settings);
    let filter = crate::domain::CdrFilter {
        from: parse_date(&from, zone, RangeEnd::Start)
            .map_err(|e| anyhow::anyhow!("--from {e}"))?,
        to: parse_date(&to, zone, RangeEnd::Finish).map_err(|e| anyhow::anyhow!("--to {e}"))?,
        ..crate::domain::CdrFilter::default()
    };
    anyhow::ensure!(filter.to >= filter.from, "--to is before --from");
    let client = pool.get().await?;
    let mut out = csv::Writer::from_writer(std::io::stdout().lock());
    csv_header(&mut out)?;
    let mut position = cdr::start(&client, tenant.id).await?;
    // The calls as they stand now: the walk by start time, not the changes after it.
    while matches!(position, crate::domain::Position::ByStart { .. }) {
        let page = cdr::page(&client, tenant.id, &filter, position, 1_000).await?;
        let by_start = matches!(page.next, crate::domain::Position::ByStart { .. });
        let calls: Vec<_> = page.calls;
        csv_rows(&mut out, &calls, zone)?;
        position = page.next;
        if !by_start {
            break;
        }
    }
    out.flush()?;
    Ok(())
}
