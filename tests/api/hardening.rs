//! Issue 21: notifications that are not the gateway's, and the demo's removed numbers.

use serde_json::json;

use crate::helpers::{PROPAGATION, TestApp, UNKNOWN_ANSWER, eventually, spawn_app};

async fn metrics(app: &TestApp, gateway: &str) -> String {
    let url = format!("{gateway}/metrics");
    app.http
        .get(url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// The value of one sample (`name{labels} value`) in Prometheus text, 0 when absent.
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| {
            line.strip_prefix(series)?
                .strip_prefix(' ')?
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or(0.0)
}

async fn tenant_id(app: &TestApp, slug: &str) -> i64 {
    let client = app.pool.get().await.unwrap();
    let row = client
        .query_one("SELECT id FROM tenants WHERE slug = $1", &[&slug])
        .await
        .unwrap();
    row.get(0)
}

#[tokio::test]
async fn a_notification_that_is_not_the_gateways_is_counted_and_never_indexed() {
    let app = spawn_app().await;
    app.create_tenant("acme", "RO").await;
    let acme = tenant_id(&app, "acme").await;
    let client = app.pool.get().await.unwrap();
    let notify = async |channel: &str, payload: String| {
        client
            .execute("SELECT pg_notify($1, $2)", &[&channel, &payload])
            .await
            .unwrap();
    };
    let before = metrics(&app, &app.address).await;
    let configs = "cidgate_notifications_total{channel=\"cidgate_config\"}";
    let reloads = sample(&before, configs);

    notify(
        "cidgate_contacts",
        format!("{acme} | +40722999999 <script>"),
    )
    .await;
    notify(
        "cidgate_contacts",
        format!("{acme} | +40722999998 | +40722999997"),
    )
    .await;
    notify("cidgate_contacts", format!("-{acme} | +40722999996")).await;
    notify("cidgate_config", "reload, please".to_owned()).await;
    // A genuine one after them: once it is handled, so are they (one connection, in order).
    notify("cidgate_config", String::new()).await;
    eventually(PROPAGATION, "the notifications are handled", || async {
        sample(&metrics(&app, &app.address).await, configs) >= reloads + 2.0
    })
    .await;
    let text = metrics(&app, &app.address).await;
    assert_eq!(
        sample(&text, "cidgate_notifications_ignored_total"),
        4.0,
        "{text}"
    );
    assert_eq!(sample(&text, "cidgate_known_numbers"), 0.0, "{text}");
}

#[tokio::test]
async fn the_demo_notifies_the_numbers_it_removes() {
    let app = spawn_app().await;
    let demo = app.cli(&["demo", "--listen", "127.0.0.1:9"]);
    assert!(demo.status.success(), "{demo:?}");
    let token = |scope: &str| {
        let created = app.cli(&["token", "create", "--tenant", "demo", "--scope", scope]);
        assert!(created.status.success(), "{created:?}");
        let stdout = String::from_utf8(created.stdout).unwrap();
        stdout.lines().last().unwrap().trim().to_owned()
    };
    let (sync, lookup) = (token("sync"), token("lookup"));
    let extra = json!({"name": "Not A Demo Contact", "phones": ["0733000111"]});
    assert_eq!(app.put_contact(&sync, "extra", &extra).await.status(), 201);
    eventually(PROPAGATION, "the extra contact is answered", || async {
        app.lookup_json(&lookup, "0733000111").await["name"] == "Not A Demo Contact"
    })
    .await;

    // The demo starts its tenant over: the extra contact goes, and its cached answer
    // with it.
    let again = app.cli(&["demo", "--listen", "127.0.0.1:9"]);
    assert!(again.status.success(), "{again:?}");
    eventually(PROPAGATION, "the removed number is unknown", || async {
        let response = app.lookup(&lookup, "0733000111").await;
        response.text().await.unwrap() == UNKNOWN_ANSWER
    })
    .await;
}
