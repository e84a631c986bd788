//! `cidgate spam`: a tenant's spam list (import complaint data, add, remove, list), and
//! the screening options of `cidgate tenant set`.

use std::fs::File;
use std::io::BufReader;
use std::path::PathBuf;

use anyhow::Context;
use clap::builder::TypedValueParser;
use clap::{Args, Subcommand};

use super::db::TenantArgs;
use crate::admin::spam;
use crate::admin::tenants::ScreeningChanges;
use crate::domain::ScreeningSettings;
use crate::trust::import::{self, SpamFormat};

#[derive(Debug, Subcommand)]
pub enum SpamCommand {
    /// Count reports per number from a complaint file; numbers at the tenant's
    /// threshold (`tenant set --spam-threshold`, default 2) are flagged
    Import {
        #[command(flatten)]
        at: TenantArgs,
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
    },
    /// Flag a number at once (the tenant's own decision)
    Add {
        #[command(flatten)]
        at: TenantArgs,
        number: String,
        /// Why it is listed (shown with `spam list`)
        #[arg(long)]
        label: Option<String>,
    },
    /// Take a number off the list (its reports too)
    Remove {
        #[command(flatten)]
        at: TenantArgs,
        number: String,
    },
    /// The tenant's list: number, reports, added, flagged, label
    List {
        #[command(flatten)]
        at: TenantArgs,
    },
}

pub async fn run(cmd: SpamCommand) -> anyhow::Result<()> {
    match cmd {
        SpamCommand::Import {
            at,
            file,
            format,
            min_reports,
            replace,
        } => {
            let (db, tenant) = at.open().await?;
            let input = File::open(&file).with_context(|| format!("opening {}", file.display()))?;
            let read = import::read(BufReader::new(input), format, tenant.region, min_reports)
                .with_context(|| format!("reading {}", file.display()))?;
            spam::import(&db, &tenant, &read.numbers, replace).await?;
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
        SpamCommand::Add { at, number, label } => {
            let (db, tenant) = at.open().await?;
            let number = spam::number(&tenant, &number)?;
            let (new, _) = spam::add(&db, &tenant, &number, label.as_deref()).await?;
            let verb = if new { "added" } else { "flagged" };
            eprintln!(
                "{verb} {} on the spam list of `{}`",
                number.as_str(),
                tenant.slug
            );
        }
        SpamCommand::Remove { at, number } => {
            let (db, tenant) = at.open().await?;
            let number = spam::number(&tenant, &number)?;
            spam::remove(&db, &tenant, &number).await?;
            eprintln!(
                "removed {} from the spam list of `{}`",
                number.as_str(),
                tenant.slug
            );
        }
        SpamCommand::List { at } => {
            let (db, tenant) = at.open().await?;
            println!(
                "{:<20} {:>8} {:<5} {:<7} LABEL",
                "NUMBER", "REPORTS", "ADDED", "FLAGGED"
            );
            for e in spam::list(&db, &tenant).await? {
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
    pub fn changes(self) -> ScreeningChanges {
        ScreeningChanges {
            threshold: self.spam_threshold,
            screen_failed_verstat: self.screen_failed_verstat,
            route: self.spam_route,
            name: self.spam_name,
        }
    }
}
