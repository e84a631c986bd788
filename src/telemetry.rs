//! Logging: a tracing subscriber (pretty or JSON) and query-string redaction.

use std::io::IsTerminal;

use clap::ValueEnum;
use tracing_subscriber::EnvFilter;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Pretty,
    Json,
}

/// Installs the global subscriber at `default_level` (`RUST_LOG` overrides it).
/// Logs go to stderr so that command output (a new token) stays alone on stdout.
pub fn init(format: LogFormat, default_level: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        // The migration library and the driver narrate routine work at info.
        EnvFilter::new(format!(
            "{default_level},refinery_core=warn,tokio_postgres=warn"
        ))
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    // A second init (tests start several apps in one process) keeps the first.
    let _already_set = match format {
        LogFormat::Pretty => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// Query parameters whose values never reach a log line.
const SECRET_PARAMS: &[&str] = &["token", "key", "secret", "password", "api_key", "apikey"];

/// Query parameters holding a caller's number: masked to their last three characters.
const PERSONAL_PARAMS: &[&str] = &["telephone"];

/// The query string with secret values replaced by `REDACTED` and callers' numbers masked.
pub fn redact_query(query: &str) -> String {
    query
        .split('&')
        .map(|pair| {
            let Some((name, value)) = pair.split_once('=') else {
                return pair.to_owned();
            };
            let lower = name.to_ascii_lowercase();
            if SECRET_PARAMS.contains(&lower.as_str()) {
                format!("{name}=REDACTED")
            } else if PERSONAL_PARAMS.contains(&lower.as_str()) {
                let keep = value.len().saturating_sub(3);
                let masked: String = value
                    .char_indices()
                    .map(|(i, c)| if i < keep { '*' } else { c })
                    .collect();
                format!("{name}={masked}")
            } else {
                pair.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_redacted_and_the_rest_kept() {
        assert_eq!(
            redact_query("telephone=0700123&token=cgl_abc&dnid=021"),
            "telephone=****123&token=REDACTED&dnid=021"
        );
        assert_eq!(redact_query("TOKEN=x"), "TOKEN=REDACTED");
        assert_eq!(redact_query(""), "");
    }
}
