//! The optional configuration file: `CIDGATE_CONFIG=FILE` or `--config FILE`, in the
//! environment-file format of systemd's `EnvironmentFile` and `docker --env-file`
//! (`NAME=value` lines, `#` comments), so a setting has one name everywhere.
//! Precedence: flags, then the environment, then the file.

use std::ffi::OsString;
use std::path::PathBuf;

use anyhow::Context;

pub const CONFIG_VARIABLE: &str = "CIDGATE_CONFIG";

/// The file named by `--config` among `args`, else by `CIDGATE_CONFIG`.
pub fn requested(args: &[OsString]) -> Option<PathBuf> {
    let mut args = args.iter().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--" {
            break;
        }
        if arg == "--config" {
            return args.next().map(PathBuf::from);
        }
        if let Some(path) = arg.to_str().and_then(|a| a.strip_prefix("--config=")) {
            return Some(PathBuf::from(path));
        }
    }
    std::env::var_os(CONFIG_VARIABLE).map(PathBuf::from)
}

/// Sets the file's variables that the environment does not set already. Must run
/// before any thread starts: it changes the process environment.
pub fn load(path: &std::path::Path) -> anyhow::Result<()> {
    dotenvy::from_path(path)
        .with_context(|| format!("reading the configuration file {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<OsString> {
        list.iter().map(OsString::from).collect()
    }

    #[test]
    fn the_flag_is_found_in_either_spelling_before_any_separator() {
        let path = |list: &[&str]| requested(&args(list));
        assert_eq!(
            path(&["cidgate", "--config", "/etc/cidgate.env", "serve"]),
            Some(PathBuf::from("/etc/cidgate.env"))
        );
        assert_eq!(
            path(&["cidgate", "serve", "--config=/etc/c.env"]),
            Some(PathBuf::from("/etc/c.env"))
        );
        assert_eq!(path(&["cidgate", "import", "--", "--config", "x"]), None);
    }
}
