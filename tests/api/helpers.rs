//! Test harness: every test gets its own database on the test cluster and its own
//! gateway on a free port, talking real HTTP to real PostgreSQL.

use std::net::SocketAddr;
use std::process::Output;

use cidgate::config::ServeSettings;
use cidgate::domain::{Region, TenantSlug, TokenScope};
use cidgate::jobs::Supervisor;
use cidgate::startup::Application;
use cidgate::store;
use deadpool_postgres::Pool;
use serde_json::Value;

/// The cluster the test script started; each test creates a database in it.
fn admin_url() -> String {
    std::env::var("CIDGATE_TEST_DATABASE_URL")
        .expect("CIDGATE_TEST_DATABASE_URL is not set: run the tests with deploy/local/test.sh")
}

/// A database that exists for one test and is dropped when the test ends, pass or fail.
pub struct TestDb {
    pub url: String,
    name: String,
}

impl TestDb {
    pub async fn create() -> Self {
        let name = format!("cidgate_test_{}", rand_suffix());
        let (client, connection) = tokio_postgres::connect(&admin_url(), tokio_postgres::NoTls)
            .await
            .expect("connecting to the test cluster");
        tokio::spawn(connection);
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .expect("creating the test database");
        let mut url = url::Url::parse(&admin_url()).expect("test URL parses");
        url.set_path(&name);
        Self {
            url: url.to_string(),
            name,
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Drop runs inside the test's runtime, so the cleanup gets a thread of its own.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async {
                let (client, connection) =
                    tokio_postgres::connect(&admin_url(), tokio_postgres::NoTls).await?;
                tokio::spawn(connection);
                client
                    .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .await
            })?;
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop test database {}", self.name);
        }
    }
}

fn rand_suffix() -> String {
    use rand::Rng;
    rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(12)
        .map(|c| char::from(c).to_ascii_lowercase())
        .collect()
}

pub struct TestApp {
    pub address: String,
    pub pool: Pool,
    pub http: reqwest::Client,
    pub db: TestDb,
}

/// A tenant with one token of each API scope the tests use.
pub struct TestTenant {
    pub lookup_token: String,
    pub sync_token: String,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// A gateway on a fresh database, with settings adjusted by `configure`.
pub async fn spawn_app_with(configure: impl FnOnce(&mut ServeSettings)) -> TestApp {
    spawn_app_and_jobs(configure).await.0
}

/// A gateway on a fresh database, and its background tasks (to watch or kill one).
pub async fn spawn_app_and_jobs(
    configure: impl FnOnce(&mut ServeSettings),
) -> (TestApp, Supervisor) {
    spawn_app_resolving(configure, cidgate::outbound::resolve::system()).await
}

/// A gateway whose outbound requests (web services, HTTP dialers) resolve names with
/// `resolver`.
pub async fn spawn_app_resolving(
    configure: impl FnOnce(&mut ServeSettings),
    resolver: std::sync::Arc<dyn cidgate::outbound::Resolver>,
) -> (TestApp, Supervisor) {
    let db = TestDb::create().await;
    let (address, jobs) = start_instance(&db.url, configure, resolver).await;
    let pool =
        store::connect_pool(&db.url, 2, std::time::Duration::from_secs(5)).expect("test pool");
    let app = TestApp {
        address,
        pool,
        http: test_client(),
        db,
    };
    (app, jobs)
}

/// Starts a gateway on an existing database (a second instance, or one reaching the
/// database through a `DbProxy`) and returns its base URL.
pub async fn spawn_instance(
    database_url: &str,
    configure: impl FnOnce(&mut ServeSettings),
) -> String {
    let resolver = cidgate::outbound::resolve::system();
    start_instance(database_url, configure, resolver).await.0
}

async fn start_instance(
    database_url: &str,
    configure: impl FnOnce(&mut ServeSettings),
    resolver: std::sync::Arc<dyn cidgate::outbound::Resolver>,
) -> (String, Supervisor) {
    // Warnings and errors show in the output of a failing test.
    cidgate::telemetry::init(cidgate::telemetry::LogFormat::Pretty, "warn");
    let listen: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let mut settings = ServeSettings::new(database_url.to_owned(), listen);
    settings.workers = Some(1);
    // Tests open pages in `eventually` loops; the per-address limit has its own test.
    settings.pop_rate = 1_000;
    configure(&mut settings);
    let app = Application::build_resolving(&settings, resolver)
        .await
        .expect("building the app");
    let address = format!("http://127.0.0.1:{}", app.port());
    let jobs = app.jobs();
    tokio::spawn(app.run_until_stopped());
    (address, jobs)
}

impl TestApp {
    /// Waits until the gateway's auth directory holds every live token. Until then a
    /// token is checked in the database, whose answer may be newer than the directory
    /// load still under way: a test that changes a tenant's settings and waits to see
    /// the change could otherwise see it, then briefly the load from before.
    pub async fn wait_for_directory(&self) {
        let client = self.pool.get().await.unwrap();
        let live: i64 = client
            .query_one(
                "SELECT count(*) FROM api_tokens WHERE revoked_at IS NULL
                   AND (expires_at IS NULL OR expires_at > now())",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        let loaded = || async {
            let text = self
                .http
                .get(format!("{}/metrics", self.address))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            text.lines()
                .find_map(|l| l.strip_prefix("cidgate_directory_tokens "))
                .and_then(|v| v.trim().parse::<f64>().ok())
                .is_some_and(|v| v >= live as f64)
        };
        eventually(PROPAGATION, "the gateway loads the new tokens", loaded).await;
    }

    /// A new token of tenant `slug` for `scopes` (`"lookup,events"`, `"admin"`), made in
    /// the database as `cidgate token create` makes it.
    pub async fn token(&self, slug: &str, scopes: &str) -> String {
        let client = self.pool.get().await.unwrap();
        let tenant = store::tenants::find_by_slug(&client, &TenantSlug::parse(slug).unwrap())
            .await
            .unwrap()
            .expect("the tenant exists");
        let scopes = cidgate::domain::TokenScopes::parse(scopes).unwrap();
        let (_, token) = store::tokens::create(&client, tenant.id, scopes, "test")
            .await
            .unwrap();
        token.expose().to_owned()
    }

    /// How many committed contacts of tenant `slug` hold `number` (normalized): what a
    /// "nothing was written" check asks, since a lookup may answer unknown only because
    /// the gateway has not heard of a write yet.
    pub async fn contacts_with_number(&self, slug: &str, number: &str) -> i64 {
        let client = self.pool.get().await.unwrap();
        client
            .query_one(
                "SELECT count(*) FROM contact_phones p JOIN tenants t ON t.id = p.tenant_id
                  WHERE t.slug = $1 AND p.number = $2",
                &[&slug, &number],
            )
            .await
            .unwrap()
            .get(0)
    }

    pub async fn create_tenant(&self, slug: &str, region: &str) -> TestTenant {
        self.create_tenant_allowing(slug, region, &[]).await
    }

    /// A tenant whose allowlist holds `networks` before its tokens exist. The gateway
    /// learns of changes eventually: a token it has not loaded yet is checked in the
    /// database, and a reload already under way can briefly bring back the state from
    /// before an allowlist change. With the allowlist first, no state the gateway can
    /// see has the token without it.
    pub async fn create_tenant_allowing(
        &self,
        slug: &str,
        region: &str,
        networks: &[&str],
    ) -> TestTenant {
        let client = self.pool.get().await.unwrap();
        let slug_parsed = TenantSlug::parse(slug).unwrap();
        let tenant =
            store::tenants::create(&client, &slug_parsed, slug, Region::parse(region).unwrap())
                .await
                .unwrap();
        for network in networks {
            store::allowlist::add(&client, tenant.id, network.parse().unwrap())
                .await
                .unwrap();
        }
        let (_, lookup) = store::tokens::create(&client, tenant.id, TokenScope::Lookup, "test")
            .await
            .unwrap();
        let (_, sync) = store::tokens::create(&client, tenant.id, TokenScope::Sync, "test")
            .await
            .unwrap();
        self.wait_for_directory().await;
        TestTenant {
            lookup_token: lookup.expose().to_owned(),
            sync_token: sync.expose().to_owned(),
        }
    }

    /// A PBX lookup with the token in the query string, as the reference sends it.
    pub async fn lookup(&self, token: &str, telephone: &str) -> reqwest::Response {
        self.lookup_at(&self.address, token, telephone).await
    }

    /// The same lookup against another instance of the gateway.
    pub async fn lookup_at(
        &self,
        address: &str,
        token: &str,
        telephone: &str,
    ) -> reqwest::Response {
        self.http
            .get(format!("{address}/api/lookup"))
            .query(&[
                ("telephone", telephone),
                ("dnid", "0210000000"),
                ("token", token),
            ])
            .send()
            .await
            .expect("lookup request")
    }

    /// A GET of a path with its query string exactly as written (unencoded `+`, `%00`),
    /// as a PBX that builds URLs by hand sends it.
    pub async fn get_raw(&self, path_and_query: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path_and_query}", self.address))
            .send()
            .await
            .expect("GET request")
    }

    /// The looked-up answer as JSON, asserting a 200.
    pub async fn lookup_json(&self, token: &str, telephone: &str) -> Value {
        let response = self.lookup(token, telephone).await;
        assert_eq!(response.status(), 200, "lookup of {telephone:?}");
        response.json().await.unwrap()
    }

    pub async fn put_contact(&self, token: &str, id: &str, body: &Value) -> reqwest::Response {
        self.http
            .put(format!("{}/api/v1/contacts/{id}", self.address))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .expect("put request")
    }

    pub async fn batch(&self, token: &str, body: &Value) -> reqwest::Response {
        self.http
            .post(format!("{}/api/v1/contacts/batch", self.address))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .expect("batch request")
    }

    pub async fn get_contact(&self, token: &str, id: &str) -> reqwest::Response {
        self.http
            .get(format!("{}/api/v1/contacts/{id}", self.address))
            .bearer_auth(token)
            .send()
            .await
            .expect("get request")
    }

    /// Runs the `cidgate` binary against this test's database.
    pub fn cli(&self, args: &[&str]) -> Output {
        std::process::Command::new(env!("CARGO_BIN_EXE_cidgate"))
            .args(args)
            .env("DATABASE_URL", &self.db.url)
            .env_remove("RUST_LOG")
            .output()
            .expect("running cidgate")
    }

    /// The id of `tenant`'s first token of `scope`, as `token list` shows it.
    pub fn token_id(&self, tenant: &str, scope: &str) -> String {
        let listed = self.cli(&["token", "list", "--tenant", tenant]);
        let listed = String::from_utf8(listed.stdout).unwrap();
        listed
            .lines()
            .find(|l| l.contains(&format!(" {scope} ")))
            .and_then(|l| l.split_whitespace().next())
            .unwrap()
            .to_owned()
    }

    /// A lookup token of `tenant`, created and then revoked with the CLI.
    pub fn revoked_lookup_token(&self, tenant: &str) -> String {
        let created = self.cli(&["token", "create", "--tenant", tenant, "--scope", "lookup"]);
        let token = String::from_utf8(created.stdout).unwrap().trim().to_owned();
        let listed = self.cli(&["token", "list", "--tenant", tenant]);
        let listed = String::from_utf8(listed.stdout).unwrap();
        let id = listed
            .lines()
            .last()
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap();
        assert!(self.cli(&["token", "revoke", id]).status.success());
        token
    }

    /// Starts `cidgate serve` as its own process against this test's database, after
    /// `configure` sets its environment and output, and waits until it is ready.
    /// Answers the child and its base URL.
    pub async fn serve_process(
        &self,
        configure: impl FnOnce(&mut std::process::Command),
    ) -> (std::process::Child, String) {
        let port = {
            let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            probe.local_addr().unwrap().port()
        };
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_cidgate"));
        command
            .arg("serve")
            .env("DATABASE_URL", &self.db.url)
            .env("CIDGATE_LISTEN", format!("127.0.0.1:{port}"))
            .stdout(std::process::Stdio::null());
        configure(&mut command);
        let server = command.spawn().expect("starting cidgate serve");
        let base = format!("http://127.0.0.1:{port}");
        eventually(std::time::Duration::from_secs(30), "the gateway starts", || async {
            matches!(self.http.get(format!("{base}/readyz")).send().await, Ok(r) if r.status() == 200)
        })
        .await;
        (server, base)
    }
}

/// Waits for an effect that reaches the gateway asynchronously — a change made by
/// another process or instance arrives through PostgreSQL NOTIFY — and fails the test
/// if it has not happened within `within`. Returns at the first check that passes.
pub async fn eventually<F, Fut>(within: std::time::Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let give_up = tokio::time::Instant::now() + within;
    while !check().await {
        assert!(
            tokio::time::Instant::now() < give_up,
            "not within {within:?}: {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// What the gateway promises: a change reaches every instance within a second.
pub const WITHIN_A_SECOND: std::time::Duration = std::time::Duration::from_secs(1);

/// A looser bound for set-up steps that wait on the same mechanism, so a busy machine
/// does not fail a test about something else.
pub const PROPAGATION: std::time::Duration = std::time::Duration::from_secs(5);

/// The reference's all-null answer for an unknown caller, byte for byte.
pub const UNKNOWN_ANSWER: &str = r#"{"id":null,"name":null,"queue_position":null,"direct_line":null,"backend_link":null,"route_identifier":null,"outbound_number":null,"language":null,"external_id":null}"#;

/// A temporary file holding `text` (a CSV export, a configuration file), removed on drop.
pub fn text_file(text: &str) -> tempfile::NamedTempFile {
    use std::io::Write;
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(text.as_bytes()).unwrap();
    file
}

/// The tests' HTTP client. An idle connection is given up well before the gateway's
/// keep-alive (actix's 5 s) closes it: a request sent on a connection the server is closing
/// at that moment fails (IncompleteMessage), a race of the test, not of the gateway.
pub fn test_client() -> reqwest::Client {
    // reqwest has no provider of its own here (the gateway's is ring).
    cidgate::outbound::tls::install_default_provider();
    reqwest::Client::builder()
        .pool_idle_timeout(std::time::Duration::from_secs(2))
        .build()
        .expect("test HTTP client")
}
