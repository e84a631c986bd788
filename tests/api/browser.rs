//! A real browser opens a real screen-pop link: headless Chromium (Debian's package,
//! installed by deploy/local/test.sh) takes a screenshot and dumps the rendered page;
//! the caller's name must be on it and the console must show no CSP violation.

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use serde_json::json;

use crate::helpers::spawn_app;

fn chromium() -> String {
    std::env::var("CHROMIUM")
        .ok()
        .or_else(|| {
            ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
                .into_iter()
                .find(|p| Path::new(p).exists())
                .map(str::to_owned)
        })
        .expect("the browser test needs Chromium: run deploy/local/test.sh (it installs it) or set CHROMIUM")
}

async fn run_chromium(profile: &Path, args: &[&str]) -> Output {
    let mut command = tokio::process::Command::new(chromium());
    command
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .kill_on_drop(true);
    tokio::time::timeout(Duration::from_secs(90), command.output())
        .await
        .expect("chromium finished within 90 s")
        .expect("chromium ran")
}

#[tokio::test]
async fn a_real_browser_shows_the_callers_name_without_csp_violations() {
    let app = spawn_app().await;
    let acme = app.create_tenant("acme", "RO").await;
    let body = json!({
        "name": "Ileana Cosânzeana",
        "phones": ["0721234567"],
        "direct_line": "SIP/ileana",
        "crm_url": "https://crm.example.com/contacts/1",
        "attributes": {"tier": "gold"}
    });
    app.put_contact(&acme.sync_token, "1", &body).await;
    let answer = app.lookup_json(&acme.lookup_token, "0721234567").await;
    let link = answer["backend_link"].as_str().unwrap().to_owned();
    let dir = tempfile::tempdir().unwrap();
    let screenshot = dir.path().join("screen-pop.png");

    let shot = run_chromium(
        &dir.path().join("profile-shot"),
        &[
            "--window-size=412,915",
            &format!("--screenshot={}", screenshot.display()),
            &link,
        ],
    )
    .await;
    let dom = run_chromium(&dir.path().join("profile-dom"), &["--dump-dom", &link]).await;

    assert!(
        shot.status.success(),
        "{}",
        String::from_utf8_lossy(&shot.stderr)
    );
    let png = std::fs::read(&screenshot).expect("a screenshot was written");
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 5_000,
        "a real screenshot"
    );
    let rendered = String::from_utf8_lossy(&dom.stdout);
    assert!(
        rendered.contains("<h1><bdi>Ileana Cosânzeana</bdi></h1>"),
        "{rendered}"
    );
    for output in [&shot, &dom] {
        let console = String::from_utf8_lossy(&output.stderr);
        assert!(
            !console.contains("Content Security Policy") && !console.contains("Refused to"),
            "CSP violation in the console: {console}"
        );
    }
    // Keep the picture for a person to look at (target/ is not committed).
    let keep = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screen-pop.png");
    let _ = std::fs::copy(&screenshot, keep);
}
