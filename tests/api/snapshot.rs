//! Full snapshot sync: `cidgate import --replace` and `PUT /api/v1/contacts/snapshot`
//! replace a tenant's mirror in one transaction, on every instance.

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::{
    PROPAGATION, TestApp, TestTenant, UNKNOWN_ANSWER, eventually, spawn_app, spawn_app_with,
    spawn_instance, text_file,
};

/// Acme's mirror before the snapshot: one contact the snapshot changes, one it leaves
/// out, one it names with an older `updated_at`; and beta's contact on a number acme's
/// snapshot leaves out too.
async fn seed(app: &TestApp) -> (TestTenant, TestTenant) {
    let acme = app.create_tenant("acme", "RO").await;
    let beta = app.create_tenant("beta", "RO").await;
    let written = app
        .batch(
            &acme.sync_token,
            &json!([
                {"op": "upsert", "id": "1", "name": "Old One", "phones": ["0721000001"]},
                {"op": "upsert", "id": "2", "name": "Two", "phones": ["0721000002"]},
                {"op": "upsert", "id": "3", "name": "Three", "phones": ["0721000003"],
                 "updated_at": "2026-06-01T00:00:00Z"},
            ]),
        )
        .await;
    assert_eq!(written.status(), 200);
    let written = app
        .batch(
            &beta.sync_token,
            &json!([{"op": "upsert", "id": "2", "name": "Beta Two", "phones": ["0721000002"]}]),
        )
        .await;
    assert_eq!(written.status(), 200);
    (acme, beta)
}

/// Contact 1 changed (a new number), 3 older than stored, 4 new; 2 left out.
const SNAPSHOT: &str = "id,name,phones,updated_at\n\
                        1,New One,0721000011,\n\
                        3,Three Stale,0721000033,2026-01-01T00:00:00Z\n\
                        4,Four,0721000004,\n";

/// The mirror after [`SNAPSHOT`], as lookups at `address` answer it.
async fn replaced_at(app: &TestApp, address: &str, acme: &TestTenant, beta: &TestTenant) -> bool {
    let name = |token: String, number: &'static str| async move {
        let answer: Value = app
            .lookup_at(address, &token, number)
            .await
            .json()
            .await
            .unwrap();
        answer["name"].clone()
    };
    name(acme.lookup_token.clone(), "0721000002").await == Value::Null
        && name(acme.lookup_token.clone(), "0721000001").await == Value::Null
        && name(acme.lookup_token.clone(), "0721000011").await == "New One"
        && name(acme.lookup_token.clone(), "0721000003").await == "Three"
        && name(acme.lookup_token.clone(), "0721000004").await == "Four"
        && name(beta.lookup_token.clone(), "0721000002").await == "Beta Two"
}

/// The instance that took the snapshot forgot the old answers when it committed; the
/// other hears of it.
async fn replaced_on_both(app: &TestApp, other: &str, acme: &TestTenant, beta: &TestTenant) {
    assert!(replaced_at(app, &app.address, acme, beta).await);
    eventually(
        PROPAGATION,
        "the snapshot reaches the other instance",
        || async { replaced_at(app, other, acme, beta).await },
    )
    .await;
}

/// Two gateways on one seeded database, each holding the old mirror's answers in its
/// cache; answers the first, the other's address and the tenants.
async fn two_warm_instances() -> (TestApp, String, TestTenant, TestTenant) {
    let app = spawn_app().await;
    let other = spawn_instance(&app.db.url, |_| {}).await;
    let (acme, beta) = seed(&app).await;
    warm(&app, &app.address, &acme).await;
    warm(&app, &other, &acme).await;
    (app, other, acme, beta)
}

/// Lookups at `address` that put the old mirror's answers in its cache (once it has
/// heard of the seed: until then an instance's number index does not know the numbers).
async fn warm(app: &TestApp, address: &str, acme: &TestTenant) {
    for (number, name) in [("0721000001", "Old One"), ("0721000002", "Two")] {
        eventually(PROPAGATION, "the seed reaches the instance", || async {
            let answer: Value = app
                .lookup_at(address, &acme.lookup_token, number)
                .await
                .json()
                .await
                .unwrap();
            answer["name"] == name
        })
        .await;
    }
}

/// `cidgate import --tenant acme --replace` of `file`, with `flags`.
fn replace_with_file(
    app: &TestApp,
    file: &tempfile::NamedTempFile,
    flags: &[&str],
) -> std::process::Output {
    let path = file.path().to_str().unwrap();
    let mut args = vec!["import", "--tenant", "acme", "--replace"];
    args.extend_from_slice(flags);
    args.push(path);
    app.cli(&args)
}

fn stdout(output: &std::process::Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8(output.stderr.clone()).unwrap()
}

async fn contacts_of(app: &TestApp) -> Vec<(String, String)> {
    let client = app.pool.get().await.unwrap();
    client
        .query(
            "SELECT t.slug, c.crm_id || ' ' || c.name FROM contacts c
             JOIN tenants t ON t.id = c.tenant_id ORDER BY 1, 2",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

fn stored(rows: &[(&str, &str)]) -> Vec<(String, String)> {
    rows.iter()
        .map(|(t, c)| ((*t).to_owned(), (*c).to_owned()))
        .collect()
}

#[tokio::test]
async fn an_import_with_replace_deletes_what_the_snapshot_leaves_out_on_every_instance() {
    let (app, other, acme, beta) = two_warm_instances().await;
    let file = text_file(SNAPSHOT);

    let output = replace_with_file(&app, &file, &[]);

    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        stdout(&output).trim(),
        "imported 2 rows (1 created, 1 updated, 1 stale), rejected 0 rows, 1 deleted"
    );
    for address in [&app.address, &other] {
        eventually(PROPAGATION, "the snapshot reaches the instance", || async {
            replaced_at(&app, address, &acme, &beta).await
        })
        .await;
    }
    assert_eq!(app.get_contact(&acme.sync_token, "2").await.status(), 404);
}

#[tokio::test]
async fn a_rejected_row_aborts_the_whole_snapshot_and_every_rejected_line_is_named() {
    let app = spawn_app().await;
    let (_acme, _beta) = seed(&app).await;
    let before = contacts_of(&app).await;
    let file = text_file(
        "id,name,phones,queue_position\n\
         1,New One,0721000011,\n\
         5,,0721000005,\n\
         6,Six,0721000006,\n\
         7,Seven,0721000007,200\n",
    );

    let output = replace_with_file(&app, &file, &[]);

    assert_eq!(output.status.code(), Some(1), "{}", stdout(&output));
    let err = stderr(&output);
    assert!(err.contains("line 3: rejected: name"), "{err}");
    assert!(err.contains("line 5: rejected: queue_position"), "{err}");
    assert!(err.contains("2 rows were rejected"), "{err}");
    assert_eq!(
        contacts_of(&app).await,
        before,
        "nothing written or deleted"
    );
}

#[tokio::test]
async fn an_empty_snapshot_is_refused_unless_allowed() {
    let app = spawn_app().await;
    let (acme, _beta) = seed(&app).await;
    let before = contacts_of(&app).await;
    let file = text_file("id,name,phones\n");

    let refused = replace_with_file(&app, &file, &[]);

    assert_eq!(refused.status.code(), Some(1));
    assert!(
        stderr(&refused).contains("--allow-empty"),
        "{}",
        stderr(&refused)
    );
    assert_eq!(contacts_of(&app).await, before);

    let allowed = replace_with_file(&app, &file, &["--allow-empty"]);

    assert!(allowed.status.success(), "{}", stderr(&allowed));
    assert!(
        stdout(&allowed).ends_with("3 deleted\n"),
        "{}",
        stdout(&allowed)
    );
    assert_eq!(
        contacts_of(&app).await,
        stored(&[("beta", "2 Beta Two")]),
        "another tenant's contacts stay"
    );
    eventually(PROPAGATION, "the deletion reaches the gateway", || async {
        let answer = app.lookup(&acme.lookup_token, "0721000001").await;
        answer.text().await.unwrap() == UNKNOWN_ANSWER
    })
    .await;
}

async fn put_snapshot(app: &TestApp, token: &str, query: &str, body: &str) -> (u16, Value) {
    put_snapshot_as(app, token, query, "text/csv; charset=utf-8", body).await
}

async fn put_snapshot_as(
    app: &TestApp,
    token: &str,
    query: &str,
    content_type: &str,
    body: &str,
) -> (u16, Value) {
    let response = app
        .http
        .put(format!("{}/api/v1/contacts/snapshot{query}", app.address))
        .bearer_auth(token)
        .header("content-type", content_type)
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

#[tokio::test]
async fn a_snapshot_upload_replaces_the_mirror_on_every_instance() {
    let (app, other, acme, beta) = two_warm_instances().await;

    let (status, summary) = put_snapshot(&app, &acme.sync_token, "", SNAPSHOT).await;

    assert_eq!(status, 200, "{summary}");
    assert_eq!(
        summary,
        json!({"created": 1, "updated": 1, "stale": 1, "deleted": 1, "rejected": []})
    );
    replaced_on_both(&app, &other, &acme, &beta).await;
}

#[tokio::test]
async fn a_snapshot_upload_with_a_rejected_row_or_no_rows_writes_nothing() {
    let app = spawn_app().await;
    let (acme, _beta) = seed(&app).await;
    let before = contacts_of(&app).await;

    let token = &acme.sync_token;
    let rows = "id,name,phones\r\n1,New One,0721000011\r\n\r\n5,,0721000005\r\n6,Six,x\r\n";
    let (status, answer) = put_snapshot(&app, token, "", rows).await;
    assert_eq!(status, 422, "{answer}");
    assert_eq!(answer["error"], "invalid_fields");
    let rejected: Vec<(u64, &str)> = answer["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["line"].as_u64().unwrap(), r["field"].as_str().unwrap()))
        .collect();
    assert_eq!(rejected, [(4, "name"), (5, "phones[0]")]);
    assert_eq!(answer["deleted"], 0);

    let csv = "text/csv";
    for (token, query, content_type, body, status) in [
        (&acme.sync_token, "", csv, "id,name,phones\n", 422),
        (&acme.sync_token, "", csv, "id,name\n1,A\n", 400),
        (
            &acme.sync_token,
            "?allow_empty=maybe",
            csv,
            "id,name,phones\n",
            422,
        ),
        (&acme.sync_token, "", "application/json", "[]", 415),
        (&acme.lookup_token, "", csv, "id,name,phones\n", 401),
    ] {
        let (got, answer) = put_snapshot_as(&app, token, query, content_type, body).await;
        assert_eq!(got, status, "{query} {body:?}: {answer}");
        if status == 422 {
            assert_eq!(answer["fields"][0]["field"], "allow_empty");
        }
    }
    assert_eq!(
        contacts_of(&app).await,
        before,
        "nothing written or deleted"
    );

    let empty = "id,name,phones\n";
    let (status, answer) = put_snapshot(&app, token, "?allow_empty=true", empty).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["deleted"], 3);
    assert_eq!(contacts_of(&app).await, stored(&[("beta", "2 Beta Two")]));
}

/// A snapshot sent by hand in chunks over one connection, so the test decides when the
/// body ends (or that it never does).
struct ChunkedUpload {
    stream: tokio::net::TcpStream,
}

impl ChunkedUpload {
    async fn start(app: &TestApp, token: &str) -> Self {
        let address = app.address.trim_start_matches("http://");
        let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
        let head = format!(
            "PUT /api/v1/contacts/snapshot HTTP/1.1\r\nHost: {address}\r\n\
             Authorization: Bearer {token}\r\nContent-Type: text/csv\r\n\
             Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        Self { stream }
    }

    async fn send(&mut self, text: &str) {
        let chunk = format!("{:x}\r\n{text}\r\n", text.len());
        self.stream.write_all(chunk.as_bytes()).await.unwrap();
    }

    /// Ends the body and answers the status and body of the answer.
    async fn finish(mut self) -> (u16, Value) {
        self.stream.write_all(b"0\r\n\r\n").await.unwrap();
        let mut answer = String::new();
        self.stream.read_to_string(&mut answer).await.unwrap();
        let status = answer[9..12].parse().unwrap();
        let body = answer.split_once("\r\n\r\n").unwrap().1;
        (status, serde_json::from_str(body).unwrap_or(Value::Null))
    }
}

/// Rows more than one piece long (the snapshot writes 5,000 at a time), all new;
/// `more` ends each row (empty cells for more columns).
fn many_rows(more: &str) -> String {
    (0..6_000)
        .map(|i| format!("n{i},N {i},0722{i:06}{more}\n"))
        .collect()
}

/// Sessions of the test's database in a transaction that has written and now waits:
/// a snapshot waiting for more of its body.
async fn waiting_writers(app: &TestApp) -> i64 {
    let client = app.pool.get().await.unwrap();
    client
        .query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
             AND state = 'idle in transaction' AND backend_xid IS NOT NULL",
            &[],
        )
        .await
        .unwrap()
        .get(0)
}

/// Waits until the snapshot's transaction has written and waits for more of the body.
async fn snapshot_waits_with_writes(app: &TestApp) {
    eventually(
        PROPAGATION,
        "the snapshot writes its first piece",
        || async { waiting_writers(app).await > 0 },
    )
    .await;
}

#[tokio::test]
async fn lookups_answer_from_the_old_mirror_until_the_snapshot_commits() {
    let app = spawn_app().await;
    let other = spawn_instance(&app.db.url, |_| {}).await;
    let (acme, beta) = seed(&app).await;
    let mut upload = ChunkedUpload::start(&app, &acme.sync_token).await;
    upload.send(SNAPSHOT).await;
    upload.send(&many_rows(",")).await;
    snapshot_waits_with_writes(&app).await;

    // Written but not committed: nothing of it is visible in the database, and every
    // instance answers from the old mirror (and caches those answers).
    assert_eq!(app.contacts_with_number("acme", "+40722000001").await, 0);
    for address in [&app.address, &other] {
        warm(&app, address, &acme).await;
        let new: Value = app
            .lookup_at(address, &acme.lookup_token, "0722000001")
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(new["name"], Value::Null);
    }

    let (status, summary) = upload.finish().await;

    assert_eq!(status, 200, "{summary}");
    assert_eq!(summary["created"], 6_001);
    assert_eq!(summary["deleted"], 1);
    replaced_on_both(&app, &other, &acme, &beta).await;
}

#[tokio::test]
async fn a_snapshot_upload_too_large_or_cut_short_deletes_nothing() {
    let app = spawn_app_with(|s| s.snapshot_max_bytes = 200_000).await;
    let (acme, _beta) = seed(&app).await;
    let before = contacts_of(&app).await;

    // Past the limit, with no Content-Length to refuse it by.
    let mut upload = ChunkedUpload::start(&app, &acme.sync_token).await;
    upload.send("id,name,phones\n1,New One,0721000011\n").await;
    upload.send(&many_rows("")).await;
    upload.send(&many_rows("")).await;
    let (status, answer) = upload.finish().await;
    assert_eq!(status, 413, "{answer}");
    assert_eq!(contacts_of(&app).await, before);

    // The client goes away after the first piece was written: what arrived is not the
    // whole snapshot, and the transaction is rolled back.
    let mut upload = ChunkedUpload::start(&app, &acme.sync_token).await;
    upload.send("id,name,phones\n1,New One,0721000011\n").await;
    upload.send(&many_rows("")).await;
    snapshot_waits_with_writes(&app).await;
    drop(upload);
    eventually(
        PROPAGATION,
        "the cut snapshot's transaction ends",
        || async { waiting_writers(&app).await == 0 },
    )
    .await;
    assert_eq!(contacts_of(&app).await, before, "nothing of the cut upload");
}

#[tokio::test]
async fn a_snapshot_row_identical_to_the_stored_contact_is_counted_but_not_written_again() {
    let app = spawn_app().await;
    let acme = app.create_tenant("acme", "RO").await;
    let seeded = app
        .batch(
            &acme.sync_token,
            &json!([
                {"op": "upsert", "id": "1", "name": "Same", "phones": ["0721000002", "0721000001"],
                 "queue_position": 3, "attributes": {"tier": "gold", "n": 1},
                 "updated_at": "2026-06-01T00:00:00Z"},
                {"op": "upsert", "id": "2", "name": "Renamed later", "phones": ["0721000003"]},
            ]),
        )
        .await;
    assert_eq!(seeded.status(), 200);
    let written_at = || async {
        let client = app.pool.get().await.unwrap();
        let rows = client
            .query("SELECT written_at FROM contacts ORDER BY crm_id", &[])
            .await
            .unwrap();
        rows.iter()
            .map(|r| r.get::<_, chrono::DateTime<chrono::Utc>>(0))
            .collect::<Vec<_>>()
    };
    let before = written_at().await;

    let (status, summary) = put_snapshot(
        &app,
        &acme.sync_token,
        "",
        "id,name,phones,queue_position,updated_at\n\
         1,Same,0721000001;0721000002,3,2026-06-01T00:00:00Z\n\
         2,Renamed,0721000003,,\n",
    )
    .await;

    assert_eq!(status, 200, "{summary}");
    assert_eq!(summary["updated"], 2, "{summary}");
    let after = written_at().await;
    assert_ne!(after[1], before[1], "the changed contact is written");
    // The attributes differ (the CSV has none): written too.
    assert_ne!(after[0], before[0]);

    let (status, _) = put_snapshot(
        &app,
        &acme.sync_token,
        "",
        "id,name,phones,queue_position,updated_at\n\
         1,Same,0721000002;0721000001,3,2026-06-01T00:00:00Z\n\
         2,Renamed,0721000003,,\n",
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        written_at().await,
        after,
        "nothing changed, nothing written"
    );
    assert_eq!(
        app.lookup_json(&acme.lookup_token, "0721000003").await["name"],
        "Renamed"
    );
}
