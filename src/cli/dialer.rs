//! `cidgate dialer`: how a tenant's PBX is asked to place click-to-calls (set, show,
//! remove), and the dial policy (`dialer policy`). Secrets come from files or headers
//! given once, and are never printed back.

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use serde_json::{Value, json};

use super::db::{TenantArgs, open};
use crate::admin::dialer::{self, PolicyChanges};
use crate::config::DatabaseArgs;
use crate::config::webhooks::AllowNetworksArgs;
use crate::dial::ami::{AmiSecret, AmiSettings};
use crate::dial::esl::{EslSecret, EslSettings};
use crate::dial::http::{HttpDialer, HttpSecret, HttpSettings, header_name};
use crate::dial::{Endpoint, PLACEHOLDERS, Template};
use crate::domain::StoredDialer;
use crate::domain::{NumberFormat, Region, parse_queue_prefix};

#[derive(Debug, Subcommand)]
pub enum DialerCommand {
    /// Set (or replace) the tenant's dialer
    Set {
        #[arg(long)]
        tenant: String,
        #[command(subcommand)]
        kind: DialerKind,
    },
    /// Show the tenant's dialer and dial policy (secrets are never shown)
    Show {
        #[command(flatten)]
        at: TenantArgs,
    },
    /// Remove the tenant's dialer (click-to-call answers 409 until one is set)
    Remove {
        #[command(flatten)]
        at: TenantArgs,
    },
    /// Change the dial policy: sessions, throttle, destinations, queues, number format
    Policy(PolicyArgs),
    /// List the placeholders dialer templates may use
    Placeholders,
}

#[derive(Debug, Subcommand)]
pub enum DialerKind {
    /// A PBX's dial API, through a URL template
    Http {
        /// e.g. 'https://pbx.example.com/dial?agent={{AgentExtension}}&number={{Number}}&id={{RequestID}}'
        #[arg(long)]
        url: String,
        #[arg(long, default_value = "GET")]
        method: String,
        /// A header that may be shown, `Name: value` (value may hold placeholders)
        #[arg(long = "header")]
        headers: Vec<String>,
        /// A header carrying a credential, `Name: value`; stored, never shown
        #[arg(long = "secret-header")]
        secret_headers: Vec<String>,
        /// A body template (values JSON-escaped when --content-type is JSON, else form-encoded)
        #[arg(long)]
        body: Option<String>,
        #[arg(long)]
        content_type: Option<String>,
        /// JSON pointer to the PBX's own id in its answer, e.g. /data/id
        #[arg(long)]
        id_pointer: Option<String>,
        /// Where the dial URL may lead (its target is checked now and at every dial)
        #[command(flatten)]
        network: AllowNetworksArgs,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// Asterisk AMI `Originate`
    AsteriskAmi {
        #[arg(long)]
        host: String,
        #[arg(long, default_value_t = 5038)]
        port: u16,
        #[arg(long)]
        username: String,
        /// A file holding the manager user's secret
        #[arg(long)]
        secret_file: std::path::PathBuf,
        /// The agent's channel, e.g. 'PJSIP/{{AgentExtension}}'
        #[arg(long)]
        channel: String,
        /// The dialplan context the number is dialled in
        #[arg(long)]
        context: String,
        /// The extension dialled in --context; {{Number}} is written as the dial policy's
        /// --number-format says (national by default: what `_X.` matches)
        #[arg(long, default_value = "{{Number}}")]
        exten: String,
        /// The caller ID name the agent's phone shows while it rings
        #[arg(long, default_value = "{{ContactName}} {{E164Number}}")]
        caller_id: String,
        /// The number the customer sees (the tenant's outbound number, +40215550100): the
        /// agent's channel's caller ID number, which the dialplan's Dial() presents.
        /// Without it the agent's leg carries a caller ID name only (the trunk's number)
        #[arg(long)]
        outbound_caller_id: Option<String>,
        /// How long the agent's phone rings
        #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u32).range(5..=120))]
        ring_secs: u32,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// FreeSWITCH event socket `bgapi originate`
    FreeswitchEsl {
        #[arg(long)]
        host: String,
        #[arg(long, default_value_t = 8021)]
        port: u16,
        /// A file holding the event socket's password
        #[arg(long)]
        password_file: std::path::PathBuf,
        /// The agent's endpoint, e.g. 'user/{{AgentExtension}}'
        #[arg(long)]
        endpoint: String,
        #[arg(long, default_value = "{{Number}}")]
        destination: String,
        #[arg(long, default_value = "XML")]
        dialplan: String,
        #[arg(long, default_value = "default")]
        context: String,
        /// The caller ID name the agent's phone shows (its number: the customer's)
        #[arg(long, default_value = "{{ContactName}}")]
        caller_id_name: String,
        /// The number the customer sees (the tenant's outbound number, +40215550100):
        /// effective_caller_id_number of the agent's channel. Without it the dialplan
        /// decides what the customer sees (set it: see docs/click-to-call.md)
        #[arg(long)]
        outbound_caller_id: Option<String>,
        #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u32).range(5..=120))]
        ring_secs: u32,
        #[command(flatten)]
        db: DatabaseArgs,
    },
}

#[derive(Debug, Args)]
pub struct PolicyArgs {
    #[command(flatten)]
    at: TenantArgs,
    /// How long an agent's session lasts (8-12 hours)
    #[arg(long)]
    session_hours: Option<u64>,
    /// Click-to-calls one agent may start in a minute
    #[arg(long)]
    per_minute: Option<u32>,
    /// Click-to-calls all the tenant's agents together may start in a minute (60)
    #[arg(long)]
    tenant_per_minute: Option<u32>,
    /// Click-to-calls of the tenant in flight at once (10)
    #[arg(long)]
    tenant_in_flight: Option<u32>,
    /// Numbers of every country outside the tenant's (off by default; see --allow-country)
    #[arg(long, value_parser = on_off)]
    international: Option<bool>,
    /// Countries whose numbers may be called with --international off, ISO codes
    /// (`DE,AT`); repeat or comma-separate; replaces the list (`--allow-country none` empties it)
    #[arg(long = "allow-country", value_delimiter = ',')]
    allow_countries: Vec<String>,
    /// Premium-rate numbers (off by default)
    #[arg(long, value_parser = on_off)]
    premium_rate: Option<bool>,
    /// Shared-cost, personal, universal-access, satellite and international-network
    /// numbers (off by default)
    #[arg(long, value_parser = on_off)]
    costly_numbers: Option<bool>,
    /// Numbers that are not full phone numbers: extensions, short and emergency codes
    #[arg(long, value_parser = on_off)]
    short_numbers: Option<bool>,
    /// Only numbers starting with these (normalized, `+40`); repeat; replaces the list
    #[arg(long = "allow-prefix")]
    allow_prefixes: Vec<String>,
    /// Refuse numbers starting with these (`+4090`); repeat; replaces the list
    #[arg(long = "refuse-prefix")]
    refuse_prefixes: Vec<String>,
    /// An outbound queue, `NAME=DIGITS` (`sales=9`); repeat; replaces the list
    #[arg(long = "queue-prefix")]
    queue_prefixes: Vec<String>,
    /// Empty the prefix lists and queues before applying the flags above
    #[arg(long)]
    clear_lists: bool,
    /// How the number is written for the dialer: e164, national or digits
    #[arg(long, value_parser = NumberFormat::parse)]
    number_format: Option<NumberFormat>,
}

fn on_off(raw: &str) -> Result<bool, String> {
    match raw {
        "on" | "true" | "yes" => Ok(true),
        "off" | "false" | "no" => Ok(false),
        _ => Err(format!("`{raw}`: use on or off")),
    }
}

pub async fn run(cmd: DialerCommand) -> anyhow::Result<()> {
    match cmd {
        DialerCommand::Set { tenant, kind } => {
            let network = match &kind {
                DialerKind::Http { network, .. } => Some(network.rules.clone()),
                _ => None,
            };
            let (stored, db) = stored(kind)?;
            let db = open(&db).await?;
            let tenant = db.tenant(&tenant).await?;
            if let Some(rules) = network {
                checked_target(&stored, rules, &tenant.slug).await?;
            }
            let warnings = dialer::set(&db, &tenant, &stored).await?;
            eprintln!("set the {} dialer of `{}`", stored.kind, tenant.slug);
            for warning in warnings {
                eprintln!("warning: {warning}");
            }
        }
        DialerCommand::Show { at } => {
            let (db, tenant) = at.open().await?;
            let (dialer, policy) = dialer::show(&db, &tenant).await?;
            let shown = json!({
                "dialer": dialer.map(|d| json!({
                    "kind": d.kind,
                    "settings": d.settings,
                    "secret": d.secret.map(|_| "set (never shown)"),
                })),
                "policy": policy,
            });
            println!("{}", serde_json::to_string_pretty(&shown)?);
        }
        DialerCommand::Remove { at } => {
            let (db, tenant) = at.open().await?;
            dialer::remove(&db, &tenant).await?;
            eprintln!("removed the dialer of `{}`", tenant.slug);
        }
        DialerCommand::Policy(args) => policy(args).await?,
        DialerCommand::Placeholders => {
            for (name, meaning) in PLACEHOLDERS {
                println!("{{{{{name}}}}}  {meaning}");
            }
        }
    }
    Ok(())
}

async fn policy(args: PolicyArgs) -> anyhow::Result<()> {
    let queue_prefixes = (!args.queue_prefixes.is_empty())
        .then(|| {
            args.queue_prefixes
                .iter()
                .map(|q| parse_queue_prefix(q))
                .collect::<Result<_, _>>()
                .map_err(|e| anyhow::anyhow!("--queue-prefix: {e}"))
        })
        .transpose()?;
    let allowed_countries = (!args.allow_countries.is_empty())
        .then(|| allowed_countries(&args.allow_countries))
        .transpose()?;
    let changes = PolicyChanges {
        clear_lists: args.clear_lists,
        session_hours: args.session_hours,
        per_minute: args.per_minute,
        tenant_per_minute: args.tenant_per_minute,
        tenant_in_flight: args.tenant_in_flight,
        international: args.international,
        allowed_countries,
        premium_rate: args.premium_rate,
        costly_numbers: args.costly_numbers,
        short_numbers: args.short_numbers,
        allowed_prefixes: args.allow_prefixes,
        refused_prefixes: args.refuse_prefixes,
        queue_prefixes,
        number_format: args.number_format,
    };
    let (db, tenant) = args.at.open().await?;
    let policy = dialer::set_policy(&db, &tenant, changes).await?;
    eprintln!("set the dial policy of `{}`", tenant.slug);
    println!("{}", serde_json::to_string_pretty(&policy)?);
    Ok(())
}

/// `--allow-country` values as ISO codes (`de` → `DE`), without repeats; `none` alone
/// empties the list.
fn allowed_countries(raw: &[String]) -> anyhow::Result<Vec<String>> {
    let mut countries: Vec<String> = Vec::new();
    for code in raw.iter().map(|c| c.trim()).filter(|c| !c.is_empty()) {
        if code.eq_ignore_ascii_case("none") && raw.len() == 1 {
            return Ok(Vec::new());
        }
        let region = Region::parse(code).map_err(|e| anyhow::anyhow!("--allow-country: {e}"))?;
        let code = region.code().to_owned();
        if !countries.contains(&code) {
            countries.push(code);
        }
    }
    Ok(countries)
}

/// The `http` dialer's target, checked with the tenant's guard as every dial checks it
/// (the operator sees the address; the tenant's callers only the rule).
async fn checked_target(
    stored: &StoredDialer,
    rules: Vec<crate::config::webhooks::AllowRule>,
    tenant: &str,
) -> anyhow::Result<()> {
    let settings: HttpSettings = serde_json::from_value(stored.settings.clone())?;
    let clients = crate::dial::http::clients(&crate::outbound::Network::system(rules))?;
    HttpDialer::check_target(&settings, &clients.for_tenant(tenant)?)
        .await
        .map_err(|refused| anyhow::anyhow!("--url: {}", refused.detail()))
}

fn template(flag: &str, raw: &str) -> anyhow::Result<Template> {
    Template::parse(raw).map_err(|e| anyhow::anyhow!("--{flag}: {e}"))
}

/// A secret file's content, without its trailing newline.
fn secret_file(flag: &str, path: &std::path::Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("--{flag}: reading {}", path.display()))?;
    let secret = text.trim_end_matches(['\r', '\n']).to_owned();
    if secret.is_empty() || secret.contains(['\r', '\n']) {
        bail!(
            "--{flag}: {} must hold the secret on one line",
            path.display()
        );
    }
    Ok(secret)
}

/// `Name: value`.
fn header(flag: &str, raw: &str) -> anyhow::Result<(String, String)> {
    let (name, value) = raw
        .split_once(':')
        .ok_or_else(|| anyhow::anyhow!("--{flag}: `Name: value` expected"))?;
    let name = name.trim().to_owned();
    header_name(&name).map_err(|e| anyhow::anyhow!("--{flag}: {e}"))?;
    Ok((name, value.trim().to_owned()))
}

fn endpoint(host: &str, port: u16) -> anyhow::Result<Endpoint> {
    Endpoint::check(host, port).map_err(|e| anyhow::anyhow!("--host: {e}"))
}

/// The dialer as stored, checked; and where the database is.
fn stored(kind: DialerKind) -> anyhow::Result<(StoredDialer, DatabaseArgs)> {
    Ok(match kind {
        DialerKind::Http {
            url,
            method,
            headers,
            secret_headers,
            body,
            content_type,
            id_pointer,
            network: _,
            db,
        } => {
            let settings = HttpSettings {
                url: template("url", &url)?,
                method: method.to_ascii_uppercase(),
                headers: headers
                    .iter()
                    .map(|h| {
                        let (name, value) = header("header", h)?;
                        Ok((name, template("header", &value)?))
                    })
                    .collect::<anyhow::Result<_>>()?,
                body: body.as_deref().map(|b| template("body", b)).transpose()?,
                content_type,
                id_pointer,
            };
            HttpDialer::check(&settings).map_err(anyhow::Error::msg)?;
            let secret = HttpSecret {
                headers: secret_headers
                    .iter()
                    .map(|h| header("secret-header", h))
                    .collect::<anyhow::Result<_>>()?,
            };
            let secret = (!secret.headers.is_empty())
                .then(|| serde_json::to_value(&secret))
                .transpose()?;
            (
                stored_dialer("http", serde_json::to_value(&settings)?, secret),
                db,
            )
        }
        DialerKind::AsteriskAmi {
            host,
            port,
            username,
            secret_file: path,
            channel,
            context,
            exten,
            caller_id,
            outbound_caller_id,
            ring_secs,
            db,
        } => {
            let settings = AmiSettings {
                endpoint: endpoint(&host, port)?,
                username: one_line_flag("username", &username)?,
                channel: template("channel", &channel)?,
                context: one_line_flag("context", &context)?,
                exten: template("exten", &exten)?,
                caller_id: template("caller-id", &caller_id)?,
                outbound_caller_id: outbound_caller_id
                    .as_deref()
                    .map(caller_id_number)
                    .transpose()?,
                timeout_ms: ring_secs * 1000,
            };
            let secret = AmiSecret {
                secret: secret_file("secret-file", &path)?,
            };
            let settings = serde_json::to_value(&settings)?;
            (
                stored_dialer(
                    "asterisk-ami",
                    settings,
                    Some(serde_json::to_value(&secret)?),
                ),
                db,
            )
        }
        DialerKind::FreeswitchEsl {
            host,
            port,
            password_file,
            endpoint: agent_endpoint,
            destination,
            dialplan,
            context,
            caller_id_name,
            outbound_caller_id,
            ring_secs,
            db,
        } => {
            let settings = EslSettings {
                endpoint: endpoint(&host, port)?,
                agent_endpoint: template("endpoint", &agent_endpoint)?,
                destination: template("destination", &destination)?,
                dialplan: one_line_flag("dialplan", &dialplan)?,
                context: one_line_flag("context", &context)?,
                caller_id_name: template("caller-id-name", &caller_id_name)?,
                outbound_caller_id: outbound_caller_id
                    .as_deref()
                    .map(caller_id_number)
                    .transpose()?,
                timeout_secs: ring_secs,
            };
            let secret = EslSecret {
                password: secret_file("password-file", &password_file)?,
            };
            let settings = serde_json::to_value(&settings)?;
            (
                stored_dialer(
                    "freeswitch-esl",
                    settings,
                    Some(serde_json::to_value(&secret)?),
                ),
                db,
            )
        }
    })
}

fn stored_dialer(kind: &str, settings: Value, secret: Option<Value>) -> StoredDialer {
    StoredDialer {
        kind: kind.to_owned(),
        settings,
        secret,
    }
}

/// `--outbound-caller-id`: a number as a trunk presents it (`+40215550100`, `0215550100`).
fn caller_id_number(raw: &str) -> anyhow::Result<String> {
    let digits = raw.strip_prefix('+').unwrap_or(raw);
    if !(3..=20).contains(&digits.len()) || !digits.bytes().all(|b| b.is_ascii_digit()) {
        bail!(
            "--outbound-caller-id: `{raw}` is not a phone number (digits, an optional leading +): \
             the tenant's outbound number, which the called customer sees"
        );
    }
    Ok(raw.to_owned())
}

/// A word of a protocol line (a user name, a context): no spaces or line breaks.
fn one_line_flag(flag: &str, raw: &str) -> anyhow::Result<String> {
    let ok = !raw.is_empty()
        && raw.len() <= 80
        && raw
            .chars()
            .all(|c| c.is_ascii_graphic() && !"{}'\",".contains(c));
    if !ok {
        bail!("--{flag}: `{raw}` must be one word of printable characters");
    }
    Ok(raw.to_owned())
}
