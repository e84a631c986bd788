//! The configuration file (`--config FILE` / `CIDGATE_CONFIG`) as an operator uses it:
//! the file fills in what the environment does not say; flags and environment win.

use std::process::{Command, Output};

use crate::helpers::{spawn_app, text_file};

fn cidgate(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_cidgate"));
    command
        .args(args)
        .env_remove("DATABASE_URL")
        .env_remove("CIDGATE_CONFIG")
        .env_remove("RUST_LOG");
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().expect("running cidgate")
}

#[tokio::test]
async fn the_file_supplies_settings_and_the_environment_overrides_them() {
    let app = spawn_app().await;
    let created = app.cli(&["tenant", "create", "acme", "--region", "RO"]);
    assert!(created.status.success());
    let file = text_file(&format!(
        "# cidgate settings\nDATABASE_URL={}\nCIDGATE_LOG_FORMAT=json\n",
        app.db.url
    ));
    let path = file.path().to_str().unwrap();

    for (args, env) in [
        (vec!["--config", path, "tenant", "list"], vec![]),
        (vec!["tenant", "list"], vec![("CIDGATE_CONFIG", path)]),
    ] {
        let listed = cidgate(&args, &env);
        let stdout = String::from_utf8_lossy(&listed.stdout);
        assert!(listed.status.success(), "{listed:?}");
        assert!(stdout.contains("acme"), "{stdout}");
    }

    // The environment wins over the file: a wrong URL there is the one used.
    let overridden = cidgate(
        &["--config", path, "tenant", "list"],
        &[("DATABASE_URL", "not a url")],
    );
    assert!(!overridden.status.success());
    assert!(
        String::from_utf8_lossy(&overridden.stderr).contains("DATABASE_URL"),
        "{overridden:?}"
    );
}

#[test]
fn a_missing_or_unreadable_file_is_one_clear_error() {
    let missing = cidgate(
        &["--config", "/nonexistent/cidgate.env", "tenant", "list"],
        &[],
    );
    assert_eq!(missing.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(
        stderr.contains("configuration file /nonexistent/cidgate.env"),
        "{stderr}"
    );
    let broken = text_file("DATABASE_URL='unterminated\n");
    let failed = cidgate(
        &["--config", broken.path().to_str().unwrap(), "migrate"],
        &[],
    );
    assert_eq!(failed.status.code(), Some(1));
}

#[test]
fn a_malformed_line_is_reported_by_number_and_never_echoed() {
    let secret = "s3cr3t-Pa55";
    for (file, line) in [
        // An unquoted value with a space: dotenvy quotes the value back in its error.
        (
            format!(
                "# settings\nCIDGATE_LOG_FORMAT=json\nDATABASE_URL=postgres://u:{secret} x@db/c\n"
            ),
            3,
        ),
        // A quote that never closes: the rest of the file would be echoed.
        (
            format!(
                "CIDGATE_LOG_FORMAT=json\nDATABASE_PASSWORD='{secret}\nCIDGATE_LISTEN=0.0.0.0:80\n"
            ),
            2,
        ),
    ] {
        let broken = text_file(&file);
        let failed = cidgate(
            &["--config", broken.path().to_str().unwrap(), "migrate"],
            &[],
        );
        assert_eq!(failed.status.code(), Some(1));
        let stderr = String::from_utf8_lossy(&failed.stderr);
        assert!(stderr.contains(&format!("line {line}")), "{stderr}");
        assert!(!stderr.contains(secret), "{stderr}");
    }
}
