//! CRM sources (issue 34) against a local fake CRM: a number only the CRM knows is
//! answered from it within the deadline and from the mirror after; a hanging or failing
//! CRM never keeps the lookup past its deadline nor costs a 5xx.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use cidgate::config::webhooks::AllowRule;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::helpers::{TestApp, eventually, spawn_app_with};

/// A fake CRM on 127.0.0.1: every request gets `status`, `extra` headers and `body`
/// after `delay`; answers how many requests came and the targets asked.
struct FakeCrm {
    url: String,
    requests: Arc<AtomicUsize>,
    targets: Arc<std::sync::Mutex<Vec<String>>>,
}

async fn fake_crm(status: u16, extra: &'static str, body: String, delay: Duration) -> FakeCrm {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let requests = Arc::new(AtomicUsize::new(0));
    let targets = Arc::new(std::sync::Mutex::new(Vec::new()));
    let (count, seen) = (requests.clone(), targets.clone());
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let (count, seen, body) = (count.clone(), seen.clone(), body.clone());
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                count.fetch_add(1, Ordering::SeqCst);
                let text = String::from_utf8_lossy(&head).into_owned();
                seen.lock().unwrap().push(text);
                tokio::time::sleep(delay).await;
                let answer = format!(
                    "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\n{extra}content-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(answer.as_bytes()).await;
            });
        }
    });
    FakeCrm {
        url,
        requests,
        targets,
    }
}

async fn app_allowing_loopback() -> TestApp {
    spawn_app_with(|s| {
        s.webhooks.client.webhook_allow_networks =
            vec![AllowRule::parse("127.0.0.0/8@acme").unwrap()];
    })
    .await
}

async fn add_source(app: &TestApp, admin: &str, body: &Value) -> reqwest::Response {
    app.http
        .post(format!("{}/api/v1/sources", app.address))
        .bearer_auth(admin)
        .json(body)
        .send()
        .await
        .unwrap()
}

async fn get(app: &TestApp, path: &str, admin: Option<&str>) -> reqwest::Response {
    let request = app.http.get(format!("{}{path}", app.address));
    match admin {
        Some(token) => request.bearer_auth(token),
        None => request,
    }
    .send()
    .await
    .unwrap()
}

#[tokio::test]
async fn a_number_only_the_crm_knows_is_answered_from_it_then_from_the_mirror() {
    let app = app_allowing_loopback().await;
    let acme = app.create_tenant("acme", "RO").await;
    let admin = app.token("acme", "admin").await;
    let crm = fake_crm(
        200,
        "",
        json!({"data": [{"id": 4711, "name": "Ana Pop", "queue": "SIP/ana"}]}).to_string(),
        Duration::from_millis(20),
    )
    .await;
    let added = add_source(
        &app,
        &admin,
        &json!({
            "name": "crm", "kind": "http-json", "timeout_ms": 200,
            "params": {
                "url": format!("{}/find?phone={{{{Number}}}}&n={{{{NationalNumber}}}}", crm.url),
                "bearer": "s3cret-token",
                "field.id": "data.0.id", "field.name": "data.0.name",
                "field.direct_line": "data.0.queue"
            }
        }),
    )
    .await;
    assert_eq!(added.status(), 201);
    let shown: Value = added.json().await.unwrap();
    assert_eq!(shown["params"]["bearer"], "********", "{shown}");
    assert!(!shown.to_string().contains("s3cret-token"));

    let started = Instant::now();
    let first = app.lookup_json(&acme.lookup_token, "0721 234 567").await;
    assert!(started.elapsed() < Duration::from_millis(600));
    assert_eq!(first["id"], 4711, "{first}");
    assert_eq!(first["name"], "Ana Pop");
    assert_eq!(first["direct_line"], "SIP/ana");
    assert_eq!(crm.requests.load(Ordering::SeqCst), 1);
    let asked = crm.targets.lock().unwrap()[0].clone();
    assert!(
        asked.contains("phone=%2B40721234567") && asked.contains("n=0721234567"),
        "{asked}"
    );
    assert!(
        asked
            .to_lowercase()
            .contains("authorization: bearer s3cret-token")
    );
    assert_eq!(app.contacts_with_number("acme", "+40721234567").await, 1);

    let second = app.lookup_json(&acme.lookup_token, "+40721234567").await;
    assert_eq!(second["id"], 4711, "{second}");
    assert_eq!(
        crm.requests.load(Ordering::SeqCst),
        1,
        "no second request to the CRM"
    );
}

#[tokio::test]
async fn a_hanging_or_failing_crm_never_keeps_the_lookup_past_its_deadline() {
    let app = app_allowing_loopback().await;
    let acme = app.create_tenant("acme", "RO").await;
    let admin = app.token("acme", "admin").await;
    let hanging = fake_crm(200, "", "{}".into(), Duration::from_secs(20)).await;
    let refusing = fake_crm(
        401,
        "",
        json!({"success": false, "error": "unauthorized access", "errorCode": 401}).to_string(),
        Duration::ZERO,
    )
    .await;
    let limited = fake_crm(
        429,
        "retry-after: 2\r\n",
        json!({"code": "rate_limited"}).to_string(),
        Duration::ZERO,
    )
    .await;
    for (name, crm) in [
        ("refuse", &refusing),
        ("limit", &limited),
        ("hang", &hanging),
    ] {
        let kind = if name == "refuse" {
            "pipedrive"
        } else {
            "freshdesk"
        };
        let params = if kind == "pipedrive" {
            json!({"domain": "acme", "token": "pd-token", "base_url": crm.url})
        } else {
            json!({"domain": "acme", "user": "fd-key", "base_url": crm.url})
        };
        let added = add_source(
            &app,
            &admin,
            &json!({"name": name, "kind": kind, "timeout_ms": 5000, "params": params}),
        )
        .await;
        assert_eq!(added.status(), 201, "{}", added.text().await.unwrap());
    }
    for number in ["0721000001", "0721000002"] {
        let started = Instant::now();
        let response = app.lookup(&acme.lookup_token, number).await;
        assert_eq!(response.status(), 200);
        let answer: Value = response.json().await.unwrap();
        assert!(
            started.elapsed() < Duration::from_millis(600),
            "answered after {:?}",
            started.elapsed()
        );
        assert_eq!(answer["id"], Value::Null, "{answer}");
    }
    // Every CRM was asked (the hanging one last); the failures show in /readyz's detail,
    // and the instance stays ready.
    eventually(
        Duration::from_secs(5),
        "the hanging CRM is asked",
        || async { hanging.requests.load(Ordering::SeqCst) >= 1 },
    )
    .await;
    assert_eq!(refusing.requests.load(Ordering::SeqCst), 2);
    assert_eq!(
        limited.requests.load(Ordering::SeqCst),
        1,
        "skipped for its Retry-After"
    );
    let ready = get(&app, "/readyz", None).await;
    assert_eq!(ready.status(), 200);
    let ready: Value = ready.json().await.unwrap();
    let state = |name: &str| {
        ready["sources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == name)
            .cloned()
            .unwrap_or_default()
    };
    assert_eq!(state("limit")["state"], "degraded", "{ready}");
    assert_eq!(state("refuse")["errors"], 2, "{ready}");
    let metrics = get(&app, "/metrics", None).await.text().await.unwrap();
    assert!(metrics.contains("cidgate_source_degraded{"), "{metrics}");

    // A bad kind or parameter is a 422 naming it; the admin API never shows a token.
    let bad = add_source(&app, &admin, &json!({"name": "x", "kind": "nope"})).await;
    assert_eq!(bad.status(), 422);
    assert!(bad.text().await.unwrap().contains("kind"));
    let listed: Value = get(&app, "/api/v1/sources", Some(&admin))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed["sources"].as_array().unwrap().len(), 3);
    assert!(!listed.to_string().contains("pd-token"), "{listed}");
}

#[tokio::test]
async fn source_test_shows_the_request_with_secrets_masked_and_the_contact() {
    let app = app_allowing_loopback().await;
    app.create_tenant("acme", "RO").await;
    let admin = app.token("acme", "admin").await;
    let crm = fake_crm(
        200,
        "",
        json!({"success": true, "data": {"items": [{"result_score": 1.2, "item": {"id": 42, "name": "Ion", "phones": ["+40721234568"]}}]}}).to_string(),
        Duration::ZERO,
    )
    .await;
    let added = add_source(
        &app,
        &admin,
        &json!({"name": "pd", "kind": "pipedrive",
                "params": {"domain": "acme", "token": "pd-secret", "base_url": crm.url}}),
    )
    .await;
    assert_eq!(added.status(), 201);
    let report: Value = app
        .http
        .post(format!("{}/api/v1/sources/pd/test", app.address))
        .bearer_auth(&admin)
        .json(&json!({"number": "0721234568"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(report["found"], true, "{report}");
    assert_eq!(report["contact"]["id"], "42");
    assert_eq!(report["contact"]["name"], "Ion");
    let request = report["requests"][0].as_str().unwrap();
    assert!(
        request.contains("/api/v1/persons/search?term=%2B40721234568"),
        "{request}"
    );
    assert!(!request.contains("pd-secret") && request.contains("********"));
    assert_eq!(
        app.contacts_with_number("acme", "+40721234568").await,
        0,
        "a test writes nothing"
    );
}

#[tokio::test]
async fn a_background_source_answers_unknown_now_and_the_contact_next_time_asked_once() {
    let app = app_allowing_loopback().await;
    let acme = app.create_tenant("acme", "RO").await;
    let admin = app.token("acme", "admin").await;
    let crm = fake_crm(
        200,
        "",
        json!([{"id": 9, "name": "Maria"}]).to_string(),
        Duration::from_millis(100),
    )
    .await;
    let added = add_source(
        &app,
        &admin,
        &json!({"name": "fd", "kind": "freshdesk", "mode": "background",
                "params": {"domain": "acme", "user": "fd-key", "base_url": crm.url}}),
    )
    .await;
    assert_eq!(added.status(), 201);
    // Concurrent first lookups: all answered at once (unknown), the CRM asked once.
    let lookups = (0..4).map(|_| app.lookup_json(&acme.lookup_token, "0721 555 000"));
    for answer in futures_util::future::join_all(lookups).await {
        assert_eq!(answer["id"], Value::Null, "{answer}");
    }
    eventually(
        Duration::from_secs(5),
        "the found contact is answered",
        || async { app.lookup_json(&acme.lookup_token, "0721555000").await["name"] == "Maria" },
    )
    .await;
    assert_eq!(crm.requests.load(Ordering::SeqCst), 1);
    let asked = crm.targets.lock().unwrap()[0].clone();
    assert!(
        asked.starts_with("GET /api/v2/contacts?phone=%2B40721555000 "),
        "{asked}"
    );
    assert!(
        asked.to_lowercase().contains("authorization: basic"),
        "{asked}"
    );
}
