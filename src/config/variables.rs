//! Which `CIDGATE_*` variables cidgate reads, from the command line's own definition, so
//! that a misspelt one is warned about rather than silently ignored.

use std::collections::BTreeSet;
use std::ffi::OsString;

/// `CIDGATE_*` variables that the command line does not define: the secrets key, and
/// those read by the local scripts and the test suite (`deploy/local/pg.sh`, `deploy/local/test.sh`, the tests'
/// helpers): `serve` runs with them in its environment there, and is not to warn.
const READ_ELSEWHERE: &[&str] = &[
    "CIDGATE_PG_ROOT",
    "CIDGATE_PG_PORT",
    "CIDGATE_TEST_PG_PORT",
    "CIDGATE_TEST_DATABASE_URL",
    "CIDGATE_TEST_DATABASE_CA",
    "CIDGATE_SKIP_PBX_E2E",
    // Read by `store::secrets` when a secret is first sealed or opened, by every command.
    "CIDGATE_SECRETS_KEY",
    "CIDGATE_SECRETS_KEY_FILE",
];

/// Every `CIDGATE_*` variable cidgate reads: those of `command`'s arguments (the command
/// line's definition, with every subcommand) and [`READ_ELSEWHERE`].
pub fn known_variables(command: &clap::Command) -> BTreeSet<String> {
    fn walk(command: &clap::Command, known: &mut BTreeSet<String>) {
        for arg in command.get_arguments() {
            if let Some(name) = arg.get_env().and_then(|n| n.to_str()) {
                known.insert(name.to_owned());
            }
        }
        for sub in command.get_subcommands() {
            walk(sub, known);
        }
    }
    let mut known: BTreeSet<String> = READ_ELSEWHERE.iter().map(|&n| n.to_owned()).collect();
    walk(command, &mut known);
    known.retain(|name| name.starts_with("CIDGATE_"));
    known
}

/// The `CIDGATE_*` names among `variables` that are not `known`.
fn unknown_variables(
    known: &BTreeSet<String>,
    variables: impl IntoIterator<Item = OsString>,
) -> Vec<String> {
    variables
        .into_iter()
        .filter_map(|name| name.into_string().ok())
        .filter(|name| name.starts_with("CIDGATE_") && !known.contains(name))
        .collect()
}

/// Warns about `CIDGATE_*` variables nobody reads: usually a misspelt setting. `command`
/// is the command line's definition, which names the variables it reads.
pub fn warn_unknown_variables(command: &clap::Command) {
    let names = std::env::vars_os().map(|(name, _)| name);
    for name in unknown_variables(&known_variables(command), names) {
        tracing::warn!(
            variable = name,
            "unknown setting ignored; check its spelling"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_known_variables_come_from_every_subcommand_and_the_scripts() {
        let known = known_variables(&<crate::cli::Cli as clap::CommandFactory>::command());
        // The hand-kept list this replaced.
        for name in [
            "CIDGATE_CONFIG",
            "CIDGATE_LISTEN",
            "CIDGATE_PUBLIC_URL",
            "CIDGATE_DB_POOL_SIZE",
            "CIDGATE_DB_TIMEOUT_MS",
            "CIDGATE_WRITE_TIMEOUT_MS",
            "CIDGATE_BODY_TIMEOUT_MS",
            "CIDGATE_DB_START_WAIT_SECS",
            "CIDGATE_LOOKUP_STATEMENTS",
            "CIDGATE_LOG_FORMAT",
            "CIDGATE_WORKERS",
            "CIDGATE_LOOKUP_DEADLINE_MS",
            "CIDGATE_CACHE_MAX_BYTES",
            "CIDGATE_CACHE_TTL_FOUND_SECS",
            "CIDGATE_CACHE_TTL_UNKNOWN_SECS",
            "CIDGATE_CACHE_KEEP_STALE_SECS",
            "CIDGATE_TRUSTED_PROXIES",
            "CIDGATE_FORWARDED_HEADER",
            "CIDGATE_LOOKUP_RATE",
            "CIDGATE_SYNC_RATE",
            "CIDGATE_AUTH_FAILURES_PER_MIN",
            "CIDGATE_CORS_ORIGINS",
            "CIDGATE_LOOKUP_LOG_RETENTION_DAYS",
            "CIDGATE_LOOKUP_LOG_BUFFER",
            "CIDGATE_LOOKUP_LOG_GATHER_MS",
            "CIDGATE_PG_ROOT",
            "CIDGATE_PG_PORT",
            "CIDGATE_TEST_PG_PORT",
            "CIDGATE_TEST_DATABASE_URL",
        ] {
            assert!(known.contains(name), "{name} is no longer known");
        }
        assert!(!known.contains("DATABASE_URL"), "only CIDGATE_ names");
    }

    #[test]
    fn only_unknown_cidgate_variables_are_warned_about() {
        let known = known_variables(&<crate::cli::Cli as clap::CommandFactory>::command());
        let env = [
            "CIDGATE_LISTEN",
            "CIDGATE_LISTN",
            "CIDGATE_TEST_DATABASE_URL",
            "DATABASE_URL",
            "PATH",
            "CIDGATE_NO_SUCH_SETTING",
        ];
        let unknown = unknown_variables(&known, env.map(OsString::from));
        assert_eq!(unknown, ["CIDGATE_LISTN", "CIDGATE_NO_SUCH_SETTING"]);
    }
}
