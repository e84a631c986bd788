//! Issue 21: a batch body cannot exhaust memory — caps checked while it is parsed, a
//! memory budget per parse, and a bounded number of parses at once.

use reqwest::header::CONTENT_TYPE;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::hardening::{metrics, sample};
use crate::helpers::{PROPAGATION, TestApp, eventually, spawn_app, spawn_app_with};

const BATCH: &str = "/api/v1/contacts/batch";

async fn post_raw(app: &TestApp, token: &str, path: &str, body: Vec<u8>) -> reqwest::Response {
    app.http
        .post(format!("{}{path}", app.address))
        .bearer_auth(token)
        .header(CONTENT_TYPE, "application/json")
        .body(body)
        .send()
        .await
        .unwrap()
}

/// `n` copies of `item`, comma-separated.
fn repeated(item: &str, n: usize) -> String {
    vec![item; n].join(",")
}

/// A body that stops being JSON after `valid`: answered 400 if read to the end.
fn then_broken(valid: String) -> Vec<u8> {
    (valid + ",}}} not json").into_bytes()
}

#[tokio::test]
async fn a_batch_is_refused_at_its_ten_thousand_and_first_item_without_reading_further() {
    let app = spawn_app().await;
    let acme = app.create_tenant("acme", "RO").await;
    let upsert = r#"{"op":"upsert","id":"1","name":"Ana","phones":["0721234567"]}"#;
    // Ten thousand tiny values and one more, then bytes that are not JSON: only a
    // parser that stops at the cap answers without seeing them.
    let body = then_broken(format!("[{upsert},{}", repeated("0", 10_000)));

    let response = post_raw(&app, &acme.sync_token, BATCH, body).await;

    assert_eq!(response.status(), 422);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body["message"],
        "a batch holds at most 10000 operations; this one has more (read no further)",
        "{body}"
    );
    assert_eq!(app.get_contact(&acme.sync_token, "1").await.status(), 404);
}

#[tokio::test]
async fn a_phone_list_is_refused_at_its_hundred_and_twenty_ninth_entry() {
    let app = spawn_app().await;
    let acme = app.create_tenant("acme", "RO").await;
    let good = r#"{"op":"upsert","id":"1","name":"Ana","phones":["0721234567"]}"#;
    let body = then_broken(format!(
        r#"[{good},{{"op":"upsert","id":"2","name":"Bob","phones":[{}"#,
        repeated(r#""0721234568""#, 129)
    ));

    let response = post_raw(&app, &acme.sync_token, BATCH, body).await;

    assert_eq!(response.status(), 422);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body["fields"],
        serde_json::json!([{"index": 1, "field": "phones", "message": "must hold at most 128 entries"}]),
        "{body}"
    );
    assert_eq!(app.get_contact(&acme.sync_token, "1").await.status(), 404);

    // The same in one contact.
    let one = then_broken(format!(
        r#"{{"name":"Bob","phones":[{}"#,
        repeated(r#""0721234568""#, 129)
    ));
    let response = app
        .http
        .put(format!("{}/api/v1/contacts/2", app.address))
        .bearer_auth(&acme.sync_token)
        .header(CONTENT_TYPE, "application/json")
        .body(one)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 422);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["message"], "phones must hold at most 128 entries");
}

/// One item holding millions of zeros: 2 bytes of body each, 32 bytes once parsed.
fn tiny_values(bytes: usize) -> Vec<u8> {
    format!("[[{}]]", repeated("0", bytes / 2)).into_bytes()
}

#[tokio::test]
async fn a_body_of_tiny_values_is_refused_before_it_outgrows_its_memory_budget() {
    let app = spawn_app().await;
    let acme = app.create_tenant("acme", "RO").await;

    let response = post_raw(&app, &acme.sync_token, BATCH, tiny_values(24 << 20)).await;

    assert_eq!(response.status(), 413);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body["message"],
        "the body holds too many small values: parsed they would take more than 64 MiB; send fewer items at once",
        "{body}"
    );
}

/// This process's resident memory now and at its peak (kB), from /proc.
fn memory_kb() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let field = |name: &str| -> u64 {
        let line = status.lines().find(|l| l.starts_with(name)).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    };
    (field("VmRSS:"), field("VmHWM:"))
}

#[tokio::test]
async fn a_burst_of_large_batch_bodies_stays_within_a_stated_memory_bound() {
    let app = spawn_app().await;
    let acme = app.create_tenant("acme", "RO").await;
    // Built before the baseline: the test's own copies are not the gateway's.
    let bodies: Vec<Vec<u8>> = (0..6).map(|_| tiny_values(30 << 20)).collect();
    let (baseline, _) = memory_kb();

    let sent = bodies
        .into_iter()
        .map(|body| post_raw(&app, &acme.sync_token, BATCH, body));
    let responses = futures_util::future::join_all(sent).await;

    for response in responses {
        assert!([413, 503].contains(&response.status().as_u16()));
    }
    let (_, peak) = memory_kb();
    // Two parses at once (the default), each holding its 30 MiB body and at most
    // 76 MiB of values; parsed whole, each would take over 500 MiB.
    let grown_mib = peak.saturating_sub(baseline) / 1024;
    assert!(grown_mib < 400, "grew by {grown_mib} MiB");
}

/// Sends the head of a batch and `first` bytes of its body, and holds the rest back.
async fn hold_a_batch(app: &TestApp, token: &str, body: &[u8], first: usize) -> TcpStream {
    let host = app.address.trim_start_matches("http://");
    let mut stream = TcpStream::connect(host).await.unwrap();
    let head = format!(
        "POST {BATCH} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&body[..first]).await.unwrap();
    stream
}

#[tokio::test]
async fn batches_past_the_parse_limit_are_answered_503_with_retry_after() {
    let app = spawn_app_with(|s| {
        s.batch_parses = 1;
        s.batch_parse_wait_ms = 0;
    })
    .await;
    let acme = app.create_tenant("acme", "RO").await;
    let body = br#"[{"op":"upsert","id":"1","name":"Ana","phones":["0721234567"]}]"#;
    let mut held = hold_a_batch(&app, &acme.sync_token, body, 10).await;
    let address = app.address.clone();
    eventually(PROPAGATION, "the held batch takes its turn", || async {
        sample(&metrics(&app, &address).await, "cidgate_batch_parses") == 1.0
    })
    .await;

    let refused = post_raw(&app, &acme.sync_token, BATCH, body.to_vec()).await;

    assert_eq!(refused.status(), 503);
    assert_eq!(refused.headers()["retry-after"], "1");
    let refused: Value = refused.json().await.unwrap();
    assert_eq!(refused["error"], "busy", "{refused}");

    // The held batch finishes, and its turn is free again.
    held.write_all(&body[10..]).await.unwrap();
    let mut answer = String::new();
    held.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let again = post_raw(&app, &acme.sync_token, BATCH, body.to_vec()).await;
    assert_eq!(again.status(), 200);
}
