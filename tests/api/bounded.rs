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

/// A gateway process's peak resident memory (kB), from /proc.
fn peak_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// A gateway process stopped when the test ends, passed or not.
struct Stopped(std::process::Child);

impl Drop for Stopped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Bodies of about `bytes` whose values, parsed whole, would take many times that: wide
/// and deep arrays, arrays of tiny arrays, objects of one key, nested objects.
fn nested_bodies(bytes: usize) -> Vec<Vec<u8>> {
    let deep = format!("[{}0{}]", "[".repeat(100), "]".repeat(100));
    // Inside one item: the batch takes at most 10,000 items, each refused past it.
    let wide =
        |item: &str| format!("[[{}]]", repeated(item, bytes / (item.len() + 1))).into_bytes();
    vec![
        tiny_values(bytes),
        wide("[0]"),
        wide("[]"),
        wide(r#"{"a":0}"#),
        wide(r#"{"a":{"b":[0]}}"#),
        wide(&deep),
        wide("[[[0,0]]]"),
        wide("{}"),
    ]
}

#[tokio::test]
async fn nested_bodies_are_refused_from_their_parse_and_the_gateways_memory_stays_bounded() {
    let app = spawn_app().await;
    let acme = app.create_tenant("acme", "RO").await;
    // The gateway as its own process, so its peak is its own; every batch waits for
    // its turn (two at once) rather than being answered 503 unparsed.
    let (server, base) = app
        .serve_process(|command| {
            command
                .env("CIDGATE_BATCH_PARSES", "2")
                .env("CIDGATE_BATCH_PARSE_WAIT_MS", "60000")
                .env("CIDGATE_BODY_TIMEOUT_MS", "600000");
        })
        .await;
    let server = Stopped(server);
    let baseline = peak_kb(server.0.id());

    let sent = nested_bodies(30 << 20).into_iter().map(|body| {
        app.http
            .post(format!("{base}{BATCH}"))
            .bearer_auth(&acme.sync_token)
            .header(CONTENT_TYPE, "application/json")
            .body(body)
            .send()
    });
    let responses = futures_util::future::join_all(sent).await;

    for (i, response) in responses.into_iter().enumerate() {
        let response = response.unwrap();
        assert_eq!(response.status(), 413, "body {i}");
        let body: Value = response.json().await.unwrap();
        let message = body["message"].as_str().unwrap_or_default();
        assert!(
            message.starts_with("the body holds too many small values"),
            "body {i} refused by its parse: {body}"
        );
    }
    let grown_mib = peak_kb(server.0.id()).saturating_sub(baseline) / 1024;
    // Two parses at once, each holding its 30 MiB body and at most 76 MiB of values
    // (the budget counts the values' peak, their copies while growing included). The
    // allocator keeps freed memory per thread, so the peak is above 2 × 106 MiB: measured
    // 460 MiB here, 673 MiB before values were counted at their peak and objects by node.
    eprintln!("the gateway's peak resident memory grew by {grown_mib} MiB");
    assert!(grown_mib < 560, "grew by {grown_mib} MiB");
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

const ONE_CONTACT: &[u8] = br#"[{"op":"upsert","id":"1","name":"Ana","phones":["0721234567"]}]"#;

/// A gateway (batches do not wait for a turn) and a tenant's sync token, with one batch
/// holding a parse's turn (the gauge says so) until `finish` sends the rest.
async fn a_held_turn(
    configure: impl FnOnce(&mut cidgate::config::ServeSettings),
) -> (TestApp, String, TcpStream) {
    let app = spawn_app_with(|s| {
        s.batch_parse_wait_ms = 0;
        configure(s);
    })
    .await;
    let token = app.create_tenant("acme", "RO").await.sync_token;
    let held = hold_a_batch(&app, &token, ONE_CONTACT, 10).await;
    let address = app.address.clone();
    eventually(PROPAGATION, "the held batch takes its turn", || async {
        sample(&metrics(&app, &address).await, "cidgate_batch_parses") == 1.0
    })
    .await;
    (app, token, held)
}

/// Sends the rest of a held batch: it is answered 200.
async fn finish(mut held: TcpStream, body: &[u8]) {
    held.write_all(&body[10..]).await.unwrap();
    let mut answer = String::new();
    held.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

#[tokio::test]
async fn batches_past_the_parse_limit_are_answered_503_with_retry_after() {
    let (app, token, held) = a_held_turn(|s| s.batch_parses = 1).await;
    let body = ONE_CONTACT;

    let refused = post_raw(&app, &token, BATCH, body.to_vec()).await;

    assert_eq!(refused.status(), 503);
    assert_eq!(refused.headers()["retry-after"], "1");
    let refused: Value = refused.json().await.unwrap();
    assert_eq!(refused["error"], "busy", "{refused}");

    // The held batch finishes, and its turn is free again.
    finish(held, body).await;
    let again = post_raw(&app, &token, BATCH, body.to_vec()).await;
    assert_eq!(again.status(), 200);
}

/// The number index and the lookup cache at 64 MiB each, with the rest of the process
/// (96 MiB): 224 MiB reserved, so a 400 MiB budget leaves room for one 112 MiB parse.
fn small_stores(s: &mut cidgate::config::ServeSettings, budget_mib: u64) {
    s.known_numbers_max_bytes = 64 << 20;
    s.cache_max_bytes = 64 << 20;
    s.memory_budget_mib = Some(budget_mib);
}

#[tokio::test]
async fn the_parse_gate_is_sized_to_the_memory_budget_and_a_budget_without_room_is_refused() {
    let (app, token, held) = a_held_turn(|s| {
        small_stores(s, 400);
        s.batch_parses = 4;
    })
    .await;
    // Four were asked for; the budget has room for one.
    let refused = post_raw(&app, &token, BATCH, ONE_CONTACT.to_vec()).await;
    assert_eq!(refused.status(), 503);
    finish(held, ONE_CONTACT).await;

    // Not even one parse fits: the gateway does not start, and says which settings.
    let listen = "127.0.0.1:0".parse().unwrap();
    let mut settings = cidgate::config::ServeSettings::new(app.db.url.clone(), listen);
    small_stores(&mut settings, 300);
    let Err(refused) = cidgate::startup::Application::build(&settings).await else {
        panic!("a gateway started without room for one batch parse");
    };
    let refused = format!("{refused:#}");
    assert!(refused.contains("CIDGATE_MEMORY_BUDGET_MIB"), "{refused}");
    assert!(
        refused.contains("not enough for one batch parse"),
        "{refused}"
    );
}

fn contact(id: &str, phones: &[&str]) -> Value {
    serde_json::json!({"op": "upsert", "id": id, "name": format!("C{id}"), "phones": phones})
}

#[tokio::test]
async fn a_write_past_the_tenants_cap_on_stored_numbers_is_refused_whole() {
    let app = spawn_app().await;
    let acme = app.create_tenant("acme", "RO").await;
    let set = app.cli(&["tenant", "set", "acme", "--max-numbers", "3"]);
    assert!(set.status.success(), "{set:?}");

    let over = Value::Array(vec![
        contact("1", &["0721000001", "0721000002"]),
        contact("2", &["0721000003", "0721000004"]),
    ]);
    let response = app.batch(&acme.sync_token, &over).await;

    assert_eq!(response.status(), 422);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body["message"],
        "the tenant may store at most 3 phone numbers (tenant set --max-numbers); this write would make it 4",
        "{body}"
    );
    assert_eq!(body["fields"][0]["field"], "phones");
    assert_eq!(app.get_contact(&acme.sync_token, "1").await.status(), 404);

    // Up to the cap, and a change that keeps the count, pass; one more number does not.
    let at_cap = Value::Array(vec![
        contact("1", &["0721000001", "0721000002"]),
        contact("2", &["0721000003"]),
    ]);
    assert_eq!(app.batch(&acme.sync_token, &at_cap).await.status(), 200);
    let moved = Value::Array(vec![contact("2", &["0721000009"])]);
    assert_eq!(app.batch(&acme.sync_token, &moved).await.status(), 200);
    let one_more = serde_json::json!({"name": "Ana", "phones": ["0721000005"]});
    let response = app.put_contact(&acme.sync_token, "3", &one_more).await;
    assert_eq!(response.status(), 422);
    assert_eq!(app.get_contact(&acme.sync_token, "3").await.status(), 404);

    // Deleting frees room.
    let delete = serde_json::json!([{"op": "delete", "id": "2"}]);
    assert_eq!(app.batch(&acme.sync_token, &delete).await.status(), 200);
    let response = app.put_contact(&acme.sync_token, "3", &one_more).await;
    assert_eq!(response.status(), 201);
}

#[tokio::test]
async fn the_cap_on_stored_numbers_is_five_million_unless_set_and_checked_when_set() {
    let app = spawn_app().await;
    app.create_tenant("acme", "RO").await;
    let client = app.pool.get().await.unwrap();
    let row = client
        .query_one("SELECT max_numbers FROM tenants WHERE slug = 'acme'", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), 5_000_000);

    let refused = app.cli(&["tenant", "set", "acme", "--max-numbers=-1"]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--max-numbers"));
}

#[tokio::test]
async fn a_tenant_past_the_number_index_budget_is_looked_up_in_the_database() {
    let app = spawn_app_with(|s| s.known_numbers_max_bytes = 8 * 1024).await;
    let acme = app.create_tenant("acme", "RO").await;
    let bolt = app.create_tenant("bolt", "RO").await;
    eventually(PROPAGATION, "the number index is loaded", || async {
        app.get_raw("/readyz").await.status() == 200
    })
    .await;
    let ana = serde_json::json!({"name": "Ana", "phones": ["0721234567"]});
    assert_eq!(
        app.put_contact(&bolt.sync_token, "1", &ana).await.status(),
        201
    );
    let many: Vec<Value> = (0..2_000)
        .map(|i| contact(&i.to_string(), &[&format!("0731{i:06}")]))
        .collect();

    let response = app.batch(&acme.sync_token, &Value::Array(many)).await;

    assert_eq!(response.status(), 200);
    let text = metrics(&app, &app.address).await;
    assert_eq!(
        sample(&text, "cidgate_known_numbers_dropped_tenants"),
        1.0,
        "{text}"
    );
    assert!(
        sample(&text, "cidgate_known_numbers_bytes") <= 8.0 * 1024.0,
        "{text}"
    );
    // Dropped from the index, acme's callers are still found (in the database), and
    // its unknown callers still unknown; bolt's index is exact as before.
    let found = app.lookup_json(&acme.lookup_token, "0731001999").await;
    assert_eq!(found["name"], "C1999");
    let unknown = app.lookup_json(&acme.lookup_token, "0739999999").await;
    assert_eq!(unknown["name"], Value::Null);
    let found = app.lookup_json(&bolt.lookup_token, "0721234567").await;
    assert_eq!(found["name"], "Ana");
}
