//! What the Debian package (deploy/deb/) takes from the binary: `--version` names the
//! commit it was built from; the hidden `completions` and `man` commands generate what the
//! package ships, and stay out of the help.

use std::process::{Command, Output};

fn cidgate(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cidgate"))
        .args(args)
        .env_remove("CIDGATE_CONFIG")
        .output()
        .expect("running cidgate")
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

#[test]
fn version_names_the_version_and_the_commit_it_was_built_from() {
    let head = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8(o.stdout).unwrap().trim().to_owned());
    let commit = match head {
        Some(head) => format!("commit {head}"),
        None => "unknown commit".to_owned(),
    };
    let expected = format!("cidgate {} ({commit})\n", env!("CARGO_PKG_VERSION"));
    for flag in ["--version", "-V"] {
        let out = cidgate(&[flag]);
        assert!(out.status.success(), "{out:?}");
        assert_eq!(stdout(&out), expected);
    }
}

#[test]
fn the_completion_scripts_and_man_pages_come_from_the_command_line() {
    let bash = cidgate(&["completions", "bash"]);
    assert!(bash.status.success(), "{bash:?}");
    assert!(stdout(&bash).contains("complete -F _cidgate"));
    for shell in ["zsh", "fish"] {
        let script = cidgate(&["completions", shell]);
        assert!(script.status.success(), "{script:?}");
        assert!(stdout(&script).contains("service-user"), "{shell}");
    }

    let page = cidgate(&["man"]);
    assert!(page.status.success(), "{page:?}");
    assert!(stdout(&page).contains(".TH cidgate 1"), "{}", stdout(&page));

    let dir = tempfile::tempdir().unwrap();
    let pages = cidgate(&["man", "--out-dir", dir.path().to_str().unwrap()]);
    assert!(pages.status.success(), "{pages:?}");
    for name in ["cidgate.1", "cidgate-token-create.1", "cidgate-serve.1"] {
        assert!(dir.path().join(name).exists(), "{name}");
    }
}

#[test]
fn the_generators_stay_hidden_and_refuse_what_they_cannot_do() {
    let help = stdout(&cidgate(&["--help"]));
    assert!(help.contains("tenant"), "{help}");
    assert!(!help.contains("completions"), "{help}");
    assert!(!help.contains("\n  man "), "{help}");

    let unknown = cidgate(&["completions", "tcsh"]);
    assert_eq!(unknown.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&unknown.stderr);
    assert!(
        stderr.contains("tcsh") && stderr.contains("bash"),
        "{stderr}"
    );

    let unwritable = cidgate(&["man", "--out-dir", "/nonexistent/man"]);
    assert_eq!(unwritable.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&unwritable.stderr);
    assert!(stderr.contains("/nonexistent/man"), "{stderr}");
}
