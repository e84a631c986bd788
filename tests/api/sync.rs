//! The CRM sync API: single contacts, batches, ordering and every bad input.

use serde_json::{Value, json};

use crate::helpers::{PROPAGATION, UNKNOWN_ANSWER, eventually, spawn_app, spawn_app_with};

#[tokio::test]
async fn put_creates_then_replaces_and_get_reads_it_back() {
    let app = spawn_app().await;
    let acme = app.create_tenant("acme", "RO").await;
    let body = json!({
        "name": "John Doe",
        "phones": ["0700 000 000", "+40 721 234 567"],
        "queue_position": 7,
        "attributes": {"tier": "gold"},
        "updated_at": "2026-11-20T10:00:00Z"
    });

    let created = app.put_contact(&acme.sync_token, "12345", &body).await;
    assert_eq!(created.status(), 201);
    let created: Value = created.json().await.unwrap();
    assert_eq!(created["result"], "created");

    let mut changed = body.clone();
    changed["name"] = json!("John Q. Doe");
    changed["updated_at"] = json!("2026-11-21T10:00:00Z");
    let replaced = app.put_contact(&acme.sync_token, "12345", &changed).await;
    assert_eq!(replaced.status(), 200);
    assert_eq!(replaced.json::<Value>().await.unwrap()["result"], "updated");

    let read = app.get_contact(&acme.sync_token, "12345").await;
    assert_eq!(read.status(), 200);
    let read: Value = read.json().await.unwrap();
    assert_eq!(read["id"], 12345);
    assert_eq!(read["name"], "John Q. Doe");
    assert_eq!(read["phones"], json!(["+40700000000", "+40721234567"]));
    assert_eq!(read["queue_position"], 7);
    assert_eq!(read["attributes"], json!({"tier": "gold"}));
    assert_eq!(read["updated_at"], "2026-11-21T10:00:00Z");
}

#[tokio::test]
async fn an_update_older_than_the_stored_one_is_ignored_and_reported_stale() {
    let app = spawn_app().await;
    let acme = app.create_tenant("acme", "RO").await;
    let newer =
        json!({"name": "Newer", "phones": ["0721234567"], "updated_at": "2026-11-21T10:00:00Z"});
    let older =
        json!({"name": "Older", "phones": ["0729999999"], "updated_at": "2026-11-20T10:00:00Z"});
    app.put_contact(&acme.sync_token, "1", &newer).await;

    let response = app.put_contact(&acme.sync_token, "1", &older).await;

    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["result"], "stale");
    assert_eq!(body["contact"]["name"], "Newer");
    assert_eq!(
        app.lookup_json(&acme.lookup_token, "0721234567").await["name"],
        "Newer"
    );
    let old_number = app.lookup(&acme.lookup_token, "0729999999").await;
    assert_eq!(old_number.text().await.unwrap(), UNKNOWN_ANSWER);
}

#[tokio::test]
async fn a_changed_phone_number_stops_resolving_under_the_old_number() {
    let app = spawn_app().await;
    let acme = app.create_tenant("acme", "RO").await;
    app.put_contact(
        &acme.sync_token,
        "1",
        &json!({"name": "Mover", "phones": ["0721000001"]}),
    )
    .await;
    assert_eq!(
        app.lookup_json(&acme.lookup_token, "0721000001").await["name"],
        "Mover"
    );

    app.put_contact(
        &acme.sync_token,
        "1",
        &json!({"name": "Mover", "phones": ["0721000002"]}),
    )
    .await;

    let old = app.lookup(&acme.lookup_token, "0721000001").await;
    assert_eq!(old.text().await.unwrap(), UNKNOWN_ANSWER);
    assert_eq!(
        app.lookup_json(&acme.lookup_token, "0721000002").await["name"],
        "Mover"
    );
}

#[tokio::test]
async fn delete_is_idempotent_and_the_contact_stops_resolving() {
    let app = spawn_app().await;
    let acme = app.create_tenant("acme", "RO").await;
    app.put_contact(
        &acme.sync_token,
        "1",
        &json!({"name": "Gone", "phones": ["0721000001"]}),
    )
    .await;

    for _ in 0..2 {
        let response = app
            .http
            .delete(format!("{}/api/v1/contacts/1", app.address))
            .bearer_auth(&acme.sync_token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 204);
    }

    assert_eq!(app.get_contact(&acme.sync_token, "1").await.status(), 404);
    let lookup = app.lookup(&acme.lookup_token, "0721000001").await;
    assert_eq!(lookup.text().await.unwrap(), UNKNOWN_ANSWER);
}

#[tokio::test]
async fn a_contact_called_batch_is_read_replaced_and_deleted_like_any_other() {
    let app = spawn_app().await;
    let acme = app.create_tenant("acme", "RO").await;
    let body = json!({"name": "Batch Ltd", "phones": ["0721000009"]});
    assert_eq!(
        app.put_contact(&acme.sync_token, "batch", &body)
            .await
            .status(),
        201
    );

    let stored: Value = app
        .get_contact(&acme.sync_token, "batch")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(stored["name"], "Batch Ltd");
    let response = app
        .http
        .delete(format!("{}/api/v1/contacts/%62atch", app.address))
        .bearer_auth(&acme.sync_token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    assert_eq!(
        app.get_contact(&acme.sync_token, "batch").await.status(),
        404
    );
    let response = app
        .http
        .patch(format!("{}/api/v1/contacts/batch", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 405);
    assert_eq!(response.headers()["allow"], "GET, PUT, DELETE, POST");
}

#[tokio::test]
async fn a_newer_delete_racing_an_older_create_wins_every_time() {
    let app = spawn_app_with(|s| s.sync_rate = 10_000).await;
    let acme = app.create_tenant("acme", "RO").await;
    // Contacts that do not exist yet: there is no row to lock, so only the writers'
    // own ordering keeps the older create from landing after the newer delete.
    let races = (1..=40).map(|i| {
        let id = format!("race-{i}");
        let delete = app
            .http
            .delete(format!(
                "{}/api/v1/contacts/{id}?updated_at=2026-11-20T10:00:22Z",
                app.address
            ))
            .bearer_auth(&acme.sync_token)
            .send();
        let body = json!({"name": "Older", "phones": [format!("0721{i:06}")],
                          "updated_at": "2026-11-20T10:00:21Z"});
        let create = app
            .http
            .put(format!("{}/api/v1/contacts/{id}", app.address))
            .bearer_auth(&acme.sync_token)
            .json(&body)
            .send();
        async move {
            let (deleted, created) = tokio::join!(delete, create);
            assert_eq!(deleted.unwrap().status(), 204);
            assert!([200, 201].contains(&created.unwrap().status().as_u16()));
            id
        }
    });
    for id in futures_util::future::join_all(races).await {
        let stored = app.get_contact(&acme.sync_token, &id).await;
        assert_eq!(
            stored.status(),
            404,
            "{id}: the older create outlived the newer delete"
        );
    }
}

#[tokio::test]
async fn a_delete_with_its_time_is_ordered_like_any_other_write() {
    let app = spawn_app().await;
    let acme = app.create_tenant("acme", "RO").await;
    let delete = |query: &'static str| {
        app.http
            .delete(format!("{}/api/v1/contacts/1?{query}", app.address))
            .bearer_auth(&acme.sync_token)
            .send()
    };
    let at = |name: &str, time: &str| json!({"name": name, "phones": ["0721000001"], "updated_at": time});
    app.put_contact(&acme.sync_token, "1", &at("First", "2026-11-20T10:00:00Z"))
        .await;

    // Older than the stored contact: ignored, and the contact is still there.
    let stale = delete("updated_at=2026-11-19T10:00:00Z").await.unwrap();
    assert_eq!(stale.status(), 200);
    let stale: Value = stale.json().await.unwrap();
    assert_eq!(stale["result"], "stale");
    assert_eq!(stale["contact"]["name"], "First");

    // Newer: deleted and remembered, so an upsert from before the deletion stays out.
    let deleted = delete("updated_at=2026-11-21T10:00%2B02:00").await.unwrap();
    assert_eq!(
        deleted.status(),
        422,
        "a time without seconds is not RFC 3339"
    );
    let deleted = delete("updated_at=2026-11-21T10:00:00%2B02:00")
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    let late = app
        .put_contact(&acme.sync_token, "1", &at("Late", "2026-11-21T07:00:00Z"))
        .await;
    assert_eq!(late.status(), 200);
    assert_eq!(late.json::<Value>().await.unwrap()["result"], "stale");
    let lookup = app.lookup(&acme.lookup_token, "0721000001").await;
    assert_eq!(lookup.text().await.unwrap(), UNKNOWN_ANSWER);
    // A write from after the deletion brings it back.
    let back = app
        .put_contact(&acme.sync_token, "1", &at("Back", "2026-11-22T10:00:00Z"))
        .await;
    assert_eq!(back.status(), 201);
}

#[tokio::test]
async fn a_batch_applies_upserts_and_deletes_in_order_in_one_go() {
    let app = spawn_app().await;
    let acme = app.create_tenant("acme", "RO").await;
    app.put_contact(
        &acme.sync_token,
        "old",
        &json!({"name": "Old", "phones": ["0721000009"]}),
    )
    .await;
    let batch = json!([
        {"op": "upsert", "id": "1", "name": "First", "phones": ["0721000001"]},
        {"op": "upsert", "id": 2, "name": "Second", "phones": ["0721000002"], "updated_at": "2026-11-20T10:00:00Z"},
        {"op": "upsert", "id": "2", "name": "Second, older", "phones": ["0721000003"], "updated_at": "2026-11-19T10:00:00Z"},
        {"op": "delete", "id": "old"},
        {"op": "delete", "id": "never-existed"},
        {"op": "upsert", "id": "1", "name": "First, renamed", "phones": ["0721000001"]}
    ]);

    let response = app.batch(&acme.sync_token, &batch).await;

    assert_eq!(response.status(), 200);
    let summary: Value = response.json().await.unwrap();
    assert_eq!(summary["created"], 2);
    assert_eq!(summary["updated"], 1);
    assert_eq!(summary["deleted"], 1);
    assert_eq!(summary["absent"], 1);
    assert_eq!(summary["stale"], json!([{"index": 2, "id": 2}]));
    assert_eq!(
        app.lookup_json(&acme.lookup_token, "0721000001").await["name"],
        "First, renamed"
    );
    assert_eq!(
        app.lookup_json(&acme.lookup_token, "0721000002").await["name"],
        "Second"
    );
    let stale_number = app.lookup(&acme.lookup_token, "0721000003").await;
    assert_eq!(stale_number.text().await.unwrap(), UNKNOWN_ANSWER);
    assert_eq!(app.get_contact(&acme.sync_token, "old").await.status(), 404);
}

#[tokio::test]
async fn a_batch_with_any_invalid_item_lists_every_problem_and_writes_nothing() {
    let app = spawn_app().await;
    let acme = app.create_tenant("acme", "RO").await;
    let batch = json!([
        {"op": "upsert", "id": "1", "name": "Fine", "phones": ["0721000001"]},
        {"op": "upsert", "id": "2", "phones": ["0721000002"]},
        {"op": "merge", "id": "3"},
        {"op": "upsert", "name": "No id", "phones": []},
        {"op": "upsert", "id": "5", "name": "Bad phone", "phones": ["0721000005", "call me"]},
        "not an object"
    ]);

    let response = app.batch(&acme.sync_token, &batch).await;

    assert_eq!(response.status(), 422);
    let body: Value = response.json().await.unwrap();
    let problems: Vec<(u64, String)> = body["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["index"].as_u64().unwrap(),
                f["field"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        problems,
        [
            (1, "name".to_owned()),
            (2, "op".to_owned()),
            (3, "id".to_owned()),
            (4, "phones[1]".to_owned()),
            (5, "".to_owned()),
        ]
    );
    assert_eq!(
        app.get_contact(&acme.sync_token, "1").await.status(),
        404,
        "nothing written"
    );
}

#[tokio::test]
async fn a_batch_over_ten_thousand_items_is_refused() {
    let app = spawn_app().await;
    let acme = app.create_tenant("acme", "RO").await;
    let items: Vec<Value> = (0..10_001)
        .map(|i| json!({"op": "delete", "id": i.to_string()}))
        .collect();

    let response = app.batch(&acme.sync_token, &Value::Array(items)).await;

    assert_eq!(response.status(), 422);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["message"].as_str().unwrap().contains("10000"),
        "{body}"
    );
}

#[tokio::test]
async fn a_full_batch_of_ten_thousand_contacts_is_written() {
    let app = spawn_app().await;
    let acme = app.create_tenant("acme", "RO").await;
    let items: Vec<Value> = (0..10_000)
        .map(|i| json!({"op": "upsert", "id": i.to_string(), "name": format!("C{i}"), "phones": [format!("0721{i:06}")]}))
        .collect();

    let response = app.batch(&acme.sync_token, &Value::Array(items)).await;

    assert_eq!(response.status(), 200);
    assert_eq!(response.json::<Value>().await.unwrap()["created"], 10_000);
    assert_eq!(
        app.lookup_json(&acme.lookup_token, "0721009999").await["name"],
        "C9999"
    );
}

fn upserts(n: usize) -> Vec<Value> {
    (0..n)
        .map(|i| json!({"op": "upsert", "id": i.to_string(), "name": format!("C{i}"), "phones": [format!("0721{i:06}")]}))
        .collect()
}

/// A problem found anywhere in a batch (an invalid item near its end, JSON cut short)
/// leaves every item of it unwritten.
#[tokio::test]
async fn a_batch_found_bad_late_writes_nothing_of_its_first_items() {
    let app = spawn_app().await;
    let acme = app.create_tenant("acme", "RO").await;
    let mut late_invalid = upserts(9_000);
    late_invalid[8_500] =
        json!({"op": "upsert", "id": "8500", "name": "Bad", "phones": ["call me"]});
    let valid = serde_json::to_string(&upserts(9_000)).unwrap();
    let cut_short = &valid[..valid.len() - 100];

    let response = app
        .batch(&acme.sync_token, &Value::Array(late_invalid))
        .await;
    assert_eq!(response.status(), 422);
    let body: Value = response.json().await.unwrap();
    let fields = body["fields"].as_array().unwrap();
    assert_eq!(fields.len(), 1, "{body}");
    assert_eq!(fields[0]["index"], 8_500);
    assert_eq!(fields[0]["field"], "phones[0]");

    let response = app
        .http
        .post(format!("{}/api/v1/contacts/batch", app.address))
        .bearer_auth(&acme.sync_token)
        .header("content-type", "application/json")
        .body(cut_short.to_owned())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert!(response.text().await.unwrap().contains("not valid JSON"));

    for id in ["0", "4000", "8499"] {
        assert_eq!(
            app.get_contact(&acme.sync_token, id).await.status(),
            404,
            "contact {id} not written"
        );
    }
    let first = app.lookup(&acme.lookup_token, "0721000000").await;
    assert_eq!(first.text().await.unwrap(), UNKNOWN_ANSWER);
}

#[tokio::test]
async fn a_batch_body_that_is_not_an_array_is_refused() {
    let app = spawn_app().await;
    let acme = app.create_tenant("acme", "RO").await;
    let url = format!("{}/api/v1/contacts/batch", app.address);
    for (case, body, status, needle) in [
        ("object", r#"{"op": "upsert"}"#, 422, "JSON array"),
        ("malformed object", r#"{"op": "#, 400, "not valid JSON"),
        ("text after the array", r#"[] []"#, 400, "not valid JSON"),
    ] {
        let response = app
            .http
            .post(&url)
            .bearer_auth(&acme.sync_token)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), status, "{case}");
        let text = response.text().await.unwrap();
        assert!(text.contains(needle), "{case}: {text}");
    }
    let empty = app.batch(&acme.sync_token, &json!([])).await;
    assert_eq!(empty.status(), 200);
    assert_eq!(
        empty.json::<Value>().await.unwrap(),
        json!({"created": 0, "updated": 0, "deleted": 0, "absent": 0, "stale": []})
    );
}

#[tokio::test]
async fn concurrent_batches_over_the_same_contacts_in_opposite_orders_both_apply() {
    // Batches over one chunk lock chunk by chunk, so these two can deadlock; PostgreSQL
    // then aborts one, and the gateway must run it again rather than answer 500.
    let app = spawn_app().await;
    let acme = app.create_tenant("acme", "RO").await;
    let batch_of = |label: &str, ids: Vec<u32>| {
        let items = ids
            .into_iter()
            .map(|i| json!({"op": "upsert", "id": i.to_string(), "name": format!("{label}{i}"), "phones": [format!("0721{i:06}")]}))
            .collect();
        Value::Array(items)
    };
    let created = app
        .batch(&acme.sync_token, &batch_of("C", (0..10_000).collect()))
        .await;
    assert_eq!(created.status(), 200);
    let forward = batch_of("A", (0..10_000).collect());
    let backward = batch_of("B", (0..10_000).rev().collect());

    let (a, b) = tokio::join!(
        app.batch(&acme.sync_token, &forward),
        app.batch(&acme.sync_token, &backward)
    );

    for response in [a, b] {
        assert_eq!(response.status(), 200);
        assert_eq!(response.json::<Value>().await.unwrap()["updated"], 10_000);
    }
    // Each batch is one transaction: the one committed last wrote every contact.
    let first = app.lookup_json(&acme.lookup_token, "0721000000").await["name"].clone();
    let last = app.lookup_json(&acme.lookup_token, "0721009999").await["name"].clone();
    let winner = &first.as_str().unwrap()[..1];
    assert!(winner == "A" || winner == "B", "{first}");
    assert_eq!(last, format!("{winner}9999"));
}

#[tokio::test]
async fn bad_sync_input_gets_a_clear_json_error_and_writes_nothing() {
    let app = spawn_app().await;
    let acme = app.create_tenant("acme", "RO").await;
    let url = format!("{}/api/v1/contacts/1", app.address);
    let cases: Vec<(&str, reqwest::RequestBuilder, u16, &str)> = vec![
        (
            "malformed JSON",
            app.http
                .put(&url)
                .header("content-type", "application/json")
                .body("{\"name\": "),
            400,
            "not valid JSON",
        ),
        ("empty body", app.http.put(&url), 400, "empty"),
        (
            "array instead of object",
            app.http.put(&url).json(&json!([1])),
            422,
            "\"message\":\"the body must be a JSON object\"",
        ),
        (
            "missing name",
            app.http.put(&url).json(&json!({"phones": []})),
            422,
            "name",
        ),
        (
            "missing phones",
            app.http.put(&url).json(&json!({"name": "A"})),
            422,
            "phones",
        ),
        (
            "queue position out of range",
            app.http
                .put(&url)
                .json(&json!({"name": "A", "phones": [], "queue_position": 500})),
            422,
            "queue_position",
        ),
        (
            "unknown field",
            app.http
                .put(&url)
                .json(&json!({"name": "A", "phones": [], "nmae": "B"})),
            422,
            "nmae",
        ),
        (
            "id contradicting the URL",
            app.http
                .put(&url)
                .json(&json!({"id": "2", "name": "A", "phones": []})),
            422,
            "id",
        ),
        (
            "bad timestamp",
            app.http
                .put(&url)
                .json(&json!({"name": "A", "phones": [], "updated_at": "today"})),
            422,
            "updated_at",
        ),
        (
            "oversized body",
            app.http
                .put(&url)
                .json(&json!({"name": "A", "phones": [], "attributes": {"x": "y".repeat(70_000)}})),
            413,
            "larger",
        ),
        (
            "unknown route",
            app.http.get(format!("{}/api/v1/nothing", app.address)),
            404,
            "no such endpoint",
        ),
        ("wrong method", app.http.patch(&url), 405, "not allowed"),
        (
            "id that is not UTF-8",
            app.http
                .put(format!("{}/api/v1/contacts/%FF", app.address))
                .json(&json!({"name": "A", "phones": []})),
            422,
            "must be valid UTF-8 once percent-decoded",
        ),
    ];
    for (case, request, status, needle) in cases {
        let response = request.bearer_auth(&acme.sync_token).send().await.unwrap();
        assert_eq!(response.status().as_u16(), status, "{case}");
        assert_eq!(
            response.headers()["content-type"],
            "application/json",
            "{case}"
        );
        let body = response.text().await.unwrap();
        assert!(body.contains(needle), "{case}: {body}");
    }
    assert_eq!(
        app.get_contact(&acme.sync_token, "1").await.status(),
        404,
        "nothing written"
    );
}

#[tokio::test]
async fn a_body_not_sent_as_json_is_refused_with_415_and_writes_nothing() {
    let app = spawn_app().await;
    let acme = app.create_tenant("acme", "RO").await;
    let contact = format!("{}/api/v1/contacts/1", app.address);
    let batch = format!("{}/api/v1/contacts/batch", app.address);
    let body = json!({"name": "A", "phones": ["0721000001"]}).to_string();
    let items = json!([{"op": "upsert", "id": "1", "name": "A", "phones": ["0721000001"]}]);
    let items = items.to_string();
    for content_type in [
        None,
        Some("text/plain"),
        Some("text/csv"),
        Some("application/x-www-form-urlencoded"),
        Some("application/jsonp"),
        Some("application/json; charset=iso-8859-1"),
        Some("json"),
        Some("/json"),
        Some("application/json; charset=latin1"),
    ] {
        for (request, text) in [
            (app.http.put(&contact), &body),
            (app.http.post(&batch), &items),
        ] {
            let mut request = request.bearer_auth(&acme.sync_token).body(text.clone());
            if let Some(content_type) = content_type {
                request = request.header("content-type", content_type);
            }
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), 415, "{content_type:?}");
            let error: Value = response.json().await.unwrap();
            assert_eq!(error["error"], "unsupported_media_type", "{content_type:?}");
            let message = error["message"].as_str().unwrap();
            assert!(message.contains("application/json"), "{message}");
        }
    }
    assert_eq!(app.get_contact(&acme.sync_token, "1").await.status(), 404);

    for (id, content_type) in [
        ("2", "application/json; charset=UTF-8"),
        ("3", "Application/JSON"),
        ("4", "application/vnd.crm+json"),
        ("5", "application/json ; charset=utf-8"),
        ("6", "application/json; charset=\"utf8\""),
    ] {
        let response = app
            .http
            .put(format!("{}/api/v1/contacts/{id}", app.address))
            .bearer_auth(&acme.sync_token)
            .header("content-type", content_type)
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201, "{content_type}");
    }
}

#[tokio::test]
async fn a_key_named_twice_is_refused_with_400_naming_it_and_writes_nothing() {
    let app = spawn_app().await;
    let acme = app.create_tenant("acme", "RO").await;
    let put = |id: &str, text: &'static str| {
        app.http
            .put(format!("{}/api/v1/contacts/{id}", app.address))
            .bearer_auth(&acme.sync_token)
            .header("content-type", "application/json")
            .body(text)
    };
    let cases = [
        (
            "1",
            put("1", r#"{"id":"1","name":"x","phones":[],"name":"y"}"#),
            "name",
        ),
        (
            "1",
            put(
                "1",
                r#"{"name":"A","phones":[],"attributes":{"tier":"gold","tier":"silver"}}"#,
            ),
            "attributes.tier",
        ),
        (
            "2",
            app.http
                .post(format!("{}/api/v1/contacts/batch", app.address))
                .bearer_auth(&acme.sync_token)
                .header("content-type", "application/json")
                .body(
                    r#"[{"op":"upsert","id":"2","name":"A","phones":[]},
                        {"op":"upsert","id":"3","id":"4","name":"B","phones":[]}]"#,
                ),
            "[1].id",
        ),
    ];
    for (id, request, path) in cases {
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 400, "{path}");
        let error: Value = response.json().await.unwrap();
        assert_eq!(error["error"], "bad_request");
        let message = error["message"].as_str().unwrap();
        assert!(
            message.contains(&format!("repeats the key {path}:")),
            "{message}"
        );
        assert_eq!(app.get_contact(&acme.sync_token, id).await.status(), 404);
    }
    let same_key_in_two_objects =
        r#"{"name":"A","phones":[],"attributes":{"a":{"k":1},"b":{"k":1}}}"#;
    assert_eq!(
        put("5", same_key_in_two_objects)
            .send()
            .await
            .unwrap()
            .status(),
        201
    );
}

#[tokio::test]
async fn an_updated_at_more_than_a_day_ahead_is_refused_everywhere_and_writes_nothing() {
    let app = spawn_app().await;
    let acme = app.create_tenant("acme", "RO").await;
    let far = "9999-12-31T23:59:59Z";
    let stored =
        json!({"name": "Stored", "phones": ["0721000001"], "updated_at": "2026-11-20T10:00:00Z"});
    assert_eq!(
        app.put_contact(&acme.sync_token, "1", &stored)
            .await
            .status(),
        201
    );
    let ahead = (chrono::Utc::now() + chrono::TimeDelta::hours(25)).to_rfc3339();

    for when in [far, ahead.as_str()] {
        let upsert = json!({"name": "Future", "phones": ["0721000002"], "updated_at": when});
        let put = app.put_contact(&acme.sync_token, "1", &upsert).await;
        assert_eq!(put.status(), 422, "{when}");
        let error: Value = put.json().await.unwrap();
        assert_eq!(error["fields"][0]["field"], "updated_at");
        let message = error["fields"][0]["message"].as_str().unwrap();
        assert!(
            message.contains("24 hours ahead of the server's clock"),
            "{message}"
        );

        let mut item = upsert.clone();
        item["op"] = json!("upsert");
        item["id"] = json!("2");
        let ops = json!([item, {"op": "delete", "id": "1", "updated_at": when}]);
        let batch = app.batch(&acme.sync_token, &ops).await;
        assert_eq!(batch.status(), 422, "{when}");
        let error: Value = batch.json().await.unwrap();
        let named: Vec<(u64, &str)> = error["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| (f["index"].as_u64().unwrap(), f["field"].as_str().unwrap()))
            .collect();
        assert_eq!(named, [(0, "updated_at"), (1, "updated_at")], "{error}");

        let delete = app
            .http
            .delete(format!("{}/api/v1/contacts/1", app.address))
            .query(&[("updated_at", when)])
            .bearer_auth(&acme.sync_token)
            .send()
            .await
            .unwrap();
        assert_eq!(delete.status(), 422, "{when}");
        assert!(delete.text().await.unwrap().contains("updated_at"));
    }

    let read: Value = app
        .get_contact(&acme.sync_token, "1")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(read["name"], "Stored");
    assert_eq!(app.get_contact(&acme.sync_token, "2").await.status(), 404);
    // Nothing was poisoned, and a time within the bound applies.
    let soon = (chrono::Utc::now() + chrono::TimeDelta::hours(1)).to_rfc3339();
    let next = json!({"name": "Next", "phones": ["0721000001"], "updated_at": soon});
    let put = app.put_contact(&acme.sync_token, "1", &next).await;
    assert_eq!(put.json::<Value>().await.unwrap()["result"], "updated");
}

#[tokio::test]
async fn bidi_controls_in_shown_text_are_refused_and_names_in_any_script_are_kept() {
    let app = spawn_app().await;
    let acme = app.create_tenant("acme", "RO").await;
    // U+202E would show "Ana Pop" reversed after it: a spoofed name on the pop page.
    let cases = [
        (
            "1",
            json!({"name": "Ana \u{202E}poP", "phones": ["0721000001"]}),
            "name",
        ),
        (
            "1",
            json!({"name": "A", "phones": [], "direct_line": "SIP/\u{2067}x"}),
            "direct_line",
        ),
        (
            "1",
            json!({"name": "A", "phones": [], "attributes": {"note": "\u{202B}x"}}),
            "attributes",
        ),
        (
            "1\u{2066}",
            json!({"name": "A", "phones": ["0721000001"]}),
            "id",
        ),
    ];
    for (id, body, field) in cases {
        let encoded: String = url::form_urlencoded::byte_serialize(id.as_bytes()).collect();
        let response = app.put_contact(&acme.sync_token, &encoded, &body).await;
        assert_eq!(response.status(), 422, "{field}");
        let error: Value = response.json().await.unwrap();
        assert_eq!(error["fields"][0]["field"], field);
        let message = error["fields"][0]["message"].as_str().unwrap();
        assert!(
            message.contains("U+202A–U+202E, U+2066–U+2069"),
            "{message}"
        );

        let mut item = body.clone();
        item["op"] = json!("upsert");
        item["id"] = json!(id);
        let batch = app.batch(&acme.sync_token, &json!([item])).await;
        assert_eq!(batch.status(), 422, "{field}");
        let error: Value = batch.json().await.unwrap();
        assert_eq!(error["fields"][0]["index"], 0);
        assert_eq!(error["fields"][0]["field"], field);
    }
    assert_eq!(app.get_contact(&acme.sync_token, "1").await.status(), 404);
    assert_eq!(
        app.lookup(&acme.lookup_token, "0721000001")
            .await
            .text()
            .await
            .unwrap(),
        UNKNOWN_ANSWER
    );

    for (id, name) in [
        ("2", "Zoë Ștefănescu"),
        ("3", "محمد عبد الله"),
        ("4", "דוד לוי"),
    ] {
        let number = format!("072100000{id}");
        let body = json!({"name": name, "phones": [number]});
        assert_eq!(
            app.put_contact(&acme.sync_token, id, &body).await.status(),
            201
        );
        assert_eq!(
            app.lookup_json(&acme.lookup_token, &number).await["name"],
            name
        );
    }
    // Such an id is refused for upserts only: one stored before the rule can be deleted.
    let old_id = "%E2%81%A6old";
    let delete = app
        .http
        .delete(format!("{}/api/v1/contacts/{old_id}", app.address))
        .bearer_auth(&acme.sync_token)
        .send()
        .await
        .unwrap();
    assert_eq!(delete.status(), 204);
}

#[tokio::test]
async fn a_body_trickled_past_the_body_timeout_gets_408_and_a_closed_connection() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let app = spawn_app_with(|s| s.body_timeout_ms = 300).await;
    let acme = app.create_tenant("acme", "RO").await;
    let address = app.address.trim_start_matches("http://");
    let mut client = tokio::net::TcpStream::connect(address).await.unwrap();
    // The headers and the first bytes of a body that never finishes.
    let head = format!(
        "PUT /api/v1/contacts/1 HTTP/1.1\r\nHost: {address}\r\n\
         Authorization: Bearer {}\r\nContent-Type: application/json\r\n\
         Content-Length: 1000\r\n\r\n{{\"name\": \"Slow\", ",
        acme.sync_token
    );
    client.write_all(head.as_bytes()).await.unwrap();

    // The gateway answers and closes on its own; the bound only keeps a broken build
    // from hanging the suite.
    let mut answer = Vec::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(10),
        client.read_to_end(&mut answer),
    )
    .await
    .expect("the gateway answers a trickled body and closes the connection")
    .unwrap();
    let answer = String::from_utf8(answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"error\":\"request_timeout\""), "{answer}");
    assert!(answer.contains("within 300 ms"), "{answer}");
    assert_eq!(app.get_contact(&acme.sync_token, "1").await.status(), 404);
}

#[tokio::test]
async fn an_oversized_batch_body_is_refused_with_413() {
    let app = spawn_app().await;
    let acme = app.create_tenant("acme", "RO").await;
    let body = format!("[{}]", " ".repeat(33 * 1024 * 1024));

    let response = app
        .http
        .post(format!("{}/api/v1/contacts/batch", app.address))
        .bearer_auth(&acme.sync_token)
        .body(body)
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 413);
}

#[tokio::test]
async fn attributes_round_trip_exactly_even_with_extreme_numbers() {
    let app = spawn_app().await;
    let acme = app.create_tenant("acme", "RO").await;
    let attributes = json!({"big": -1.7976931348623157e308, "tiny": 2.394940500239107e-231, "n": 2551429566297654272u64, "s": "ü\u{1}"});
    let body = json!({"name": "A", "phones": [], "attributes": attributes});

    assert_eq!(
        app.put_contact(&acme.sync_token, "1", &body).await.status(),
        201
    );

    let read = app.get_contact(&acme.sync_token, "1").await;
    assert_eq!(read.status(), 200);
    assert_eq!(
        read.json::<Value>().await.unwrap()["attributes"],
        attributes
    );
}

#[tokio::test]
async fn a_batch_id_must_be_a_string_or_an_integer() {
    let app = spawn_app().await;
    let acme = app.create_tenant("acme", "RO").await;
    let batch = json!([{"op": "delete", "id": 2.5}, {"op": "delete", "id": true}, {"op": "delete", "id": 7}]);

    let response = app.batch(&acme.sync_token, &batch).await;

    assert_eq!(response.status(), 422);
    let body: Value = response.json().await.unwrap();
    let indexes: Vec<u64> = body["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["index"].as_u64().unwrap())
        .collect();
    assert_eq!(indexes, [0, 1]);
}

#[tokio::test]
async fn an_older_write_arriving_after_a_delete_does_not_bring_the_contact_back() {
    let app = spawn_app().await;
    let acme = app.create_tenant("acme", "RO").await;
    let contact = |name: &str, at: &str| json!({"op": "upsert", "id": "7", "name": name, "phones": ["0721000007"], "updated_at": at});
    app.batch(
        &acme.sync_token,
        &json!([contact("First", "2026-01-01T00:00:00Z")]),
    )
    .await;
    let deleted = app
        .batch(
            &acme.sync_token,
            &json!([{"op": "delete", "id": "7", "updated_at": "2026-03-01T00:00:00Z"}]),
        )
        .await;
    assert_eq!(deleted.json::<Value>().await.unwrap()["deleted"], 1);

    let late = app
        .batch(
            &acme.sync_token,
            &json!([contact("Late", "2026-02-01T00:00:00Z")]),
        )
        .await;

    assert_eq!(
        late.json::<Value>().await.unwrap()["stale"],
        json!([{"index": 0, "id": 7}])
    );
    assert_eq!(app.get_contact(&acme.sync_token, "7").await.status(), 404);
    let lookup = app.lookup(&acme.lookup_token, "0721000007").await;
    assert_eq!(lookup.text().await.unwrap(), UNKNOWN_ANSWER);
    // A newer write does re-create it.
    let newer = app
        .batch(
            &acme.sync_token,
            &json!([contact("Back", "2026-04-01T00:00:00Z")]),
        )
        .await;
    assert_eq!(newer.json::<Value>().await.unwrap()["created"], 1);
    assert_eq!(
        app.lookup_json(&acme.lookup_token, "0721000007").await["name"],
        "Back"
    );
}

#[tokio::test]
async fn a_batch_larger_than_one_write_chunk_replays_repeated_ids_in_order() {
    let app = spawn_app().await;
    let acme = app.create_tenant("acme", "RO").await;
    // Items 0..6000 create ids 0..6000; items 6000..10000 write ids 0..4000 again, in
    // a later internal chunk (5,000 items), where they exist already: odd ids newer
    // (updated), even ids older (stale). Items 9998 and 9999 repeat an id within a chunk.
    let item = |i: usize, id: usize, at: &str| {
        json!({"op": "upsert", "id": id.to_string(), "name": format!("C{id} from {i}"),
               "phones": [format!("0721{i:06}")], "updated_at": at})
    };
    let mut items: Vec<Value> = (0..6_000)
        .map(|i| item(i, i, "2026-06-01T00:00:00Z"))
        .collect();
    for i in 6_000..9_998 {
        let id = i - 6_000;
        let at = if id % 2 == 1 {
            "2026-07-01T00:00:00Z"
        } else {
            "2026-05-01T00:00:00Z"
        };
        items.push(item(i, id, at));
    }
    items.push(item(9_998, 7_000, "2026-06-01T00:00:00Z"));
    items.push(item(9_999, 7_000, "2026-06-02T00:00:00Z"));

    let response = app.batch(&acme.sync_token, &Value::Array(items)).await;

    assert_eq!(response.status(), 200);
    let summary: Value = response.json().await.unwrap();
    assert_eq!(summary["created"], 6_001);
    assert_eq!(summary["updated"], 1_999 + 1);
    let stale = summary["stale"].as_array().unwrap();
    assert_eq!(stale.len(), 1_999);
    assert_eq!(stale[0], json!({"index": 6_000, "id": 0}));
    // Odd ids moved to their second number; even ids kept their first.
    assert_eq!(
        app.lookup_json(&acme.lookup_token, "0721006001").await["name"],
        "C1 from 6001"
    );
    let moved_from = app.lookup(&acme.lookup_token, "0721000001").await;
    assert_eq!(moved_from.text().await.unwrap(), UNKNOWN_ANSWER);
    assert_eq!(
        app.lookup_json(&acme.lookup_token, "0721000002").await["name"],
        "C2 from 2"
    );
    let stale_number = app.lookup(&acme.lookup_token, "0721006002").await;
    assert_eq!(stale_number.text().await.unwrap(), UNKNOWN_ANSWER);
    let twice = app.get_contact(&acme.sync_token, "7000").await;
    let twice: Value = twice.json().await.unwrap();
    assert_eq!(twice["name"], "C7000 from 9999");
    assert_eq!(twice["phones"], json!(["+40721009999"]));
}

#[tokio::test]
async fn a_contact_created_by_another_writer_meanwhile_is_ordered_not_lost() {
    let app = spawn_app().await;
    let acme = app.create_tenant("acme", "RO").await;
    // Another writer has inserted contact 9 but not committed: the batch does not see it,
    // finds 9 absent, and its insert waits on the other writer's key.
    let mut other_client = app.pool.get().await.unwrap();
    let other = other_client.transaction().await.unwrap();
    other
        .batch_execute(
            "INSERT INTO contacts (tenant_id, crm_id, name, source_updated_at)
             SELECT id, '9', 'Other', '2026-06-01T00:00:00Z' FROM tenants WHERE slug = 'acme';
             INSERT INTO contact_phones (tenant_id, crm_id, number)
             SELECT id, '9', '+40721000099' FROM tenants WHERE slug = 'acme'",
        )
        .await
        .unwrap();
    let batch = json!([
        {"op": "upsert", "id": "8", "name": "Eight", "phones": ["0721000008"]},
        {"op": "upsert", "id": "9", "name": "Batch", "phones": ["0721000009"], "updated_at": "2026-07-01T00:00:00Z"}
    ]);
    let sent = tokio::spawn({
        let (http, url, token) = (
            app.http.clone(),
            format!("{}/api/v1/contacts/batch", app.address),
            acme.sync_token.clone(),
        );
        async move {
            http.post(url)
                .bearer_auth(token)
                .json(&batch)
                .send()
                .await
                .unwrap()
        }
    });
    let watcher = app.pool.get().await.unwrap();
    eventually(
        PROPAGATION,
        "the batch waits on the other writer",
        || async {
            let waiting: i64 = watcher
                .query_one(
                    "SELECT count(*) FROM pg_stat_activity
                 WHERE datname = current_database() AND wait_event_type = 'Lock'",
                    &[],
                )
                .await
                .unwrap()
                .get(0);
            waiting > 0
        },
    )
    .await;

    other.commit().await.unwrap();
    let response = sent.await.unwrap();

    // The batch ran again and found 9: newer, so it replaced it.
    assert_eq!(response.status(), 200);
    let summary: Value = response.json().await.unwrap();
    assert_eq!(summary["created"], 1);
    assert_eq!(summary["updated"], 1);
    assert_eq!(
        app.lookup_json(&acme.lookup_token, "0721000009").await["name"],
        "Batch"
    );
    let replaced = app.lookup(&acme.lookup_token, "0721000099").await;
    assert_eq!(replaced.text().await.unwrap(), UNKNOWN_ANSWER);
    assert_eq!(
        app.lookup_json(&acme.lookup_token, "0721000008").await["name"],
        "Eight"
    );
}

#[tokio::test]
async fn removing_a_tenant_or_a_contact_removes_their_numbers() {
    let app = spawn_app().await;
    let acme = app.create_tenant("acme", "RO").await;
    let other = app.create_tenant("other", "RO").await;
    for (tenant, id) in [(&acme, "1"), (&acme, "2"), (&other, "1")] {
        let body = json!({"name": "A", "phones": [format!("072100000{id}")]});
        assert_eq!(
            app.put_contact(&tenant.sync_token, id, &body)
                .await
                .status(),
            201
        );
    }
    let client = app.pool.get().await.unwrap();
    let numbers = |slug: &'static str| {
        let client = &client;
        async move {
            client
                .query_one(
                    "SELECT count(*) FROM contact_phones p JOIN tenants t ON t.id = p.tenant_id
                     WHERE t.slug = $1",
                    &[&slug],
                )
                .await
                .unwrap()
                .get::<_, i64>(0)
        }
    };
    assert_eq!(numbers("acme").await, 2);

    client
        .execute(
            "DELETE FROM contacts WHERE crm_id = '1' AND tenant_id = (SELECT id FROM tenants WHERE slug = 'acme')",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(numbers("acme").await, 1);
    let tenant_id: i64 = client
        .query_one("SELECT id FROM tenants WHERE slug = 'acme'", &[])
        .await
        .unwrap()
        .get(0);
    client
        .execute("DELETE FROM tenants WHERE slug = 'acme'", &[])
        .await
        .unwrap();

    let left: i64 = client
        .query_one(
            "SELECT (SELECT count(*) FROM contacts WHERE tenant_id = $1)
                  + (SELECT count(*) FROM contact_phones WHERE tenant_id = $1)",
            &[&tenant_id],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(left, 0);
    assert_eq!(numbers("other").await, 1);
}
