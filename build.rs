//! Build-time facts baked into the binary.
//!
//! - The migrations in sql/ are embedded at compile time (refinery::embed_migrations!):
//!   rebuild when one is added or changed, not only when Rust code changes.
//! - `cidgate --version` names the git commit it was built from. A build outside a git
//!   checkout (a source tarball, a container build without .git) says "unknown commit";
//!   `CIDGATE_GIT_COMMIT` supplies the commit there. Only src/main.rs reads the value, so a
//!   new commit re-runs this script and relinks the binary; the library's incremental build
//!   finds nothing changed.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=sql");
    println!("cargo:rerun-if-env-changed=CIDGATE_GIT_COMMIT");
    let commit = std::env::var("CIDGATE_GIT_COMMIT")
        .ok()
        .filter(|c| !c.trim().is_empty())
        .or_else(git_commit);
    let described = match commit {
        Some(commit) => format!("commit {}", commit.trim()),
        None => "unknown commit".to_owned(),
    };
    println!("cargo:rustc-env=CIDGATE_BUILD_COMMIT={described}");
}

/// HEAD's abbreviated hash, watching the files that change when HEAD moves.
fn git_commit() -> Option<String> {
    let commit = git(&["rev-parse", "--short=12", "HEAD"])?;
    // A branch checkout moves by its ref (loose, or in packed-refs after `git gc`); a
    // detached HEAD by the HEAD file itself. Only existing files are watched: a missing one
    // would make cargo re-run this script on every build.
    let mut watched = vec!["HEAD".to_owned(), "packed-refs".to_owned()];
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
        watched.push(branch);
    }
    for name in watched {
        if let Some(path) = git(&["rev-parse", "--path-format=absolute", "--git-path", &name])
            .map(PathBuf::from)
            .filter(|path| path.exists())
        {
            println!("cargo:rerun-if-changed={}", path.display());
        }
    }
    Some(commit)
}

fn git(args: &[&str]) -> Option<String> {
    let output = Command::new("git")
        .args(args)
        .current_dir(std::env::var_os("CARGO_MANIFEST_DIR")?)
        .output()
        .ok()?;
    let text = String::from_utf8(output.stdout).ok()?.trim().to_owned();
    (output.status.success() && !text.is_empty()).then_some(text)
}
