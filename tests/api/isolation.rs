//! Every admin and agent operation, tried with another tenant's token: none reaches,
//! changes or reveals what belongs to the first tenant.

use cidgate::config::webhooks::RetrySchedule;
use serde_json::{Value, json};

use crate::helpers::{PROPAGATION, TestApp, eventually, spawn_app_with};

struct Tokens {
    admin: String,
    sync: String,
    pbx: String,
}

async fn tokens(app: &TestApp, slug: &str) -> Tokens {
    let created = app.create_tenant(slug, "RO").await;
    let tokens = Tokens {
        admin: app.token(slug, "admin").await,
        sync: created.sync_token,
        pbx: app.token(slug, "lookup,events").await,
    };
    app.wait_for_directory().await;
    tokens
}

async fn call(
    app: &TestApp,
    method: &str,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = app
        .http
        .request(
            method.parse().unwrap(),
            format!("{}/api/v1{path}", app.address),
        )
        .bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn another_tenants_tokens_reach_none_of_a_tenants_profiles_deliveries_agents_or_sessions() {
    let app = spawn_app_with(|s| {
        s.webhooks.client.webhook_allow_networks = vec!["127.0.0.0/8".parse().unwrap()];
        // One attempt: the delivery below fails at once (nothing listens on port 9).
        s.webhooks.webhook_retry_schedule = RetrySchedule::parse("0s").unwrap();
    })
    .await;
    let acme = tokens(&app, "acme").await;
    let other = tokens(&app, "other").await;

    // Acme's profile, a failed delivery of it, an agent and a session.
    let profile = json!({"name": "crm", "url": "http://127.0.0.1:9/hook"});
    let (status, created) = call(&app, "POST", "/profiles", &acme.admin, Some(profile)).await;
    assert_eq!(status, 201, "{created}");
    let ended = json!([
        {"call_id": "c-1", "event": "started", "direction": "inbound", "caller": "0721234567"},
        {"call_id": "c-1", "event": "hangup"},
    ]);
    let (status, _) = call(&app, "POST", "/events", &acme.pbx, Some(ended)).await;
    assert_eq!(status, 200);
    eventually(PROPAGATION, "acme's delivery fails", || async {
        let (_, listed) = call(&app, "GET", "/deliveries?failed=true", &acme.admin, None).await;
        listed["deliveries"]
            .as_array()
            .is_some_and(|d| d.len() == 1)
    })
    .await;
    let (_, listed) = call(&app, "GET", "/deliveries", &acme.admin, None).await;
    let delivery = listed["deliveries"][0]["id"].as_str().unwrap().to_owned();
    let (status, _) = call(
        &app,
        "PUT",
        "/agents/200",
        &acme.sync,
        Some(json!({"name": "Agent1"})),
    )
    .await;
    assert_eq!(status, 201);
    let (status, session) = call(&app, "POST", "/agents/200/sessions", &acme.sync, None).await;
    assert_eq!(status, 201, "{session}");
    let session = session["session"].as_str().unwrap().to_owned();

    // Each operation with the other tenant's token of the scope it takes.
    let refused: &[(&str, String, &String, Option<Value>)] = &[
        ("GET", "/profiles/crm".into(), &other.admin, None),
        (
            "PATCH",
            "/profiles/crm".into(),
            &other.admin,
            Some(json!({"method": "GET"})),
        ),
        ("POST", "/profiles/crm/disable".into(), &other.admin, None),
        ("POST", "/profiles/crm/enable".into(), &other.admin, None),
        (
            "POST",
            "/profiles/crm/rotate-secret".into(),
            &other.admin,
            None,
        ),
        (
            "POST",
            "/profiles/crm/test".into(),
            &other.admin,
            Some(json!({"dry_run": true})),
        ),
        (
            "POST",
            "/profiles/crm/run".into(),
            &other.admin,
            Some(json!({"call": "c-1"})),
        ),
        ("DELETE", "/profiles/crm".into(), &other.admin, None),
        ("GET", format!("/deliveries/{delivery}"), &other.admin, None),
        (
            "POST",
            format!("/deliveries/{delivery}/replay"),
            &other.admin,
            None,
        ),
        ("GET", "/agents/200".into(), &other.sync, None),
        ("POST", "/agents/200/sessions".into(), &other.sync, None),
        ("DELETE", "/agents/200".into(), &other.sync, None),
    ];
    for (method, path, token, body) in refused {
        let (status, answer) = call(&app, method, path, token, body.clone()).await;
        assert_eq!(status, 404, "{method} {path}: {answer}");
        assert!(
            !answer.to_string().contains("whsec_"),
            "{method} {path}: {answer}"
        );
    }
    // Lists and bulk acts are the other tenant's own: empty, none of acme's.
    let (status, ended) = call(&app, "DELETE", "/agents/200/sessions", &other.sync, None).await;
    assert_eq!((status, ended), (200, json!({"ended": 0})));
    let (_, profiles) = call(&app, "GET", "/profiles", &other.admin, None).await;
    assert_eq!(profiles, json!({"profiles": []}));
    let (_, deliveries) = call(&app, "GET", "/deliveries", &other.admin, None).await;
    assert_eq!(deliveries, json!({"deliveries": []}));
    let (status, replayed) = call(&app, "POST", "/deliveries/replay", &other.admin, None).await;
    assert_eq!((status, replayed), (202, json!({"replayed": []})));
    let (_, agents) = call(&app, "GET", "/agents", &other.sync, None).await;
    assert_eq!(agents["agents"], json!([]), "{agents}");
    // The other tenant's own agent 200 is its own: acme's keeps its name.
    let (status, _) = call(
        &app,
        "PUT",
        "/agents/200",
        &other.sync,
        Some(json!({"name": "Mallory"})),
    )
    .await;
    assert_eq!(status, 201);

    // Acme's things are all as they were.
    let (status, shown) = call(&app, "GET", "/profiles/crm", &acme.admin, None).await;
    assert_eq!(status, 200);
    assert_eq!(shown["enabled"], true, "{shown}");
    assert_eq!(shown["method"], "POST", "{shown}");
    let (_, failed) = call(&app, "GET", "/deliveries?failed=true", &acme.admin, None).await;
    assert_eq!(
        failed["deliveries"].as_array().unwrap().len(),
        1,
        "{failed}"
    );
    let (_, agent) = call(&app, "GET", "/agents/200", &acme.sync, None).await;
    assert_eq!(agent["name"], "Agent1", "{agent}");
    let state = app
        .http
        .get(format!("{}/api/v1/click2call/1", app.address))
        .query(&[("session", session.as_str())])
        .send()
        .await
        .unwrap();
    assert_ne!(state.status(), 401, "acme's session still holds");
}
