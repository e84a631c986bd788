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
/// before any thread starts: it changes the process environment. A malformed line is
/// reported by its number only: it may hold a password.
pub fn load(path: &std::path::Path) -> anyhow::Result<()> {
    match dotenvy::from_path(path) {
        Err(dotenvy::Error::LineParse(complaint, _)) => {
            let text = std::fs::read_to_string(path).unwrap_or_default();
            let line = line_of(&text, &complaint)
                .map_or_else(|| "a line".to_owned(), |n| format!("line {n}"));
            anyhow::bail!(
                "the configuration file {} is malformed at {line} (not shown: it may hold a \
                 secret); expected NAME=value, a value with spaces in quotes",
                path.display()
            )
        }
        loaded => {
            loaded.with_context(|| format!("reading the configuration file {}", path.display()))
        }
    }
}

/// The number of the line dotenvy complained about. Its complaint holds a whole logical
/// line, or the value at the end of one, so the first line that is no comment and ends
/// with the complaint's first line is where it starts.
fn line_of(text: &str, complaint: &str) -> Option<usize> {
    let first = complaint.lines().next()?.trim_end();
    if first.is_empty() {
        return None;
    }
    text.trim_start_matches('\u{feff}')
        .lines()
        .position(|l| !l.trim_start().starts_with('#') && l.trim_end().ends_with(first))
        .map(|i| i + 1)
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

    #[test]
    fn a_complaint_is_found_by_its_line_or_the_value_ending_it() {
        let text = "# A=x y\nA=1\nB=x y\nC='open\nstill\n";
        assert_eq!(line_of(text, "x y"), Some(3), "a value, not the comment");
        assert_eq!(line_of(text, "C='open\nstill\n"), Some(4), "unterminated");
        assert_eq!(line_of(text, ""), None);
    }
}
