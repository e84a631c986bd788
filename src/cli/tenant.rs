//! `cidgate tenant`: create, list and configure tenants.

use anyhow::bail;
use clap::{Args, Subcommand};

use super::db::open;
use crate::admin::tenants::{self, Changes, NewTenant, Own, PopupChanges};
use crate::config::{self, DatabaseArgs};
use crate::domain::{AuthPolicy, Region, TenantSlug};

// Parsed once per process: the size of `Set` costs nothing worth a box.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// Create a tenant
    Create {
        slug: String,
        /// Default region for national numbers (ISO 3166 alpha-2, e.g. RO)
        #[arg(long)]
        region: String,
        /// Display name (defaults to the slug)
        #[arg(long)]
        name: Option<String>,
        /// IANA time zone for dates people read and write (e.g. Europe/Bucharest)
        #[arg(long, default_value = "UTC", value_parser = parse_time_zone)]
        time_zone: chrono_tz::Tz,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// List tenants
    List {
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// Change a tenant's lookup authentication, limits, time zone or screen pop
    Set {
        slug: String,
        /// token, ip (source address alone, by allowlist) or token+ip
        #[arg(long)]
        auth: Option<String>,
        /// Lookups per second for this tenant, or `default`
        #[arg(long)]
        lookup_rate: Option<String>,
        /// Most phone numbers the tenant may store (every instance holds them in memory);
        /// 5000000 unless set
        #[arg(long, value_parser = clap::value_parser!(i64).range(0..=MAX_NUMBERS_CAP))]
        max_numbers: Option<i64>,
        /// Most agents the tenant may have (the CRM's sync token adds them); 1000 unless set
        #[arg(long, value_parser = clap::value_parser!(i32).range(0..=1_000_000))]
        max_agents: Option<i32>,
        /// Call events per second for this tenant (burst: twice that, at least 1000), or
        /// `default` for the gateway's (CIDGATE_EVENT_RATE)
        #[arg(long)]
        event_rate: Option<String>,
        /// Most calls the tenant stores (events of new calls past it are refused);
        /// 10000000 unless set
        #[arg(long, value_parser = clap::value_parser!(i64).range(0..=MAX_CALLS_CAP))]
        max_calls: Option<i64>,
        /// IANA time zone for dates people read and write (e.g. Europe/Bucharest)
        #[arg(long, value_parser = parse_time_zone)]
        time_zone: Option<chrono_tz::Tz>,
        /// Most contacts (by name) in the phone books desk phones download
        /// (/phones/yealink/phonebook.xml, /phones/grandstream/phonebook.xml); 5000 unless set
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=i64::from(crate::phones::PHONEBOOK_MAX_CAP)))]
        phonebook_max: Option<u32>,
        /// Record this tenant's lookups (screen pop's recent calls, reports): on or off
        #[arg(long, value_parser = parse_on_off)]
        lookup_log: Option<bool>,
        /// Days this tenant's lookup log is kept (1-3650), or `default` for the gateway's
        #[arg(long, value_parser = parse_retention_days)]
        lookup_log_retention_days: Option<Own<u32>>,
        #[command(flatten)]
        popup: PopupArgs,
        #[command(flatten)]
        screening: super::spam::ScreeningArgs,
        #[command(flatten)]
        db: DatabaseArgs,
    },
}

/// The highest `--max-numbers`: about 1.5 GiB of number index per instance.
const MAX_NUMBERS_CAP: i64 = 100_000_000;

/// The highest `--max-calls`.
const MAX_CALLS_CAP: i64 = 1_000_000_000;

fn parse_on_off(raw: &str) -> Result<bool, String> {
    match raw {
        "on" => Ok(true),
        "off" => Ok(false),
        _ => Err(format!("`{raw}` is neither on nor off")),
    }
}

/// A tenant's own retention, or the gateway's.
fn parse_retention_days(raw: &str) -> Result<Own<u32>, String> {
    if raw == "default" {
        return Ok(Own::Default);
    }
    match raw.parse::<u32>() {
        Ok(days) if (1..=3650).contains(&days) => Ok(Own::Value(days)),
        _ => Err(format!(
            "`{raw}` is not a number of days from 1 to 3650, or `default`"
        )),
    }
}

fn parse_time_zone(raw: &str) -> Result<chrono_tz::Tz, String> {
    raw.parse()
        .map_err(|_| format!("`{raw}` is not an IANA time zone name such as Europe/Bucharest"))
}

/// Screen-pop settings of a tenant; only the ones given change.
#[derive(Debug, Args)]
pub struct PopupArgs {
    /// How long screen-pop links stay valid, e.g. 12h
    #[arg(long, value_parser = humantime::parse_duration)]
    popup_ttl: Option<std::time::Duration>,
    /// CRM record URL for contacts without their own, with {id}, {number}, {national}
    #[arg(long)]
    crm_url_template: Option<String>,
    /// "Create in CRM" URL for unknown callers, with {number} or {national}
    #[arg(long)]
    create_url_template: Option<String>,
    /// Send agents straight to the CRM record instead of the page
    #[arg(long)]
    redirect_to_crm: Option<bool>,
    /// Give unknown callers a backend_link too
    #[arg(long)]
    popup_for_unknown: Option<bool>,
    /// Origins allowed to frame the page (comma-separated), or `none`
    #[arg(long)]
    frame_ancestors: Option<String>,
}

impl PopupArgs {
    /// The changes the options ask for (origins checked here, the rest by the service).
    fn changes(self) -> anyhow::Result<PopupChanges> {
        let frame_ancestors = match self.frame_ancestors {
            None => None,
            Some(list) if list == "none" => Some(Vec::new()),
            Some(list) => Some(
                list.split(',')
                    .map(|o| {
                        config::parse_origin(o)
                            .map_err(|e| anyhow::anyhow!("--frame-ancestors: {e}"))
                    })
                    .collect::<anyhow::Result<_>>()?,
            ),
        };
        Ok(PopupChanges {
            ttl: self.popup_ttl,
            crm_url_template: self.crm_url_template,
            create_url_template: self.create_url_template,
            redirect_to_crm: self.redirect_to_crm,
            for_unknown: self.popup_for_unknown,
            frame_ancestors,
        })
    }
}

pub async fn run(cmd: TenantCommand) -> anyhow::Result<()> {
    match cmd {
        TenantCommand::Create {
            slug,
            region,
            name,
            time_zone,
            db,
        } => {
            let slug = TenantSlug::parse(&slug).map_err(anyhow::Error::msg)?;
            let region = Region::parse(&region).map_err(|e| anyhow::anyhow!("--region: {e}"))?;
            let db = open(&db).await?;
            let new = NewTenant {
                slug,
                name,
                region,
                time_zone,
            };
            let tenant = tenants::create(&db, new).await?;
            println!("{}", tenant.slug);
            eprintln!(
                "created tenant `{}` (region {})",
                tenant.slug,
                region.code()
            );
        }
        TenantCommand::Set {
            slug,
            auth,
            lookup_rate,
            max_numbers,
            max_agents,
            event_rate,
            max_calls,
            time_zone,
            phonebook_max,
            lookup_log,
            lookup_log_retention_days,
            popup,
            screening,
            db,
        } => {
            let own = |rate: Option<u32>| rate.map_or(Own::Default, Own::Value);
            let changes = Changes {
                auth: auth
                    .map(|a| AuthPolicy::parse(&a).map_err(|e| anyhow::anyhow!("--auth: {e}")))
                    .transpose()?,
                lookup_rate: lookup_rate
                    .map(|r| parse_rate(&r, "--lookup-rate", "lookups"))
                    .transpose()?,
                max_numbers,
                max_agents,
                event_rate: event_rate
                    .map(|r| parse_rate(&r, "--event-rate", "call events"))
                    .transpose()?
                    .map(own),
                max_calls,
                time_zone,
                phonebook_max,
                lookup_log,
                lookup_log_retention_days,
                popup: popup.changes()?,
                screening: screening.changes(),
            };
            if changes.is_empty() {
                bail!(
                    "nothing to change: give --auth, --lookup-rate, --max-numbers, --max-agents, \
                     --event-rate, --max-calls, --time-zone, --phonebook-max, \
                     --lookup-log, --lookup-log-retention-days, a screen-pop or a screening option \
                     (see --help)"
                );
            }
            let db = open(&db).await?;
            let tenant = db.tenant(&slug).await?;
            tenants::update(&db, &tenant, changes).await?;
            eprintln!("updated tenant `{slug}`");
        }
        TenantCommand::List { db } => {
            let db = open(&db).await?;
            println!("{:<24} {:<6} {:>10}  NAME", "SLUG", "REGION", "CONTACTS");
            for listed in tenants::list(&db).await? {
                let t = listed.tenant;
                println!(
                    "{:<24} {:<6} {:>10}  {}",
                    t.slug,
                    t.region.code(),
                    listed.contacts,
                    t.name
                );
            }
        }
    }
    Ok(())
}

/// A rate per second (`flag` sets it, of `what`), or `default` for the gateway's.
fn parse_rate(raw: &str, flag: &str, what: &str) -> anyhow::Result<Option<u32>> {
    if raw == "default" {
        return Ok(None);
    }
    match raw.parse::<u32>() {
        Ok(n) if n > 0 => Ok(Some(n)),
        _ => bail!("{flag}: `{raw}` is not a positive number of {what} per second or `default`"),
    }
}
