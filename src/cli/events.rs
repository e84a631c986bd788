//! `cidgate events` and `cidgate calls`: how a PBX reports calls, and call records out.

use clap::Subcommand;

use super::db::TenantArgs;
use crate::admin::{tenants, tokens};
use crate::calls::call_end::{CALL_END_MAPPING, CallEndMapping};
use crate::calls::cdr::{RangeEnd, csv_header, csv_rows, parse_date, tenant_zone};
use crate::domain::TokenScope;
use crate::store::cdr;

#[derive(Debug, Subcommand)]
pub enum EventsCommand {
    /// The IVR's call-end variables: which one holds which call field
    #[command(subcommand)]
    Mapping(MappingCommand),
    /// Print the URL to paste into the PBX's event adapter (makes a new `events` token)
    AdapterUrl {
        #[command(flatten)]
        at: TenantArgs,
        /// The PBX's adapter dialect
        #[arg(long, value_parser = ["focalscope"])]
        style: String,
        /// The gateway's address as the PBX reaches it
        #[arg(long, env = "CIDGATE_PUBLIC_URL")]
        public_url: url::Url,
    },
}

#[derive(Debug, Subcommand)]
pub enum MappingCommand {
    /// Replace the mapping: FIELD=VARIABLE pairs, e.g. caller=ani call_id=uniqueid
    Set {
        #[command(flatten)]
        at: TenantArgs,
        #[arg(required = true)]
        pairs: Vec<String>,
    },
    /// Print the mapping, one FIELD=VARIABLE a line
    Show {
        #[command(flatten)]
        at: TenantArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum CallsCommand {
    /// Write the ended calls started in a range as CSV (the CDR API's columns)
    Export {
        #[command(flatten)]
        at: TenantArgs,
        /// RFC 3339, or YYYY-MM-DD[ HH:MM:SS] in the tenant's time zone
        #[arg(long)]
        from: String,
        #[arg(long)]
        to: String,
    },
}

/// The FocalScope URL adapter's callback parameters (reference/dial-api-and-event-url-adapter).
const FOCALSCOPE_QUERY: &str = "CallType={{CallTypeName}}&Event={{DialApiEventName}}&CallID={{CallID}}&RequestID={{DialApiRequestID}}&EventCode={{DialApiEventCode}}&IsCallRecorded={{IsCallRecorded}}&Guid={{CallUUID}}";

pub async fn run(cmd: EventsCommand) -> anyhow::Result<()> {
    match cmd {
        EventsCommand::Mapping(MappingCommand::Set { at, pairs }) => {
            let mapping = CallEndMapping::parse_pairs(pairs.iter().map(String::as_str))
                .map_err(anyhow::Error::msg)?;
            let (db, tenant) = at.open().await?;
            tenants::set_call_end_mapping(&db, &tenant, &mapping).await?;
            eprintln!("call-end mapping of `{}` set", tenant.slug);
        }
        EventsCommand::Mapping(MappingCommand::Show { at }) => {
            let (_, tenant) = at.open().await?;
            let mapping = CallEndMapping::from_json(tenant.settings.get(CALL_END_MAPPING));
            for (field, variable) in mapping.entries() {
                println!("{field}={variable}");
            }
        }
        EventsCommand::AdapterUrl {
            at,
            style: _,
            public_url,
        } => {
            let (db, tenant) = at.open().await?;
            let issued = tokens::create(
                &db,
                &tenant,
                TokenScope::Events.into(),
                "focalscope adapter",
            )
            .await?;
            let base = public_url.as_str().trim_end_matches('/');
            println!(
                "{base}/api/v1/events/focalscope?{FOCALSCOPE_QUERY}&token={}",
                issued.token.expose()
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
    let CallsCommand::Export { at, from, to } = cmd;
    let (db, tenant) = at.open().await?;
    let zone = tenant_zone(&tenant.settings);
    let filter = crate::domain::CdrFilter {
        from: parse_date(&from, zone, RangeEnd::Start)
            .map_err(|e| anyhow::anyhow!("--from {e}"))?,
        to: parse_date(&to, zone, RangeEnd::Finish).map_err(|e| anyhow::anyhow!("--to {e}"))?,
        ..crate::domain::CdrFilter::default()
    };
    anyhow::ensure!(filter.to >= filter.from, "--to is before --from");
    let mut out = csv::Writer::from_writer(std::io::stdout().lock());
    csv_header(&mut out)?;
    let mut position = db
        .run(async |client| cdr::start(&*client, tenant.id).await)
        .await?;
    // The calls as they stand now: the walk by start time, not the changes after it.
    // Each page is one timed step, so a slow database stops the export, not the pool.
    while matches!(position, crate::domain::Position::ByStart { .. }) {
        let page = db
            .run(async |client| cdr::page(&*client, tenant.id, &filter, position, 1_000).await)
            .await?;
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
