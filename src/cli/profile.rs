//! `cidgate profile`: web-service profiles (DESIGN §8), which send call data to a CRM
//! when a call finishes (or another event happens) and meets the criteria.

use anyhow::{Context, bail};
use clap::{Args, Subcommand};

use super::db::TenantArgs;
use crate::admin::Db;
use crate::admin::profiles::{self as admin, ProfileError, ProfileView, TestReport};
use crate::config::webhooks::WebhookSettings;
use crate::domain::Tenant;
use crate::domain::profile::ProfileInput;
use crate::domain::profile::StoredProfile;
use crate::live::directory::Directory;
use crate::webhook::{self as webhooks, Deliverer, WebhookClient};

/// A profile's definition on the command line; on `update`, only what is given changes.
#[derive(Debug, Clone, Args)]
pub struct DefinitionArgs {
    /// The target URL (parameters are added to its query)
    #[arg(long)]
    url: Option<String>,
    /// A URL with placeholders in its query, parsed into the URL and its parameters
    #[arg(long, conflicts_with = "url")]
    from_url: Option<String>,
    /// GET, POST (default), PUT, PATCH or DELETE
    #[arg(long)]
    method: Option<String>,
    /// call-finished (default), call-started, call-answered, call-missed,
    /// recording-available, lookup or leg-event (one request per pickup, missed
    /// and hangup of each leg)
    #[arg(long)]
    event: Option<String>,
    /// `FIELD OP VALUE`, e.g. 'Call Direction = Inbound' (all must hold); repeatable
    #[arg(long = "criteria", value_name = "CRITERION")]
    criteria: Vec<String>,
    /// A URL parameter `NAME=VALUE` (text, placeholders or both); repeatable
    #[arg(long = "param", value_name = "NAME=VALUE")]
    params: Vec<String>,
    /// A form parameter `NAME=VALUE` sent in the body; repeatable
    #[arg(long = "form", value_name = "NAME=VALUE")]
    form: Vec<String>,
    /// A header `NAME: VALUE`; repeatable
    #[arg(long = "header", value_name = "NAME: VALUE")]
    headers: Vec<String>,
    /// A header whose value is masked wherever the profile is shown; repeatable
    #[arg(long = "secret-header", value_name = "NAME: VALUE")]
    secret_headers: Vec<String>,
    /// A JSON body with placeholders inside its strings
    #[arg(long)]
    json_body: Option<String>,
    /// Requests to this profile in flight at once, the rest wait their turn (default 8)
    #[arg(long)]
    max_in_flight: Option<u32>,
}

impl DefinitionArgs {
    fn input(self) -> ProfileInput {
        let list = |v: Vec<String>| (!v.is_empty()).then_some(v);
        ProfileInput {
            url: self.url,
            from_url: self.from_url,
            method: self.method,
            event: self.event,
            criteria: list(self.criteria),
            params: list(self.params),
            form: list(self.form),
            json_body: self.json_body,
            headers: list(self.headers),
            secret_headers: list(self.secret_headers),
            max_in_flight: self.max_in_flight,
        }
    }
}

/// Where `<Popup Link>` points when `test` and `run` send from the command line.
#[derive(Debug, Clone, Args)]
pub struct PopupLinkArgs {
    /// The gateway's public URL, for `<Popup Link>` (without it the link is empty)
    #[arg(long, env = "CIDGATE_PUBLIC_URL", value_parser = crate::config::parse_base_url)]
    public_url: Option<url::Url>,
}

#[derive(Debug, Subcommand)]
pub enum ProfileCommand {
    /// Create a profile and print its signing secret (`whsec_…`, shown only this once)
    Create {
        #[command(flatten)]
        at: TenantArgs,
        name: String,
        #[command(flatten)]
        definition: DefinitionArgs,
        #[command(flatten)]
        webhooks: WebhookSettings,
    },
    /// List the tenant's profiles
    List {
        #[command(flatten)]
        at: TenantArgs,
    },
    /// Show a profile (JSON; secret header values masked)
    Show {
        #[command(flatten)]
        at: TenantArgs,
        name: String,
    },
    /// Change what is given; `--rotate-secret` prints a new secret (the old one keeps
    /// signing beside it for 24 h)
    Update {
        #[command(flatten)]
        at: TenantArgs,
        name: String,
        #[command(flatten)]
        definition: DefinitionArgs,
        #[arg(long)]
        rotate_secret: bool,
        #[command(flatten)]
        webhooks: WebhookSettings,
    },
    /// Stop sending (pending deliveries wait until it is enabled)
    Disable {
        #[command(flatten)]
        at: TenantArgs,
        name: String,
        #[arg(long, default_value = "disabled by an operator")]
        reason: String,
    },
    /// Send again (forgets how long it had been failing)
    Enable {
        #[command(flatten)]
        at: TenantArgs,
        name: String,
    },
    /// Delete a profile, its deliveries and their log
    Delete {
        #[command(flatten)]
        at: TenantArgs,
        name: String,
    },
    /// Show the request for a sample call (or a stored one) and send it
    Test {
        #[command(flatten)]
        at: TenantArgs,
        name: String,
        /// A stored call: cidgate's call UUID or its report call id
        #[arg(long)]
        call: Option<String>,
        /// Show the request without sending it
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        popups: PopupLinkArgs,
        #[command(flatten)]
        webhooks: WebhookSettings,
    },
    /// Send a stored call through the profile as it is now, as a logged delivery
    Run {
        #[command(flatten)]
        at: TenantArgs,
        name: String,
        /// cidgate's call UUID or its report call id
        #[arg(long)]
        call: String,
        #[command(flatten)]
        popups: PopupLinkArgs,
        #[command(flatten)]
        webhooks: WebhookSettings,
    },
}

/// A profile error in words (the API maps the same errors to statuses).
fn explained(e: ProfileError) -> anyhow::Error {
    match e {
        ProfileError::Invalid(fields) => anyhow::anyhow!(
            "{}",
            fields
                .iter()
                .map(|f| match f.index {
                    Some(i) => format!("{}[{i}]: {}", f.field, f.message),
                    None => format!("{}: {}", f.field, f.message),
                })
                .collect::<Vec<_>>()
                .join("\n")
        ),
        ProfileError::Failed(e) => e,
        // The operator may see the address (tenants see only the rule).
        ProfileError::Refused { field, refused } => {
            anyhow::anyhow!("{field}: {}", refused.detail())
        }
        other => anyhow::anyhow!("{other}"),
    }
}

fn client(webhooks: &WebhookSettings) -> anyhow::Result<WebhookClient> {
    WebhookClient::new(
        &webhooks::ClientSettings {
            timeout: webhooks.client.timeout(),
            proxy: webhooks.client.webhook_proxy.clone(),
        },
        &network(webhooks),
    )
}

/// The allowed networks, names resolved by the system.
fn network(webhooks: &WebhookSettings) -> crate::outbound::Network {
    crate::outbound::Network::system(webhooks.client.webhook_allow_networks.clone())
}

pub async fn run(cmd: ProfileCommand) -> anyhow::Result<()> {
    match cmd {
        ProfileCommand::Create {
            at,
            name,
            definition,
            webhooks,
        } => {
            let (db, tenant) = at.open().await?;
            let client = client(&webhooks)?;
            let input = definition.input();
            let (profile, secret) =
                admin::create(&db, &client, tenant.id, &tenant.slug, &name, &input)
                    .await
                    .map_err(explained)?;
            let view = ProfileView::of(&profile);
            println!(
                "created profile {} ({} {} on {})",
                view.name,
                view.definition.method.unwrap_or_default(),
                view.definition.url.unwrap_or_default(),
                view.definition.event.unwrap_or_default()
            );
            println!("{secret}");
        }
        ProfileCommand::List { at } => {
            let (db, tenant) = at.open().await?;
            for p in admin::list(&db, tenant.id).await.map_err(explained)? {
                let view = ProfileView::of(&p);
                println!(
                    "{}\t{}\t{}\t{}\t{}{}",
                    view.name,
                    if view.enabled { "enabled" } else { "disabled" },
                    view.definition.event.unwrap_or_default(),
                    view.definition.method.unwrap_or_default(),
                    view.definition.url.unwrap_or_default(),
                    view.disabled_reason
                        .map(|r| format!("\t({r})"))
                        .unwrap_or_default()
                );
            }
        }
        ProfileCommand::Show { at, name } => {
            let (db, tenant) = at.open().await?;
            let profile = admin::find(&db, tenant.id, &name)
                .await
                .map_err(explained)?;
            println!(
                "{}",
                serde_json::to_string_pretty(&ProfileView::of(&profile))?
            );
        }
        ProfileCommand::Update {
            at,
            name,
            definition,
            rotate_secret,
            webhooks,
        } => {
            let (db, tenant) = at.open().await?;
            let input = definition.input();
            if input != ProfileInput::default() {
                let client = client(&webhooks)?;
                admin::update(&db, &client, tenant.id, &tenant.slug, &name, &input)
                    .await
                    .map_err(explained)?;
            } else if !rotate_secret {
                bail!("nothing to change: give the flags of what changes, or --rotate-secret");
            }
            println!("updated profile {name}");
            if rotate_secret {
                let secret = admin::rotate_secret(&db, tenant.id, &name)
                    .await
                    .map_err(explained)?;
                println!("{secret}");
            }
        }
        ProfileCommand::Disable { at, name, reason } => {
            set_enabled(&at, &name, false, Some(&reason)).await?;
            println!("disabled profile {name}");
        }
        ProfileCommand::Enable { at, name } => {
            set_enabled(&at, &name, true, None).await?;
            println!("enabled profile {name}");
        }
        ProfileCommand::Delete { at, name } => {
            let (db, tenant) = at.open().await?;
            admin::delete(&db, tenant.id, &name)
                .await
                .map_err(explained)?;
            println!("deleted profile {name}");
        }
        ProfileCommand::Test {
            at,
            name,
            call,
            dry_run,
            popups,
            webhooks,
        } => {
            let (tenant, db, deliverer, profile) = sending(&at, &webhooks, popups, &name).await?;
            let call = admin::call_for(&db, tenant.id, call.as_deref())
                .await
                .map_err(explained)?;
            let report = admin::test(&deliverer, &profile, tenant.id, call, dry_run)
                .await
                .map_err(explained)?;
            print_test(&report);
            if report.error.is_some() || report.status.is_some_and(|s| !(200..300).contains(&s)) {
                bail!("the test request did not succeed");
            }
        }
        ProfileCommand::Run {
            at,
            name,
            call,
            popups,
            webhooks,
        } => {
            let (tenant, _, deliverer, profile) = sending(&at, &webhooks, popups, &name).await?;
            let report = admin::run(&deliverer, &profile, tenant.id, &call)
                .await
                .map_err(explained)?;
            println!("delivery {}", report.delivery_id);
            for a in &report.attempts {
                println!(
                    "{}\t{}\t{} ms\t{}",
                    a.at.to_rfc3339(),
                    a.status.map_or_else(|| "-".into(), |s| s.to_string()),
                    a.latency_ms,
                    a.error.as_deref().unwrap_or("")
                );
            }
        }
    }
    Ok(())
}

/// What `test` and `run` send with: the tenant, the database, a deliverer and the profile.
async fn sending(
    at: &TenantArgs,
    webhooks: &WebhookSettings,
    popups: PopupLinkArgs,
    name: &str,
) -> anyhow::Result<(Tenant, Db, Deliverer, StoredProfile)> {
    let (db, tenant) = at.open().await?;
    let popups = match popups.public_url {
        Some(url) => {
            let directory = Directory::default();
            db.run(async |client| directory.reload(client).await)
                .await
                .context("loading the signing keys")?;
            Some((directory, url))
        }
        None => None,
    };
    let deliverer = webhooks::deliverer(
        at.db.database_url.expose(),
        webhooks,
        popups,
        None,
        &network(webhooks),
    )?;
    let profile = admin::find(&db, tenant.id, name).await.map_err(explained)?;
    Ok((tenant, db, deliverer, profile))
}

async fn set_enabled(
    at: &TenantArgs,
    name: &str,
    enabled: bool,
    reason: Option<&str>,
) -> anyhow::Result<()> {
    let (db, tenant) = at.open().await?;
    admin::set_enabled(&db, tenant.id, name, enabled, reason)
        .await
        .map_err(explained)?;
    Ok(())
}

fn print_test(report: &TestReport) {
    println!("{} {}", report.method, report.url);
    for h in &report.headers {
        println!("{h}");
    }
    if !report.body.is_empty() {
        println!();
        println!("{}", report.body);
    }
    println!();
    match (report.status, &report.error) {
        (Some(status), _) => println!(
            "answered {status} in {} ms: {}",
            report.latency_ms.unwrap_or_default(),
            report
                .response
                .as_deref()
                .unwrap_or("")
                .chars()
                .take(200)
                .collect::<String>()
        ),
        (None, Some(error)) => println!(
            "not delivered: {}",
            report.refusal_detail.as_deref().unwrap_or(error)
        ),
        (None, None) => println!("not sent (dry run)"),
    }
}
