//! Typed settings for `serve`, read once at start from flags or `CIDGATE_*` variables.
//! A wrong value fails at start with the name of the setting.

pub mod file;
mod variables;
pub mod webhooks;

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use clap::Args;
use url::Url;

use ipnetwork::IpNetwork;

pub use self::variables::{known_variables, warn_unknown_variables};

/// A value that must never be printed: `Debug` shows only that it is set.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// Where the database is; shared by every subcommand that needs it.
#[derive(Debug, Clone, Args)]
pub struct DatabaseArgs {
    /// PostgreSQL connection string, e.g. postgres://cidgate:…@db:5432/cidgate
    #[arg(long, env = "DATABASE_URL", hide_env_values = true, value_parser = parse_secret)]
    pub database_url: Secret,
}

fn parse_secret(raw: &str) -> Result<Secret, String> {
    Ok(Secret(raw.to_owned()))
}

/// Settings of the HTTP server.
#[derive(Debug, Clone, Args)]
pub struct ServeSettings {
    #[command(flatten)]
    pub database: DatabaseArgs,

    /// Address and port to listen on
    #[arg(long, env = "CIDGATE_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// Base URL of this gateway as PBXs and agents reach it (used in links it hands out);
    /// defaults to http://LISTEN
    #[arg(long, env = "CIDGATE_PUBLIC_URL", value_parser = parse_base_url)]
    pub public_url: Option<Url>,

    /// Largest number of database connections this instance opens
    #[arg(long, env = "CIDGATE_DB_POOL_SIZE", default_value_t = 16,
          value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub db_pool_size: u16,

    /// Lookup statements in flight at once; misses that arrive meanwhile share the next
    /// (fewer, larger statements cost the database less than one per caller)
    #[arg(long, env = "CIDGATE_LOOKUP_STATEMENTS", default_value_t = 2,
          value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub lookup_statements: u16,

    /// HTTP worker threads (default: one per core)
    #[arg(long, env = "CIDGATE_WORKERS", value_parser = clap::value_parser!(u16).range(1..=256))]
    pub workers: Option<u16>,

    /// Optional read replica for lookups; writes and notifications use DATABASE_URL
    #[arg(long, env = "DATABASE_READ_URL", hide_env_values = true, value_parser = parse_secret)]
    pub database_read_url: Option<Secret>,

    /// Longest a lookup may take before cidgate answers from what it knows (ms)
    #[arg(long, env = "CIDGATE_LOOKUP_DEADLINE_MS", default_value_t = 250,
          value_parser = clap::value_parser!(u64).range(1..=60_000))]
    pub lookup_deadline_ms: u64,

    /// Longest a single lookup query may hold a connection before it is abandoned (ms)
    #[arg(long, env = "CIDGATE_DB_TIMEOUT_MS", default_value_t = 2_000,
          value_parser = clap::value_parser!(u64).range(10..=600_000))]
    pub db_timeout_ms: u64,

    /// Longest a sync API request may wait for the database before it is answered 503 (ms)
    #[arg(long, env = "CIDGATE_WRITE_TIMEOUT_MS", default_value_t = 15_000,
          value_parser = clap::value_parser!(u64).range(100..=600_000))]
    pub write_timeout_ms: u64,

    /// Longest a sync API request may take to send its body before it is answered 408 (ms)
    #[arg(long, env = "CIDGATE_BODY_TIMEOUT_MS", default_value_t = 60_000,
          value_parser = clap::value_parser!(u64).range(100..=600_000))]
    pub body_timeout_ms: u64,

    /// Contact batches read and parsed at once; each may hold its body (32 MiB at most)
    /// and twice that plus 16 MiB in parsed values
    #[arg(long, env = "CIDGATE_BATCH_PARSES", default_value_t = 2,
          value_parser = clap::value_parser!(u16).range(1..=256))]
    pub batch_parses: u16,

    /// The process's memory budget (MiB): the batch parses, the number index, the lookup
    /// cache and the rest of the process must fit in it; the parses at once are sized down
    /// (or `serve` refuses to start) when they would not. Default: the container's memory
    /// limit (cgroup), if it has one
    #[arg(long, env = "CIDGATE_MEMORY_BUDGET_MIB",
          value_parser = clap::value_parser!(u64).range(1..=16_777_216))]
    pub memory_budget_mib: Option<u64>,

    /// How long a batch waits for its turn to be parsed before it is answered 503 (ms)
    #[arg(long, env = "CIDGATE_BATCH_PARSE_WAIT_MS", default_value_t = 2_000,
          value_parser = clap::value_parser!(u64).range(0..=60_000))]
    pub batch_parse_wait_ms: u64,

    /// Memory the number index may use (bytes, estimated); past it the largest tenants'
    /// sets are dropped and their lookups ask the database
    #[arg(long, env = "CIDGATE_KNOWN_NUMBERS_MAX_BYTES", default_value_t = 256 * 1024 * 1024)]
    pub known_numbers_max_bytes: u64,
    /// Largest full snapshot `PUT /api/v1/contacts/snapshot` takes (bytes of CSV); it is
    /// streamed, not held in memory
    #[arg(long, env = "CIDGATE_SNAPSHOT_MAX_BYTES", default_value_t = 1024 * 1024 * 1024,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub snapshot_max_bytes: u64,

    /// How long `serve` waits at start for an unreachable database before giving up (s)
    #[arg(long, env = "CIDGATE_DB_START_WAIT_SECS", default_value_t = 60,
          value_parser = clap::value_parser!(u64).range(0..=3600))]
    pub db_start_wait_secs: u64,

    /// Memory the lookup cache may use (bytes, estimated)
    #[arg(long, env = "CIDGATE_CACHE_MAX_BYTES", default_value_t = 256 * 1024 * 1024)]
    pub cache_max_bytes: u64,

    /// How long a found answer is served from the cache without asking the database (s)
    #[arg(long, env = "CIDGATE_CACHE_TTL_FOUND_SECS", default_value_t = 600)]
    pub cache_ttl_found_secs: u64,

    /// How long an unknown answer is served from the cache (s)
    #[arg(long, env = "CIDGATE_CACHE_TTL_UNKNOWN_SECS", default_value_t = 60)]
    pub cache_ttl_unknown_secs: u64,

    /// How long a found answer is kept after it stops being fresh, to answer during an
    /// outage (s)
    #[arg(long, env = "CIDGATE_CACHE_KEEP_STALE_SECS", default_value_t = 86_400)]
    pub cache_keep_stale_secs: u64,

    /// Proxies (CIDRs, comma-separated) whose X-Forwarded-For / Forwarded is believed
    #[arg(long, env = "CIDGATE_TRUSTED_PROXIES", value_delimiter = ',', value_parser = parse_network)]
    pub trusted_proxies: Vec<IpNetwork>,

    /// The header the trusted proxies write: x-forwarded-for or forwarded (the other is
    /// ignored, since a proxy passes it through from the client)
    #[arg(
        long,
        env = "CIDGATE_FORWARDED_HEADER",
        value_enum,
        default_value = "x-forwarded-for"
    )]
    pub forwarded_header: ForwardedHeader,

    /// Lookups per second per tenant, unless the tenant has its own (`tenant set --lookup-rate`)
    #[arg(long, env = "CIDGATE_LOOKUP_RATE", default_value_t = 100,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub lookup_rate: u32,

    /// Call events per second per tenant, unless the tenant has its own
    /// (`tenant set --event-rate`)
    #[arg(long, env = "CIDGATE_EVENT_RATE", default_value_t = 1_000,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub event_rate: u32,

    /// Most legs (distinct PBX call ids) in one call; events adding more are refused
    #[arg(long, env = "CIDGATE_CALL_MAX_LEGS", default_value_t = 64,
          value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub call_max_legs: u32,

    /// Most events recorded for one call; events past it are refused
    #[arg(long, env = "CIDGATE_CALL_MAX_EVENTS", default_value_t = 1_000,
          value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub call_max_events: u32,

    /// Sync API requests per second per token
    #[arg(long, env = "CIDGATE_SYNC_RATE", default_value_t = 20,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub sync_rate: u32,

    /// Failed authentications per minute per source address before it is refused
    #[arg(long, env = "CIDGATE_AUTH_FAILURES_PER_MIN", default_value_t = 30,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub auth_failures_per_min: u32,

    /// Screen-pop pages per second per source address (agents behind one NAT share it)
    #[arg(long, env = "CIDGATE_POP_RATE", default_value_t = 20,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub pop_rate: u32,

    /// Browser origins (comma-separated) allowed to call the API; none by default
    #[arg(long, env = "CIDGATE_CORS_ORIGINS", value_delimiter = ',', value_parser = parse_origin)]
    pub cors_origins: Vec<String>,

    /// Days the lookup log (the screen pop's recent calls) is kept
    #[arg(long, env = "CIDGATE_LOOKUP_LOG_RETENTION_DAYS", default_value_t = 90,
          value_parser = clap::value_parser!(u32).range(1..=3650))]
    pub lookup_log_retention_days: u32,

    /// Days call records and their events are kept (whole months are dropped once
    /// every call in them is older)
    #[arg(long, env = "CIDGATE_CALL_RETENTION_DAYS", default_value_t = 400,
          value_parser = clap::value_parser!(u32).range(1..=3650))]
    pub call_retention_days: u32,

    /// Lookup log entries buffered for writing; beyond that they are dropped (and counted)
    #[arg(long, env = "CIDGATE_LOOKUP_LOG_BUFFER", default_value_t = 10_000,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub lookup_log_buffer: u32,

    /// Milliseconds one lookup log statement stays open, taking in the entries that arrive
    #[arg(long, env = "CIDGATE_LOOKUP_LOG_GATHER_MS", default_value_t = 50,
          value_parser = clap::value_parser!(u32).range(0..=60_000))]
    pub lookup_log_gather_ms: u32,

    #[command(flatten)]
    pub webhooks: webhooks::WebhookSettings,
}

impl ServeSettings {
    /// Settings for a server on `listen` against `database_url`, everything else the
    /// command line's defaults (read from its definition, so the two cannot drift; the
    /// environment is not read).
    pub fn new(database_url: String, listen: SocketAddr) -> Self {
        use clap::{Args, FromArgMatches};
        let command = Self::augment_args(clap::Command::new("serve"))
            .mut_args(|arg| arg.env(None::<&'static str>));
        let listen = listen.to_string();
        let matches = command
            .try_get_matches_from([
                "serve",
                "--database-url",
                &database_url,
                "--listen",
                &listen,
            ])
            .expect("the command line's defaults parse");
        Self::from_arg_matches(&matches).expect("the command line's defaults are settings")
    }

    pub fn rate_settings(&self) -> RateSettings {
        RateSettings {
            lookups_per_sec: self.lookup_rate,
            sync_per_sec: self.sync_rate,
            auth_failures_per_min: self.auth_failures_per_min,
            pops_per_sec: self.pop_rate,
            events_per_sec: self.event_rate,
        }
    }

    pub fn lookup_deadline(&self) -> Duration {
        Duration::from_millis(self.lookup_deadline_ms)
    }

    pub fn cache_settings(&self) -> CacheSettings {
        CacheSettings {
            max_bytes: self.cache_max_bytes,
            found_ttl: Duration::from_secs(self.cache_ttl_found_secs),
            unknown_ttl: Duration::from_secs(self.cache_ttl_unknown_secs),
            keep_stale: Duration::from_secs(self.cache_keep_stale_secs),
        }
    }
}

/// A CIDR network or a single address (`10.0.0.0/8`, `192.0.2.1`, `2001:db8::/32`).
pub fn parse_network(raw: &str) -> Result<IpNetwork, String> {
    let network: IpNetwork = raw.trim().parse().map_err(|_| {
        format!("`{raw}` is not an IP address or CIDR network such as 203.0.113.0/24")
    })?;
    // Clients' IPv4-mapped addresses are compared as IPv4, so such a range is one too.
    let network = match network {
        IpNetwork::V6(v6) if v6.prefix() >= 96 => match v6.network().to_ipv4_mapped() {
            Some(v4) => IpNetwork::new(v4.into(), v6.prefix() - 96).map_err(|e| e.to_string())?,
            None => network,
        },
        _ => network,
    };
    // The network itself: 10.1.2.3/8 means 10.0.0.0/8.
    IpNetwork::new(network.network(), network.prefix()).map_err(|e| e.to_string())
}

/// A browser origin: scheme, host and optional port, nothing else.
pub fn parse_origin(raw: &str) -> Result<String, String> {
    let url = parse_base_url(raw.trim())?;
    // A header carries it verbatim: a host name of letters, digits, dots and dashes, or
    // an IP address.
    let plain_host = matches!(url.host(), Some(url::Host::Ipv4(_) | url::Host::Ipv6(_)))
        || url.host_str().is_some_and(|h| {
            h.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
        });
    if url.path() != "/" || raw.trim().ends_with('/') || !plain_host {
        return Err(format!(
            "`{raw}` is not an origin such as https://crm.example.com"
        ));
    }
    Ok(url.origin().ascii_serialization())
}

/// Accepts only absolute http(s) URLs, without query or fragment.
pub fn parse_base_url(raw: &str) -> Result<Url, String> {
    let url = Url::parse(raw).map_err(|e| format!("not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || !url.has_host() {
        return Err("must be an absolute http:// or https:// URL".into());
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("must not have a query or fragment".into());
    }
    Ok(url)
}

/// Joins a base URL and a path, whether or not the base ends in `/`.
pub fn join_url(base: &Url, path: &str) -> String {
    format!(
        "{}/{}",
        base.as_str().trim_end_matches('/'),
        path.trim_start_matches('/')
    )
}

// The settings of the parts below (http's limits and client address, the lookup cache),
// defined here so that config/ imports nothing above domain/.

/// Which header the trusted proxies write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ForwardedHeader {
    XForwardedFor,
    Forwarded,
}

/// The rate limits (`http::rate_limit`).
#[derive(Debug, Clone, Copy)]
pub struct RateSettings {
    /// Lookups per second per tenant (a tenant may override it).
    pub lookups_per_sec: u32,
    /// Sync API requests per second per token.
    pub sync_per_sec: u32,
    /// Failed authentications per minute per source address.
    pub auth_failures_per_min: u32,
    /// Screen-pop pages per second per source address.
    pub pops_per_sec: u32,
    /// Call events per second per tenant (a tenant may override it).
    pub events_per_sec: u32,
}

/// The lookup cache's size and lifetimes (`lookup::cache`).
#[derive(Debug, Clone, Copy)]
pub struct CacheSettings {
    pub max_bytes: u64,
    pub found_ttl: Duration,
    pub unknown_ttl: Duration,
    /// How long a found answer is kept as the last known one after it stops being fresh.
    pub keep_stale: Duration,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls_must_be_absolute_http() {
        assert!(parse_base_url("https://gw.example.com").is_ok());
        assert!(parse_base_url("https://gw.example.com/cid/").is_ok());
        assert!(parse_base_url("gw.example.com").is_err());
        assert!(parse_base_url("ftp://gw.example.com").is_err());
        assert!(parse_base_url("https://gw.example.com/?a=1").is_err());
    }

    #[test]
    fn ipv4_mapped_networks_are_stored_as_ipv4() {
        let parsed = |raw: &str| parse_network(raw).unwrap().to_string();
        assert_eq!(parsed("::ffff:127.0.0.4/128"), "127.0.0.4/32");
        assert_eq!(parsed("::ffff:127.0.0.16/124"), "127.0.0.16/28");
        assert_eq!(parsed("::ffff:0:0/96"), "0.0.0.0/0");
        assert_eq!(parsed("2001:db8::/32"), "2001:db8::/32");
        assert_eq!(parsed("10.1.2.3/8"), "10.0.0.0/8");
    }

    #[test]
    fn origins_are_plain_scheme_host_and_port() {
        assert_eq!(
            parse_origin("https://crm.example.com").unwrap(),
            "https://crm.example.com"
        );
        assert_eq!(
            parse_origin("http://10.0.0.5:8080").unwrap(),
            "http://10.0.0.5:8080"
        );
        assert!(parse_origin("http://[2001:db8::1]").is_ok());
        for bad in [
            "http://x\"",
            "https://crm.example.com/app",
            "https://a.example/?q",
        ] {
            assert!(parse_origin(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn joining_never_doubles_or_drops_the_slash() {
        let base = parse_base_url("https://gw.example.com/cid/").unwrap();
        assert_eq!(
            join_url(&base, "/pop/x"),
            "https://gw.example.com/cid/pop/x"
        );
        let base = parse_base_url("https://gw.example.com").unwrap();
        assert_eq!(join_url(&base, "api"), "https://gw.example.com/api");
    }

    #[test]
    fn secrets_do_not_debug_print() {
        let s = Secret::from("postgres://u:hunter2@db/x".to_owned());
        assert!(!format!("{s:?}").contains("hunter2"));
    }
}
