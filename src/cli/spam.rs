//! `cidgate spam`: a tenant's spam list (import complaint data, add, remove, list), and
//! the screening options of `cidgate tenant set`.

use std::fs::File;
use std::io::BufReader;
use std::path::PathBuf;

use anyhow::Context;
use clap::builder::TypedValueParser;
use clap::{Args, Subcommand};

use super::db::{find_tenant, migrated_pool};
use crate::config::DatabaseArgs;
use crate::domain::{ScreeningSettings, TenantId};
use crate::store;
use crate::trust::import::{self, SpamFormat};

#[derive(Debug, Subcommand)]
pub enum SpamCommand {
    /// Count reports per number from a complaint file; numbers at the tenant's
    /// threshold (`tenant set --spam-threshold`, default 2) are flagged
    Import {
        #[arg(long)]
        tenant: String,
        /// The complaint file (CSV)
        file: PathBuf,
        /// ftc-dnc: the FTC's Do-Not-Call complaint data (one row per report);
        /// csv: a header line, then number,reports[,label]
        #[arg(long, value_enum, default_value = "ftc-dnc")]
        format: SpamFormat,
        /// Leave out numbers with fewer reports than this in the file
        #[arg(long, default_value_t = 1)]
        min_reports: u32,
        /// The file's counts replace the reports imported before (numbers it no
        /// longer names leave the list, unless added with `spam add`)
        #[arg(long)]
        replace: bool,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// Flag a number at once (the tenant's own decision)
    Add {
        #[arg(long)]
        tenant: String,
        number: String,
        /// Why it is listed (shown with `spam list`)
        #[arg(long)]
        label: Option<String>,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// Take a number off the list (its reports too)
    Remove {
        #[arg(long)]
        tenant: String,
        number: String,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// The tenant's list: number, reports, added, flagged, label
    List {
        #[arg(long)]
        tenant: String,
        #[command(flatten)]
        db: DatabaseArgs,
    },
}

pub async fn run(cmd: SpamCommand) -> anyhow::Result<()> {
    match cmd {
        SpamCommand::Import {
            tenant,
            file,
            format,
            min_reports,
            replace,
            db,
        } => {
            let pool = migrated_pool(&db).await?;
            let tenant = find_tenant(&pool, &tenant).await?;
            let input = File::open(&file).with_context(|| format!("opening {}", file.display()))?;
            let read = import::read(BufReader::new(input), format, tenant.region, min_reports)
                .with_context(|| format!("reading {}", file.display()))?;
            let mut client = pool.get().await?;
            let tx = client.transaction().await?;
            store::spam::import(&tx, tenant.id, &read.numbers, replace).await?;
            tx.commit().await?;
            let threshold = ScreeningSettings::from_tenant_settings(&tenant.settings).threshold;
            let at_threshold = read
                .numbers
                .iter()
                .filter(|n| n.reports >= i32::try_from(threshold).unwrap_or(i32::MAX))
                .count();
            println!(
                "imported {} numbers from {} rows ({} of them with {threshold} reports or more \
                 in this file), {} rows without a usable number",
                read.numbers.len(),
                read.rows,
                at_threshold,
                read.unusable
            );
        }
        SpamCommand::Add {
            tenant,
            number,
            label,
            db,
        } => {
            let pool = migrated_pool(&db).await?;
            let tenant = find_tenant(&pool, &tenant).await?;
            let number =
                crate::trust::listed_number(&number, tenant.region).map_err(anyhow::Error::msg)?;
            let label = crate::trust::label(label.as_deref()).map_err(anyhow::Error::msg)?;
            let client = pool.get().await?;
            let new = store::spam::add(&client, tenant.id, number.as_str(), label).await?;
            let verb = if new { "added" } else { "flagged" };
            eprintln!(
                "{verb} {} on the spam list of `{}`",
                number.as_str(),
                tenant.slug
            );
        }
        SpamCommand::Remove { tenant, number, db } => {
            let pool = migrated_pool(&db).await?;
            let tenant = find_tenant(&pool, &tenant).await?;
            let number =
                crate::trust::listed_number(&number, tenant.region).map_err(anyhow::Error::msg)?;
            let client = pool.get().await?;
            if !store::spam::remove(&client, tenant.id, number.as_str()).await? {
                anyhow::bail!(
                    "{} is not on the spam list of `{}`",
                    number.as_str(),
                    tenant.slug
                );
            }
            eprintln!(
                "removed {} from the spam list of `{}`",
                number.as_str(),
                tenant.slug
            );
        }
        SpamCommand::List { tenant, db } => {
            let pool = migrated_pool(&db).await?;
            let tenant = find_tenant(&pool, &tenant).await?;
            let client = pool.get().await?;
            println!(
                "{:<20} {:>8} {:<5} {:<7} LABEL",
                "NUMBER", "REPORTS", "ADDED", "FLAGGED"
            );
            for e in store::spam::list(&client, tenant.id).await? {
                let yes_no = |b: bool| if b { "yes" } else { "no" };
                println!(
                    "{:<20} {:>8} {:<5} {:<7} {}",
                    e.number,
                    e.reports,
                    yes_no(e.added),
                    yes_no(e.flagged),
                    e.label.as_deref().unwrap_or("")
                );
            }
        }
    }
    Ok(())
}

/// `tenant set`'s screening options; only the ones given change.
#[derive(Debug, Args)]
pub struct ScreeningArgs {
    /// Reports that flag an imported number (default 2)
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    spam_threshold: Option<u32>,
    /// Also screen unknown callers whose verstat is TN-Validation-Failed: on or off
    #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(["on", "off"])
        .map(|v| v == "on"))]
    screen_failed_verstat: Option<bool>,
    /// route_identifier of a screened answer (e.g. screening); '' turns screening off
    #[arg(long)]
    spam_route: Option<String>,
    /// name of a screened answer (e.g. SPAM?); '' for none
    #[arg(long)]
    spam_name: Option<String>,
}

impl ScreeningArgs {
    pub fn is_empty(&self) -> bool {
        self.spam_threshold.is_none()
            && self.screen_failed_verstat.is_none()
            && self.spam_route.is_none()
            && self.spam_name.is_none()
    }

    /// Stores the changed settings (in the caller's transaction); a new threshold
    /// changes which numbers are flagged, so every instance reloads its lists.
    pub async fn apply(
        self,
        client: &impl deadpool_postgres::GenericClient,
        tenant: TenantId,
        settings: &serde_json::Value,
    ) -> anyhow::Result<()> {
        let mut screening = ScreeningSettings::from_tenant_settings(settings);
        let text = |flag: &str, raw: String| -> anyhow::Result<Option<String>> {
            let raw = raw.trim().to_owned();
            anyhow::ensure!(
                raw.chars().count() <= 64 && !raw.chars().any(char::is_control),
                "{flag}: at most 64 characters, no control characters"
            );
            Ok(Some(raw).filter(|r| !r.is_empty()))
        };
        if let Some(threshold) = self.spam_threshold {
            screening.threshold = threshold;
        }
        if let Some(on) = self.screen_failed_verstat {
            screening.screen_failed_verstat = on;
        }
        if let Some(route) = self.spam_route {
            screening.route = text("--spam-route", route)?;
        }
        if let Some(name) = self.spam_name {
            screening.name = text("--spam-name", name)?;
        }
        let value = serde_json::to_value(&screening)?;
        store::tenants::set_setting(client, tenant, ScreeningSettings::KEY, &value).await?;
        if self.spam_threshold.is_some() {
            store::spam::changed(client, tenant, &[]).await?;
        }
        Ok(())
    }
}
