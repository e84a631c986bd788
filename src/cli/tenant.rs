//! `cidgate tenant`: create, list and configure tenants.

use anyhow::{Context, bail};
use clap::{Args, Subcommand};

use super::db::{find_tenant, migrated_pool};
use crate::config::{self, DatabaseArgs};
use crate::domain::{AuthPolicy, LookupLogSettings, PopupSettings, Region, TenantSlug};
use crate::store;

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
        lookup_log_retention_days: Option<Retention>,
        #[command(flatten)]
        popup: PopupArgs,
        #[command(flatten)]
        db: DatabaseArgs,
    },
}

const MAX_POPUP_TTL_SECS: u64 = 7 * 24 * 3600;

/// The highest `--max-numbers`: about 1.5 GiB of number index per instance.
const MAX_NUMBERS_CAP: i64 = 100_000_000;

/// The highest `--max-calls`.
const MAX_CALLS_CAP: i64 = 1_000_000_000;

/// The tenant setting holding its IANA time zone.
pub const TIME_ZONE: &str = "time_zone";

fn parse_on_off(raw: &str) -> Result<bool, String> {
    match raw {
        "on" => Ok(true),
        "off" => Ok(false),
        _ => Err(format!("`{raw}` is neither on nor off")),
    }
}

/// A tenant's own retention, or the gateway's.
#[derive(Debug, Clone, Copy)]
pub enum Retention {
    Days(u32),
    Default,
}

fn parse_retention_days(raw: &str) -> Result<Retention, String> {
    if raw == "default" {
        return Ok(Retention::Default);
    }
    match raw.parse::<u32>() {
        Ok(days) if (1..=3650).contains(&days) => Ok(Retention::Days(days)),
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
    fn is_empty(&self) -> bool {
        self.popup_ttl.is_none()
            && self.crm_url_template.is_none()
            && self.create_url_template.is_none()
            && self.redirect_to_crm.is_none()
            && self.popup_for_unknown.is_none()
            && self.frame_ancestors.is_none()
    }

    /// Applies the given options to `settings`, checking each.
    fn apply(self, settings: &mut PopupSettings) -> anyhow::Result<()> {
        if let Some(ttl) = self.popup_ttl {
            anyhow::ensure!(ttl.as_secs() >= 60, "--popup-ttl: at least one minute");
            // A link is a capability to contact data that cannot be revoked one by one.
            anyhow::ensure!(
                ttl.as_secs() <= MAX_POPUP_TTL_SECS,
                "--popup-ttl: at most 7 days (168h)"
            );
            settings.ttl_secs = ttl.as_secs();
        }
        if let Some(t) = self.crm_url_template {
            settings.crm_url_template = url_template("--crm-url-template", t)?;
        }
        if let Some(t) = self.create_url_template {
            settings.create_url_template = url_template("--create-url-template", t)?;
        }
        if let Some(redirect) = self.redirect_to_crm {
            settings.redirect_to_crm = redirect;
        }
        if let Some(for_unknown) = self.popup_for_unknown {
            settings.for_unknown = for_unknown;
        }
        if let Some(list) = self.frame_ancestors {
            settings.frame_ancestors = if list == "none" {
                Vec::new()
            } else {
                list.split(',')
                    .map(|o| {
                        config::parse_origin(o)
                            .map_err(|e| anyhow::anyhow!("--frame-ancestors: {e}"))
                    })
                    .collect::<anyhow::Result<_>>()?
            };
        }
        Ok(())
    }
}

/// An http(s) URL template (empty clears it).
fn url_template(flag: &str, template: String) -> anyhow::Result<Option<String>> {
    if template.is_empty() {
        return Ok(None);
    }
    let sample = crate::popup::fill_template(&template, Some("1"), "+40700000000", "0700000000");
    config::parse_base_url(sample.split('?').next().unwrap_or_default())
        .map_err(|e| anyhow::anyhow!("{flag}: {e}"))?;
    Ok(Some(template))
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
            let name = name.unwrap_or_else(|| slug.to_string());
            let pool = migrated_pool(&db).await?;
            let client = pool.get().await?;
            let tenant = store::tenants::create(&client, &slug, &name, region).await?;
            let zone = serde_json::Value::String(time_zone.name().to_owned());
            store::tenants::set_setting(&client, tenant.id, TIME_ZONE, &zone).await?;
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
            db,
        } => {
            let policy = auth
                .map(|a| AuthPolicy::parse(&a).map_err(|e| anyhow::anyhow!("--auth: {e}")))
                .transpose()?;
            let rate = lookup_rate
                .map(|r| parse_rate(&r, "--lookup-rate", "lookups"))
                .transpose()?;
            let event_rate = event_rate
                .map(|r| parse_rate(&r, "--event-rate", "call events"))
                .transpose()?;
            if policy.is_none()
                && rate.is_none()
                && max_numbers.is_none()
                && max_agents.is_none()
                && event_rate.is_none()
                && max_calls.is_none()
                && time_zone.is_none()
                && phonebook_max.is_none()
                && lookup_log.is_none()
                && lookup_log_retention_days.is_none()
                && popup.is_empty()
            {
                bail!(
                    "nothing to change: give --auth, --lookup-rate, --max-numbers, --max-agents, \
                     --event-rate, --max-calls, --time-zone, --phonebook-max, \
                     --lookup-log, --lookup-log-retention-days or a screen-pop option (see --help)"
                );
            }
            let pool = migrated_pool(&db).await?;
            let tenant = find_tenant(&pool, &slug).await?;
            let mut client = pool.get().await?;
            let tx = client.transaction().await?;
            if let Some(policy) = policy {
                store::tenants::set_auth_policy(&tx, tenant.id, policy)
                    .await
                    .with_context(|| {
                        format!("cannot switch `{slug}` to --auth {}", policy.as_str())
                    })?;
            }
            if let Some(rate) = rate {
                store::tenants::set_lookup_rate(&tx, tenant.id, rate).await?;
            }
            if let Some(max) = max_numbers {
                store::tenants::set_max_numbers(&tx, tenant.id, max).await?;
            }
            if let Some(max) = max_agents {
                store::tenants::set_max_agents(&tx, tenant.id, max).await?;
            }
            let key = crate::http::routes::events::EVENT_RATE;
            match event_rate {
                Some(Some(rate)) => {
                    store::tenants::set_setting(&tx, tenant.id, key, &rate.into()).await?
                }
                Some(None) => store::tenants::remove_setting(&tx, tenant.id, key).await?,
                None => {}
            }
            if let Some(max) = max_calls {
                store::tenants::set_max_calls(&tx, tenant.id, max).await?;
            }
            if let Some(zone) = time_zone {
                let zone = serde_json::Value::String(zone.name().to_owned());
                store::tenants::set_setting(&tx, tenant.id, TIME_ZONE, &zone).await?;
            }
            if let Some(max) = phonebook_max {
                let key = crate::phones::PHONEBOOK_MAX;
                store::tenants::set_setting(&tx, tenant.id, key, &max.into()).await?;
            }
            if let Some(on) = lookup_log {
                let key = LookupLogSettings::ENABLED_KEY;
                store::tenants::set_setting(&tx, tenant.id, key, &on.into()).await?;
            }
            let key = LookupLogSettings::RETENTION_KEY;
            match lookup_log_retention_days {
                Some(Retention::Days(days)) => {
                    store::tenants::set_setting(&tx, tenant.id, key, &days.into()).await?
                }
                Some(Retention::Default) => {
                    store::tenants::remove_setting(&tx, tenant.id, key).await?
                }
                None => {}
            }
            if !popup.is_empty() {
                let mut settings = tenant.popup.clone();
                popup.apply(&mut settings)?;
                store::tenants::set_popup_settings(&tx, tenant.id, &settings).await?;
            }
            tx.commit().await?;
            eprintln!("updated tenant `{slug}`");
        }
        TenantCommand::List { db } => {
            let pool = migrated_pool(&db).await?;
            let client = pool.get().await?;
            println!("{:<24} {:<6} {:>10}  NAME", "SLUG", "REGION", "CONTACTS");
            for t in store::tenants::list(&client).await? {
                let count = store::tenants::contact_count(&client, t.id).await?;
                println!(
                    "{:<24} {:<6} {:>10}  {}",
                    t.slug,
                    t.region.code(),
                    count,
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
