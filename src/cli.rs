//! The `cidgate` command line: serving, migrations and administration.

use std::fs::File;
use std::io::BufReader;
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use deadpool_postgres::Pool;
use ipnetwork::IpNetwork;

use crate::config::{self, DatabaseArgs, ServeSettings};
use crate::domain::{AuthPolicy, ContactInput, CrmId, PhoneNumber, Region, TenantSlug, TokenScope};
use crate::import::{self, ImportCounts};
use crate::popup::PopupSettings;
use crate::startup::Application;
use crate::store::{self, contacts::WriteOp, tenants::Tenant};
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
    Tenant(TenantCommand),
    /// Manage API tokens
    #[command(subcommand)]
    Token(TokenCommand),
    /// Manage a tenant's IP allowlist for lookups
    #[command(subcommand)]
    Allow(AllowCommand),
    /// Import contacts from a CSV file
    Import(ImportArgs),
    /// Create or refresh the `demo` tenant and print a lookup to try
    Demo(DemoArgs),
    /// Screen-pop signing keys
    #[command(subcommand)]
    Popup(PopupCommand),
}

#[derive(Debug, Subcommand)]
pub enum PopupCommand {
    /// Start signing screen-pop links with a new key; links signed with older keys keep
    /// working until they expire
    RotateKey {
        #[arg(long)]
        tenant: String,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// Stop accepting links signed with an older key at once (a key that leaked); the
    /// newest key cannot be retired: rotate first
    RetireKey {
        #[arg(long)]
        tenant: String,
        /// The key's number, as in the links it signed (`….<key id>.<signature>`)
        #[arg(long)]
        key_id: i32,
        #[command(flatten)]
        db: DatabaseArgs,
    },
}

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
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// List tenants
    List {
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// Change a tenant's lookup authentication or rate limit
    Set {
        slug: String,
        /// token, ip (source address alone, by allowlist) or token+ip
        #[arg(long)]
        auth: Option<String>,
        /// Lookups per second for this tenant, or `default`
        #[arg(long)]
        lookup_rate: Option<String>,
        #[command(flatten)]
        popup: PopupArgs,
        #[command(flatten)]
        db: DatabaseArgs,
    },
}

const MAX_POPUP_TTL_SECS: u64 = 7 * 24 * 3600;
const MAX_GRACE_SECS: u64 = 30 * 24 * 3600;

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

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token and print it (shown only this once)
    Create {
        #[arg(long)]
        tenant: String,
        /// lookup, sync, report or admin
        #[arg(long)]
        scope: String,
        #[arg(long, default_value = "")]
        label: String,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// List a tenant's tokens (never their secrets)
    List {
        #[arg(long)]
        tenant: String,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// Revoke a token by its id
    Revoke {
        id: i64,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// Issue a new token in place of ID and print it; ID keeps working for the grace period
    Rotate {
        id: i64,
        /// How long the old token stays valid, e.g. 30m, 24h, 7d
        #[arg(long, default_value = "24h", value_parser = humantime::parse_duration)]
        grace: std::time::Duration,
        #[command(flatten)]
        db: DatabaseArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum AllowCommand {
    /// Allow lookups from a network (CIDR or single address)
    Add {
        #[arg(long)]
        tenant: String,
        cidr: String,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// List allowed networks
    List {
        #[arg(long)]
        tenant: String,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// Remove a network
    Remove {
        #[arg(long)]
        tenant: String,
        cidr: String,
        #[command(flatten)]
        db: DatabaseArgs,
    },
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    #[arg(long)]
    tenant: String,
    /// CSV with a header row: id,name,phones,… (phones separated by `;`)
    file: PathBuf,
    #[command(flatten)]
    db: DatabaseArgs,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Where the gateway will listen (used in the printed curl line)
    #[arg(long, env = "CIDGATE_LISTEN", default_value = "127.0.0.1:8080")]
    listen: String,
    /// Base URL for the printed curl line (defaults to http://LISTEN)
    #[arg(long, env = "CIDGATE_PUBLIC_URL", value_parser = config::parse_base_url)]
    public_url: Option<url::Url>,
    #[command(flatten)]
    db: DatabaseArgs,
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
            config::warn_unknown_variables();
            Application::build(&settings)
                .await?
                .run_until_stopped()
                .await?;
        }
        Command::Migrate(db) => {
            store::migrate(&admin_pool(&db)?).await?;
            eprintln!("migrations are up to date");
        }
        Command::Tenant(cmd) => tenant(cmd).await?,
        Command::Token(cmd) => token(cmd).await?,
        Command::Allow(cmd) => allow(cmd).await?,
        Command::Import(args) => return import(args).await,
        Command::Demo(args) => demo(args).await?,
        Command::Popup(PopupCommand::RotateKey { tenant, db }) => {
            let pool = migrated_pool(&db).await?;
            let tenant = find_tenant(&pool, &tenant).await?;
            // The key and its notification commit together, or neither does.
            let mut client = pool.get().await?;
            let tx = client.transaction().await?;
            let key_id = store::popup::rotate_key(&tx, tenant.id).await?;
            tx.commit().await?;
            eprintln!(
                "`{}` now signs screen-pop links with key {key_id}",
                tenant.slug
            );
        }
        Command::Popup(PopupCommand::RetireKey { tenant, key_id, db }) => {
            let pool = migrated_pool(&db).await?;
            let tenant = find_tenant(&pool, &tenant).await?;
            let mut client = pool.get().await?;
            let tx = client.transaction().await?;
            store::popup::retire_key(&tx, tenant.id, key_id).await?;
            tx.commit().await?;
            eprintln!(
                "`{}` no longer accepts links signed with key {key_id}",
                tenant.slug
            );
        }
    }
    Ok(Exit::Success)
}

/// A small pool for one-shot commands; runs migrations so a fresh database works.
fn admin_pool(db: &DatabaseArgs) -> anyhow::Result<Pool> {
    store::connect_pool(
        db.database_url.expose(),
        2,
        std::time::Duration::from_secs(30),
    )
}

async fn migrated_pool(db: &DatabaseArgs) -> anyhow::Result<Pool> {
    let pool = admin_pool(db)?;
    store::migrate(&pool).await?;
    Ok(pool)
}

async fn find_tenant(pool: &Pool, slug: &str) -> anyhow::Result<Tenant> {
    let slug = TenantSlug::parse(slug).map_err(anyhow::Error::msg)?;
    let client = pool.get().await.context("connecting to the database")?;
    store::tenants::find_by_slug(&client, &slug)
        .await?
        .with_context(|| format!("no tenant `{slug}` (see `cidgate tenant list`)"))
}

async fn tenant(cmd: TenantCommand) -> anyhow::Result<()> {
    match cmd {
        TenantCommand::Create {
            slug,
            region,
            name,
            db,
        } => {
            let slug = TenantSlug::parse(&slug).map_err(anyhow::Error::msg)?;
            let region = Region::parse(&region).map_err(|e| anyhow::anyhow!("--region: {e}"))?;
            let name = name.unwrap_or_else(|| slug.to_string());
            let pool = migrated_pool(&db).await?;
            let client = pool.get().await?;
            let tenant = store::tenants::create(&client, &slug, &name, region).await?;
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
            popup,
            db,
        } => {
            let policy = auth
                .map(|a| AuthPolicy::parse(&a).map_err(|e| anyhow::anyhow!("--auth: {e}")))
                .transpose()?;
            let rate = lookup_rate.map(|r| parse_rate(&r)).transpose()?;
            if policy.is_none() && rate.is_none() && popup.is_empty() {
                bail!(
                    "nothing to change: give --auth, --lookup-rate or a screen-pop option (see --help)"
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

async fn token(cmd: TokenCommand) -> anyhow::Result<()> {
    match cmd {
        TokenCommand::Create {
            tenant,
            scope,
            label,
            db,
        } => {
            let scope = TokenScope::parse(&scope).map_err(|e| anyhow::anyhow!("--scope: {e}"))?;
            let pool = migrated_pool(&db).await?;
            let tenant = find_tenant(&pool, &tenant).await?;
            let client = pool.get().await?;
            let (id, token) = store::tokens::create(&client, tenant.id, scope, &label).await?;
            println!("{}", token.expose());
            eprintln!(
                "created {scope} token {id} for `{}`; it is shown only this once",
                tenant.slug
            );
        }
        TokenCommand::List { tenant, db } => {
            let pool = migrated_pool(&db).await?;
            let tenant = find_tenant(&pool, &tenant).await?;
            let client = pool.get().await?;
            println!(
                "{:>6} {:<7} {:<25} {:<25} {:<8} LABEL",
                "ID", "SCOPE", "CREATED", "LAST USED", "STATE"
            );
            for t in store::tokens::list(&client, tenant.id).await? {
                let state = match (t.revoked_at, t.expires_at) {
                    (Some(_), _) => "revoked",
                    (None, Some(at)) if at <= chrono::Utc::now() => "expired",
                    (None, Some(_)) => "expiring",
                    (None, None) => "active",
                };
                let last_used = t
                    .last_used_at
                    .map_or_else(|| "-".to_owned(), |at| at.to_rfc3339());
                println!(
                    "{:>6} {:<7} {:<25} {:<25} {:<8} {}",
                    t.id,
                    t.scope,
                    t.created_at.to_rfc3339(),
                    last_used,
                    state,
                    t.label
                );
            }
        }
        TokenCommand::Rotate { id, grace, db } => {
            anyhow::ensure!(
                grace.as_secs() <= MAX_GRACE_SECS,
                "--grace: at most 30 days (720h); the old token should stop working soon"
            );
            let pool = migrated_pool(&db).await?;
            let mut client = pool.get().await?;
            let tx = client.transaction().await?;
            let Some((new_id, token, old_expires)) = store::tokens::rotate(&tx, id, grace).await?
            else {
                bail!("no active token with id {id}");
            };
            tx.commit().await?;
            println!("{}", token.expose());
            eprintln!(
                "token {new_id} replaces token {id}, which stops working at {}",
                old_expires.to_rfc3339()
            );
        }
        TokenCommand::Revoke { id, db } => {
            let pool = migrated_pool(&db).await?;
            let client = pool.get().await?;
            if !store::tokens::revoke(&client, id).await? {
                bail!("no active token with id {id}");
            }
            eprintln!("revoked token {id}");
        }
    }
    Ok(())
}

fn parse_network(raw: &str) -> anyhow::Result<IpNetwork> {
    config::parse_network(raw).map_err(anyhow::Error::msg)
}

async fn allow(cmd: AllowCommand) -> anyhow::Result<()> {
    match cmd {
        AllowCommand::Add { tenant, cidr, db } => {
            let network = parse_network(&cidr)?;
            let pool = migrated_pool(&db).await?;
            let tenant = find_tenant(&pool, &tenant).await?;
            let mut client = pool.get().await?;
            let tx = client.transaction().await?;
            let added = store::allowlist::add(&tx, tenant.id, network)
                .await
                .with_context(|| format!("cannot add {network}"))?;
            tx.commit().await?;
            eprintln!(
                "{network} {} the allowlist of `{}`",
                if added { "added to" } else { "was already on" },
                tenant.slug
            );
        }
        AllowCommand::List { tenant, db } => {
            let pool = migrated_pool(&db).await?;
            let tenant = find_tenant(&pool, &tenant).await?;
            let client = pool.get().await?;
            let networks = store::allowlist::list(&client, tenant.id).await?;
            if networks.is_empty() {
                eprintln!("no allowlist: lookups are accepted from any address");
            }
            for network in networks {
                println!("{network}");
            }
        }
        AllowCommand::Remove { tenant, cidr, db } => {
            let network = parse_network(&cidr)?;
            let pool = migrated_pool(&db).await?;
            let tenant = find_tenant(&pool, &tenant).await?;
            let client = pool.get().await?;
            if !store::allowlist::remove(&client, tenant.id, network).await? {
                bail!("{network} is not on the allowlist of `{}`", tenant.slug);
            }
            eprintln!("removed {network} from the allowlist of `{}`", tenant.slug);
        }
    }
    Ok(())
}

/// Rows parsed and written at a time: the file is parsed a piece ahead of the writes.
const IMPORT_PIECE: usize = store::contacts::CHUNK;

async fn import(args: ImportArgs) -> anyhow::Result<Exit> {
    let pool = migrated_pool(&args.db).await?;
    let tenant = find_tenant(&pool, &args.tenant).await?;
    let mut attempt = 1;
    let (outcome, rejected) = loop {
        match import_once(&pool, &tenant, &args.file).await {
            // Lost a race with another writer (a contact of the file created meanwhile,
            // or a deadlock with a concurrent batch): nothing was written, and the next
            // attempt sees what that writer did.
            Err(e) if attempt < 3 && store::contacts::worth_retrying(&e) => {
                eprintln!("a concurrent write got in the way; importing again");
                attempt += 1;
            }
            result => break result?,
        }
    };

    let counts = ImportCounts::from_results(&outcome.results);
    for row in &rejected {
        for e in &row.errors {
            eprintln!("line {}: rejected: {} {}", row.line, e.field, e.message);
        }
    }
    println!(
        "imported {} rows ({} created, {} updated, {} stale), rejected {} rows",
        outcome.results.len() - counts.stale,
        counts.created,
        counts.updated,
        counts.stale,
        rejected.len()
    );
    Ok(if rejected.is_empty() {
        Exit::Success
    } else {
        Exit::Partial
    })
}

/// One attempt at an import: the writes and the rejected rows, committed.
async fn import_once(
    pool: &Pool,
    tenant: &Tenant,
    path: &std::path::Path,
) -> anyhow::Result<(store::contacts::WriteOutcome, Vec<import::RejectedRow>)> {
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;

    // The parser runs on its own thread, one piece ahead: a bounded channel keeps it
    // from running further ahead of the writes.
    let (pieces, mut parsed) = tokio::sync::mpsc::channel::<import::ParsedImport>(1);
    let region = tenant.region;
    let parser = tokio::task::spawn_blocking(move || {
        import::read_csv(BufReader::new(file), region, IMPORT_PIECE, |piece| {
            pieces
                .blocking_send(piece)
                .map_err(|_| anyhow::anyhow!("the import stopped writing"))
        })
    });

    // All or nothing: one transaction, dropped (rolled back) on any error.
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    let mut writer = store::contacts::BatchWriter::begin(&tx, tenant.id).await?;
    let mut rejected = Vec::new();
    while let Some(piece) = parsed.recv().await {
        writer.write(&piece.ops).await?;
        rejected.extend(piece.rejected);
    }
    parser
        .await
        .context("the CSV parser failed")?
        .with_context(|| format!("{} is malformed; nothing was imported", path.display()))?;
    let outcome = writer.finish().await?;
    tx.commit().await?;
    Ok((outcome, rejected))
}

/// A rate in lookups per second, or `default` for the gateway's.
fn parse_rate(raw: &str) -> anyhow::Result<Option<u32>> {
    if raw == "default" {
        return Ok(None);
    }
    match raw.parse::<u32>() {
        Ok(n) if n > 0 => Ok(Some(n)),
        _ => bail!(
            "--lookup-rate: `{raw}` is not a positive number of lookups per second or `default`"
        ),
    }
}

const DEMO_SLUG: &str = "demo";
const DEMO_CONTACTS: u32 = 1_000;
const FIRST_NAMES: &[&str] = &[
    "Ana", "Ion", "Maria", "Andrei", "Elena", "Mihai", "Ioana", "Radu", "Cristina", "Vlad",
];
const LAST_NAMES: &[&str] = &[
    "Popescu", "Ionescu", "Popa", "Dumitru", "Stan", "Stoica", "Gheorghe", "Matei", "Ciobanu",
    "Rusu",
];

/// The demo's n-th phone number, in national format as a Romanian PBX sends it.
fn demo_phone(n: u32) -> String {
    format!("0722{:06}", 100_000 + n)
}

async fn demo(args: DemoArgs) -> anyhow::Result<()> {
    let pool = migrated_pool(&args.db).await?;
    let slug = TenantSlug::parse(DEMO_SLUG).map_err(anyhow::Error::msg)?;
    let region = Region::parse("RO").map_err(anyhow::Error::msg)?;
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    let tenant = match store::tenants::find_by_slug(&tx, &slug).await? {
        Some(tenant) => tenant,
        None => store::tenants::create(&tx, &slug, "Demo tenant", region).await?,
    };
    store::contacts::delete_all(&tx, tenant.id).await?;
    let ops = (1..=DEMO_CONTACTS)
        .map(|n| demo_contact(n, tenant.region))
        .collect::<anyhow::Result<Vec<_>>>()?;
    store::contacts::apply(&tx, tenant.id, &ops).await?;
    store::tokens::revoke_labelled(&tx, tenant.id, "demo").await?;
    let (_, token) = store::tokens::create(&tx, tenant.id, TokenScope::Lookup, "demo").await?;
    tx.commit().await?;

    let base = match args.public_url {
        Some(url) => url.to_string(),
        None => format!("http://{}", args.listen),
    };
    let base = base.trim_end_matches('/');
    println!("demo tenant `{DEMO_SLUG}` is ready with {DEMO_CONTACTS} contacts");
    println!("lookup token (shown only now): {}", token.expose());
    println!(
        "try: curl '{base}/api/lookup?telephone={}&dnid=0210000000&token={}'",
        demo_phone(42),
        token.expose()
    );
    Ok(())
}

fn demo_contact(n: u32, region: Region) -> anyhow::Result<WriteOp> {
    let first = FIRST_NAMES[n as usize % FIRST_NAMES.len()];
    let last = LAST_NAMES[(n as usize / FIRST_NAMES.len()) % LAST_NAMES.len()];
    let id = 10_000 + n;
    let phone = PhoneNumber::parse(&demo_phone(n), region)
        .map_err(|e| anyhow::anyhow!("demo number {e}"))?;
    let input = ContactInput {
        name: format!("{first} {last}"),
        phones: vec![phone],
        direct_line: n
            .is_multiple_of(5)
            .then(|| format!("SIP/{}-{}", first.to_lowercase(), last.to_lowercase())),
        queue_position: n.is_multiple_of(7).then_some((n % 101) as i16),
        route_identifier: None,
        outbound_number: None,
        language: Some(if n.is_multiple_of(3) { "en" } else { "ro" }.to_owned()),
        external_id: None,
        crm_url: Some(format!("https://crm.example.com/contacts/{id}")),
        attributes: serde_json::Map::new(),
        updated_at: None,
    };
    let id = CrmId::parse(&id.to_string()).map_err(anyhow::Error::msg)?;
    Ok(WriteOp::Upsert(id, Box::new(input)))
}
