//! Typed settings for `serve`, read once at start from flags or `CIDGATE_*` variables.
//! A wrong value fails at start with the name of the setting.

use std::fmt;
use std::net::SocketAddr;

use clap::Args;
use url::Url;

/// Every `CIDGATE_*` variable cidgate reads; others are warned about as likely typos.
pub const KNOWN_VARIABLES: &[&str] = &[
    "CIDGATE_LISTEN",
    "CIDGATE_PUBLIC_URL",
    "CIDGATE_DB_POOL_SIZE",
    "CIDGATE_LOG_FORMAT",
    "CIDGATE_WORKERS",
    // Used by the local scripts and the test suite, not by the binary.
    "CIDGATE_PG_ROOT",
    "CIDGATE_PG_PORT",
    "CIDGATE_TEST_PG_PORT",
    "CIDGATE_TEST_DATABASE_URL",
];

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

    /// HTTP worker threads (default: one per core)
    #[arg(long, env = "CIDGATE_WORKERS", value_parser = clap::value_parser!(u16).range(1..=256))]
    pub workers: Option<u16>,
}

impl ServeSettings {
    /// Settings for a server on `listen` against `database_url`, everything else default.
    pub fn new(database_url: String, listen: SocketAddr) -> Self {
        Self {
            database: DatabaseArgs {
                database_url: Secret(database_url),
            },
            listen,
            public_url: None,
            db_pool_size: 16,
            workers: None,
        }
    }
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

/// Warns about `CIDGATE_*` variables nobody reads: usually a misspelt setting.
pub fn warn_unknown_variables() {
    for (name, _) in std::env::vars_os() {
        let Some(name) = name.to_str() else { continue };
        if name.starts_with("CIDGATE_") && !KNOWN_VARIABLES.contains(&name) {
            tracing::warn!(
                variable = name,
                "unknown setting ignored; check its spelling"
            );
        }
    }
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
