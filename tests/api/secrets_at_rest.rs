//! Secrets at rest (issue 28 item 8): with `CIDGATE_SECRETS_KEY`, a database dump shows no
//! webhook signing secret, secret header or dialer credential, the gateway still signs and
//! sends with them, and rows stored in plaintext before the key are sealed by
//! `cidgate secrets reseal`.

use std::time::Duration;

use cidgate::config::webhooks::Roles;
use serde_json::Value;

use crate::fairness::{SingleThreaded, finished_call, ok, tenant};
use crate::helpers::{TestApp, eventually, spawn_app_with, text_file};

const KEY: &str = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=";
const NEW_KEY: &str = "AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI=";

fn cidgate(app: &TestApp, args: &[&str], key: Option<&str>) -> std::process::Output {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_cidgate"));
    command
        .args(args)
        .env("DATABASE_URL", &app.db.url)
        .env("CIDGATE_WEBHOOK_ALLOW_NETWORKS", "127.0.0.0/8")
        .env_remove("CIDGATE_SECRETS_KEY")
        .env_remove("RUST_LOG");
    if let Some(key) = key {
        command.env("CIDGATE_SECRETS_KEY", key);
    }
    command.output().expect("running cidgate")
}

/// Everything stored that may hold a secret, as one text (what a dump would show).
async fn dump(app: &TestApp) -> String {
    let client = app.pool.get().await.unwrap();
    let profiles: Vec<String> = client
        .query(
            "SELECT secret || ' ' || coalesce(previous_secret, '') || ' ' || definition::text
             FROM webhook_profiles",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let dialers: Vec<String> = client
        .query("SELECT coalesce(secret::text, '') FROM dialers", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    format!("{profiles:?} {dialers:?}")
}

#[tokio::test]
async fn with_a_key_no_secret_is_stored_in_clear_and_deliveries_still_sign_and_send() {
    // The test's own gateway holds no key: it only serves tenants here.
    let app = spawn_app_with(|s| s.webhooks.roles = Roles::parse("http").unwrap()).await;
    let pbx = tenant(&app, "acme").await;
    let receiver = SingleThreaded::default();
    let url = receiver.start(Duration::ZERO).await;

    // A profile saved before any key: plaintext, as rows from earlier versions are.
    let old = ok(cidgate(
        &app,
        &[
            "profile",
            "create",
            "--tenant",
            "acme",
            "old",
            "--url",
            &format!("{url}/old"),
        ],
        None,
    ));
    let old_secret = old.lines().last().unwrap().to_owned();
    assert!(
        dump(&app).await.contains(&old_secret[6..]),
        "stored in clear without a key"
    );

    let created = ok(cidgate(
        &app,
        &[
            "profile",
            "create",
            "--tenant",
            "acme",
            "crm",
            "--url",
            &format!("{url}/crm"),
            "--json-body",
            r#"{"n":"<Caller Number>"}"#,
            "--secret-header",
            "Authorization: Bearer s3cret-crm-key",
        ],
        Some(KEY),
    ));
    let secret = created.lines().last().unwrap().to_owned();
    let rotated = ok(cidgate(
        &app,
        &[
            "profile",
            "update",
            "--tenant",
            "acme",
            "crm",
            "--rotate-secret",
        ],
        Some(KEY),
    ));
    let new_secret = rotated.lines().last().unwrap().to_owned();
    let password = text_file("ami-pa55word\n");
    ok(cidgate(
        &app,
        &[
            "dialer",
            "set",
            "--tenant",
            "acme",
            "asterisk-ami",
            "--host",
            "127.0.0.1",
            "--port",
            "5038",
            "--username",
            "cidgate",
            "--secret-file",
            password.path().to_str().unwrap(),
            "--channel",
            "PJSIP/{{AgentExtension}}",
            "--context",
            "from-internal",
        ],
        Some(KEY),
    ));
    let stored = dump(&app).await;
    for secret in [
        &secret[6..],
        &new_secret[6..],
        "s3cret-crm-key",
        "ami-pa55word",
    ] {
        assert!(
            !stored.contains(secret),
            "{secret} is stored in clear: {stored}"
        );
    }
    assert!(stored.contains("cgenc:v1:"), "{stored}");

    // Resealing seals the plaintext row too; the key opens all of them.
    let resealed = ok(cidgate(&app, &["secrets", "reseal"], Some(KEY)));
    assert!(resealed.contains("resealed 1 rows"), "{resealed}");
    assert!(!dump(&app).await.contains(&old_secret[6..]));
    let shown = ok(cidgate(
        &app,
        &["profile", "show", "--tenant", "acme", "crm"],
        Some(KEY),
    ));
    assert!(shown.contains("Authorization: ********"), "{shown}");
    let without = cidgate(&app, &["profile", "show", "--tenant", "acme", "crm"], None);
    assert!(
        !without.status.success()
            && String::from_utf8_lossy(&without.stderr).contains("CIDGATE_SECRETS_KEY"),
        "a sealed secret without the key says which setting is missing"
    );

    // A gateway with the key delivers with the opened secrets.
    let (mut server, base) = app
        .serve_process(|command| {
            command
                .env("CIDGATE_SECRETS_KEY", KEY)
                .env("CIDGATE_WEBHOOK_ALLOW_NETWORKS", "127.0.0.0/8")
                .env_remove("RUST_LOG");
        })
        .await;
    let response = app
        .http
        .post(format!("{base}/api/v1/events"))
        .bearer_auth(&pbx)
        .json(&finished_call("s-1"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    eventually(Duration::from_secs(20), "both profiles deliver", || async {
        receiver.requests().len() == 2
    })
    .await;
    server.kill().unwrap();
    server.wait().unwrap();
    let requests = receiver.requests();
    let crm = requests.iter().find(|r| r.line.contains("/crm")).unwrap();
    let mut headers = http::HeaderMap::new();
    for (name, value) in &crm.headers {
        headers.append(
            http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            http::HeaderValue::from_str(value).unwrap(),
        );
    }
    assert_eq!(headers["authorization"], "Bearer s3cret-crm-key");
    for secret in [&secret, &new_secret] {
        standardwebhooks::Webhook::new(secret)
            .unwrap()
            .verify(&crm.body, &headers)
            .expect("signed with each secret while they overlap");
    }
    let body: Value = serde_json::from_slice(&crm.body).unwrap();
    assert!(body["n"].is_string());

    // Rotating the key: the new one first, reseal, and the old one can go.
    let both = format!("{NEW_KEY},{KEY}");
    let resealed = ok(cidgate(&app, &["secrets", "reseal"], Some(&both)));
    assert!(resealed.contains("resealed 3 rows"), "{resealed}");
    ok(cidgate(
        &app,
        &["profile", "show", "--tenant", "acme", "crm"],
        Some(NEW_KEY),
    ));
}
