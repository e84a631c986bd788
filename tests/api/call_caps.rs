//! Click-to-call's tenant-wide limits (issue 28, item 2): abroad only by country, a cap
//! on the tenant's requests a minute and in flight, and on the agents a sync token adds.

use serde_json::{Value, json};

use crate::click2call::{callbacks, dialing_loopback, json_of, tenant};
use crate::fake_pbx;
use crate::helpers::{spawn_app, spawn_app_with};

#[tokio::test]
async fn international_numbers_are_refused_by_default_and_opened_per_country() {
    let app = spawn_app_with(dialing_loopback).await;
    let t = tenant(&app, "acme").await;
    let (stub, mut requests) = fake_pbx::dial_api(200, "{}").await;
    app.http_dialer("acme", &stub);
    let first = app.signed_in(&t, "200", "Agent1").await;
    for number in ["+49 30 12345678", "+43 1 5123456", "+1 212 555 0123"] {
        let refused = app.click2call(&first, number, None).await;
        assert_eq!(refused.status(), 403, "{number}");
        assert_eq!(json_of(refused).await["rule"], "international", "{number}");
    }
    assert!(
        requests.try_recv().is_err(),
        "nothing abroad reached the PBX"
    );

    let printed = app.cli_ok(&[
        "dialer",
        "policy",
        "--tenant",
        "acme",
        "--allow-country",
        "de,AT",
    ]);
    let policy: Value = serde_json::from_str(&printed).unwrap();
    assert_eq!(policy["allowed_countries"], json!(["DE", "AT"]));
    assert_eq!(policy["international"], false);
    let second = app.signed_in(&t, "201", "Agent2").await;
    let third = app.signed_in(&t, "202", "Agent3").await;
    assert_eq!(
        app.click2call(&first, "+49 30 12345678", None)
            .await
            .status(),
        200
    );
    assert_eq!(
        app.click2call(&second, "+43 1 5123456", None)
            .await
            .status(),
        200
    );
    let elsewhere = app.click2call(&third, "+1 212 555 0123", None).await;
    assert_eq!(elsewhere.status(), 403);
    assert!(
        json_of(elsewhere).await["message"]
            .as_str()
            .unwrap()
            .contains("--allow-country")
    );
    // An unknown country is refused by the CLI, naming the flag.
    let bad = app.cli(&[
        "dialer",
        "policy",
        "--tenant",
        "acme",
        "--allow-country",
        "XX",
    ]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--allow-country"));

    // `--international on` opens every country.
    app.cli_ok(&[
        "dialer",
        "policy",
        "--tenant",
        "acme",
        "--international",
        "on",
    ]);
    assert_eq!(
        app.click2call(&third, "+1 212 555 0123", None)
            .await
            .status(),
        200
    );
    let dialled: Vec<String> = std::iter::from_fn(|| requests.try_recv().ok())
        .filter_map(|r| r.query("number"))
        .collect();
    assert_eq!(dialled, ["+493012345678", "+4315123456", "+12125550123"]);
}

#[tokio::test]
async fn a_tenant_has_a_cap_on_click_to_calls_in_flight_and_a_minute() {
    let app = spawn_app_with(dialing_loopback).await;
    let t = tenant(&app, "acme").await;
    let (stub, mut requests) = fake_pbx::dial_api(200, "{}").await;
    app.http_dialer("acme", &stub);
    app.cli_ok(&[
        "dialer",
        "policy",
        "--tenant",
        "acme",
        "--tenant-in-flight",
        "2",
        "--tenant-per-minute",
        "3",
    ]);
    let mut sessions = Vec::new();
    for (extension, name) in [("200", "A"), ("201", "B"), ("202", "C")] {
        sessions.push(app.signed_in(&t, extension, name).await);
    }
    for session in &sessions[..2] {
        assert_eq!(
            app.click2call(session, "0721234567", None).await.status(),
            200
        );
    }
    // A third agent, with nothing in flight of its own, waits for the tenant's turn.
    let busy = app.click2call(&sessions[2], "0721234567", None).await;
    assert_eq!(busy.status(), 429);
    assert!(busy.headers().contains_key("retry-after"));
    assert!(
        json_of(busy).await["message"]
            .as_str()
            .unwrap()
            .contains("--tenant-in-flight")
    );
    for callback in callbacks(1) {
        app.focalscope(&t.pbx, &callback).await;
    }
    assert_eq!(
        app.click2call(&sessions[2], "0721234567", None)
            .await
            .status(),
        200
    );
    // Three this minute: the fourth is refused although one more could be in flight.
    for callback in callbacks(2) {
        app.focalscope(&t.pbx, &callback).await;
    }
    let over = app.click2call(&sessions[0], "0721234567", None).await;
    assert_eq!(over.status(), 429);
    assert_eq!(over.headers()["retry-after"], "60");
    assert!(
        json_of(over).await["message"]
            .as_str()
            .unwrap()
            .contains("--tenant-per-minute")
    );
    let asked = std::iter::from_fn(|| requests.try_recv().ok()).count();
    assert_eq!(asked, 3, "refused requests never reach the PBX");
}

#[tokio::test]
async fn agents_added_with_a_sync_token_are_capped_per_tenant() {
    let app = spawn_app().await;
    let t = tenant(&app, "acme").await;
    let other = tenant(&app, "globex").await;
    app.cli_ok(&["tenant", "set", "acme", "--max-agents", "2"]);
    for extension in ["200", "201"] {
        let added = app
            .put_agent(&t.sync, extension, &json!({"name": "A"}))
            .await;
        assert_eq!(added.status(), 201);
    }
    let over = app.put_agent(&t.sync, "202", &json!({"name": "C"})).await;
    assert_eq!(over.status(), 422);
    let body = json_of(over).await;
    assert_eq!(body["fields"][0]["field"], "extension", "{body}");
    assert!(
        body["fields"][0]["message"]
            .as_str()
            .unwrap()
            .contains("at most 2 agents")
    );
    // Replacing an agent is no addition; another tenant has its own cap.
    let replaced = app
        .put_agent(&t.sync, "200", &json!({"name": "Renamed"}))
        .await;
    assert_eq!(replaced.status(), 200);
    let elsewhere = app
        .put_agent(&other.sync, "202", &json!({"name": "C"}))
        .await;
    assert_eq!(elsewhere.status(), 201);
    // The operator's command line holds to the same cap and says how to raise it.
    let refused = app.cli(&["agent", "add", "--tenant", "acme", "203", "--name", "D"]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--max-agents"));
    app.cli_ok(&["tenant", "set", "acme", "--max-agents", "3"]);
    let added = app.put_agent(&t.sync, "202", &json!({"name": "C"})).await;
    assert_eq!(added.status(), 201);
}
