//! `cidgate source`: a tenant's CRM sources (add, list, show, set, remove, test). Secret
//! parameters are stored sealed and never printed back.

use std::collections::BTreeMap;

use anyhow::Context;
use clap::{Args, Subcommand};

use super::db::open;
use crate::config::DatabaseArgs;
use crate::config::webhooks::AllowNetworksArgs;
use crate::outbound::Network;
use crate::sources::admin::{self, SourceChange, SourceError, SourceInput};

#[derive(Debug, Subcommand)]
pub enum SourceCommand {
    /// Add a source, asked after the tenant's others
    Add {
        #[command(flatten)]
        target: Target,
        /// http-json, salesforce, soap, minicrm, freshdesk or pipedrive
        #[arg(long)]
        kind: String,
        #[command(flatten)]
        settings: Settings,
        #[command(flatten)]
        network: AllowNetworksArgs,
    },
    /// List the tenant's sources in the order they are asked
    List {
        #[arg(long)]
        tenant: String,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// Show a source (secrets are never shown)
    Show {
        #[command(flatten)]
        target: Target,
    },
    /// Change a source's parameters (`--param KEY=` removes one), timeout, mode or position
    Set {
        #[command(flatten)]
        target: Target,
        #[command(flatten)]
        settings: Settings,
        /// Where it is asked among the tenant's sources (lower first)
        #[arg(long)]
        position: Option<i32>,
        #[command(flatten)]
        network: AllowNetworksArgs,
    },
    /// Remove a source
    Remove {
        #[command(flatten)]
        target: Target,
    },
    /// Ask the source about NUMBER as a lookup would (nothing is written): prints the
    /// request made (secrets masked) and the contact it would answer
    Test {
        #[command(flatten)]
        target: Target,
        number: String,
        #[command(flatten)]
        network: AllowNetworksArgs,
    },
}

#[derive(Debug, Args)]
pub struct Target {
    #[arg(long)]
    tenant: String,
    name: String,
    #[command(flatten)]
    db: DatabaseArgs,
}

#[derive(Debug, Args)]
pub struct Settings {
    /// A parameter of the kind, KEY=VALUE (repeatable): the reference's names
    #[arg(long = "param", value_name = "KEY=VALUE")]
    params: Vec<String>,
    /// How long one request to the CRM may take (default 1500)
    #[arg(long)]
    timeout_ms: Option<u32>,
    /// inline (the lookup waits within its deadline; the default) or background
    #[arg(long)]
    mode: Option<String>,
}

fn params(raw: &[String]) -> anyhow::Result<BTreeMap<String, String>> {
    raw.iter()
        .map(|p| {
            let (k, v) = p
                .split_once('=')
                .with_context(|| format!("--param {p:?}: write KEY=VALUE"))?;
            Ok((k.trim().to_owned(), v.to_owned()))
        })
        .collect()
}

fn explain(e: SourceError) -> anyhow::Error {
    match e {
        SourceError::Invalid(fields) => anyhow::anyhow!(
            "the source is not valid: {}",
            fields
                .iter()
                .map(|f| format!("{}: {}", f.field, f.message))
                .collect::<Vec<_>>()
                .join("; ")
        ),
        SourceError::Refused { field, refused } => {
            anyhow::anyhow!("{field}: {}", refused.detail())
        }
        other => other.into(),
    }
}

fn print(value: &impl serde::Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

pub async fn run(cmd: SourceCommand) -> anyhow::Result<()> {
    let (target, db) = match &cmd {
        SourceCommand::List { tenant, db } => (tenant.clone(), db),
        SourceCommand::Add { target, .. }
        | SourceCommand::Show { target }
        | SourceCommand::Set { target, .. }
        | SourceCommand::Remove { target }
        | SourceCommand::Test { target, .. } => (target.tenant.clone(), &target.db),
    };
    let db = open(db).await?;
    let tenant = db.tenant(&target).await?;
    let clients = |network: &AllowNetworksArgs| {
        crate::sources::clients(&Network::system(network.rules.clone()))
    };
    let at = (tenant.id, tenant.slug.as_str());
    match cmd {
        SourceCommand::Add {
            target,
            kind,
            settings,
            network,
        } => {
            let input = SourceInput {
                kind,
                params: params(&settings.params)?,
                timeout_ms: settings.timeout_ms,
                mode: settings.mode,
            };
            let clients = clients(&network)?;
            let view = db
                .run(async |c| Ok(admin::add(&*c, at, &clients, &target.name, input).await))
                .await?
                .map_err(explain)?;
            eprintln!("added the source `{}` of `{}`", view.name, tenant.slug);
            print(&view)
        }
        SourceCommand::List { .. } => {
            let listed = db.run(async |c| Ok(admin::list(&*c, tenant.id).await));
            print(&listed.await?.map_err(explain)?)
        }
        SourceCommand::Show { target } => {
            let shown = db.run(async |c| Ok(admin::show(&*c, tenant.id, &target.name).await));
            print(&shown.await?.map_err(explain)?)
        }
        SourceCommand::Set {
            target,
            settings,
            position,
            network,
        } => {
            let change = SourceChange {
                params: params(&settings.params)?,
                timeout_ms: settings.timeout_ms,
                mode: settings.mode,
                position,
            };
            let clients = clients(&network)?;
            let view = db
                .run(async |c| Ok(admin::set(&*c, at, &clients, &target.name, change).await))
                .await?
                .map_err(explain)?;
            print(&view)
        }
        SourceCommand::Remove { target } => {
            db.run(async |c| Ok(admin::remove(&*c, tenant.id, &target.name).await))
                .await?
                .map_err(explain)?;
            eprintln!("removed the source `{}` of `{}`", target.name, tenant.slug);
            Ok(())
        }
        SourceCommand::Test {
            target,
            number,
            network,
        } => {
            let clients = clients(&network)?;
            let report = db
                .run(async |c| {
                    let at = (tenant.id, tenant.slug.as_str(), tenant.region);
                    Ok(admin::test(&*c, at, &clients, &target.name, &number).await)
                })
                .await?
                .map_err(explain)?;
            print(&report)
        }
    }
}
