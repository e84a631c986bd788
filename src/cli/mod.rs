//! The `cidgate` command line: serving, migrations and administration.

mod agent;
mod allow;
mod db;
mod delivery;
mod demo;
mod dialer;
mod events;
pub mod generate;
mod import;
mod popup;
mod profile;
mod report;
mod service_user;
mod source;
mod spam;
mod tenant;
mod token;

use clap::{Parser, Subcommand};

use crate::config::{self, DatabaseArgs, ServeSettings};
use crate::startup::Application;
use crate::store;
use crate::telemetry::LogFormat;

#[derive(Debug, Parser)]
#[command(
    name = "cidgate",
    version,
    about = "Caller-lookup and screen-pop gateway"
)]
pub struct Cli {
    /// Log format on stderr
    #[arg(
        long,
        env = "CIDGATE_LOG_FORMAT",
        value_enum,
        default_value = "pretty",
        global = true
    )]
    pub log_format: LogFormat,

    /// Configuration file: `NAME=value` lines with the variables below (as systemd's
    /// EnvironmentFile); the environment and flags override it
    #[arg(long, env = "CIDGATE_CONFIG", value_name = "FILE", global = true)]
    pub config: Option<std::path::PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the HTTP API (migrates first)
    Serve(ServeSettings),
    /// Apply pending database migrations
    Migrate(DatabaseArgs),
    /// Manage tenants
    #[command(subcommand)]
    Tenant(tenant::TenantCommand),
    /// Manage API tokens
    #[command(subcommand)]
    Token(token::TokenCommand),
    /// Manage a tenant's IP allowlist for lookups
    #[command(subcommand)]
    Allow(allow::AllowCommand),
    /// Import contacts from a CSV file
    Import(import::ImportArgs),
    /// Create or refresh the `demo` tenant and print a lookup to try
    Demo(demo::DemoArgs),
    /// Screen-pop signing keys
    #[command(subcommand)]
    Popup(popup::PopupCommand),
    /// How PBXs report call events (call-end mapping, adapter URL)
    #[command(subcommand)]
    Events(events::EventsCommand),
    /// Call records
    #[command(subcommand)]
    Calls(events::CallsCommand),
    /// Agents: extension, name and groups
    #[command(subcommand)]
    Agent(agent::AgentCommand),
    /// Click-to-call: the tenant's dialer (http, asterisk-ami, freeswitch-esl) and dial policy
    #[command(subcommand)]
    Dialer(dialer::DialerCommand),
    /// Service users: report keys limited to agents or groups
    #[command(subcommand)]
    ServiceUser(service_user::ServiceUserCommand),
    /// Reports enabled for the historical-data API
    #[command(subcommand)]
    Report(report::ReportCommand),
    /// Spam lists: complaint data and numbers a tenant screens
    #[command(subcommand)]
    Spam(spam::SpamCommand),
    /// Web-service profiles: call data sent to CRMs
    #[command(subcommand)]
    Profile(profile::ProfileCommand),
    /// Web-service deliveries: the log, and replay
    #[command(subcommand)]
    Delivery(delivery::DeliveryCommand),
    /// CRM sources: where a lookup asks when the mirror does not know the number
    #[command(subcommand)]
    Source(source::SourceCommand),
    /// Secrets at rest: `reseal` seals every stored secret with the first key of
    /// CIDGATE_SECRETS_KEY (plaintext rows, and rows sealed with an older key)
    #[command(subcommand)]
    Secrets(SecretsCommand),
}

#[derive(Debug, clap::Subcommand)]
pub enum SecretsCommand {
    /// Seal every stored secret with the current key (after setting or rotating it)
    Reseal(DatabaseArgs),
}

/// How a finished command ends the process.
pub enum Exit {
    Success,
    /// The command did its work but some input was left out (import's rejected rows).
    Partial,
}

pub async fn run(command: Command) -> anyhow::Result<Exit> {
    match command {
        Command::Serve(settings) => {
            config::warn_unknown_variables(&<Cli as clap::CommandFactory>::command());
            Application::build(&settings)
                .await?
                .run_until_stopped()
                .await?;
        }
        Command::Migrate(db) => {
            store::migrate(&db::admin_pool(&db)?).await?;
            eprintln!("migrations are up to date");
        }
        Command::Tenant(cmd) => tenant::run(cmd).await?,
        Command::Token(cmd) => token::run(cmd).await?,
        Command::Allow(cmd) => allow::run(cmd).await?,
        Command::Import(args) => {
            if import::run(args).await? > 0 {
                return Ok(Exit::Partial);
            }
        }
        Command::Demo(args) => demo::run(args).await?,
        Command::Popup(cmd) => popup::run(cmd).await?,
        Command::Events(cmd) => events::run(cmd).await?,
        Command::Calls(cmd) => events::run_calls(cmd).await?,
        Command::Agent(cmd) => agent::run(cmd).await?,
        Command::Dialer(cmd) => dialer::run(cmd).await?,
        Command::ServiceUser(cmd) => service_user::run(cmd).await?,
        Command::Report(cmd) => report::run(cmd).await?,
        Command::Profile(cmd) => profile::run(cmd).await?,
        Command::Spam(cmd) => spam::run(cmd).await?,
        Command::Delivery(cmd) => delivery::run(cmd).await?,
        Command::Source(cmd) => source::run(cmd).await?,
        Command::Secrets(SecretsCommand::Reseal(db)) => {
            let changed = db::open(&db)
                .await?
                .run(async |client| {
                    let tx = client.transaction().await?;
                    let changed = store::secrets::reseal(&tx).await?;
                    tx.commit().await?;
                    Ok(changed)
                })
                .await?;
            println!("resealed {changed} rows");
        }
    }
    Ok(Exit::Success)
}
