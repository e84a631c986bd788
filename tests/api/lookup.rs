//! The PBX lookup, as the reference web service describes it.

use serde_json::{Value, json};

use crate::helpers::{PROPAGATION, UNKNOWN_ANSWER, eventually, spawn_app};

fn john_doe() -> Value {
    json!({
        "name": "John Doe",
        "phones": ["0700000000"],
        "crm_url": "https://your-crm.com/example-popup?id=12345"
    })
}

/// The answer text with its `backend_link` (a signed screen-pop link on this gateway,
/// different for every call) replaced by `LINK`, so the rest compares byte for byte.
fn with_link_placeholder(text: &str, address: &str) -> String {
    let prefix = format!("\"backend_link\":\"{address}/pop/");
    let start = text
        .find(&prefix)
        .unwrap_or_else(|| panic!("no screen-pop link in {text}"));
    let value_start = start + "\"backend_link\":\"".len();
    let end = value_start + text[value_start..].find('"').unwrap();
    format!("{}LINK{}", &text[..value_start], &text[end..])
}

#[tokio::test]
async fn lookup_answers_the_reference_found_example_byte_for_byte() {
    let app = spawn_app().await;
    let acme = app.create_tenant("acme", "RO").await;
    let put = app
        .put_contact(&acme.sync_token, "12345", &john_doe())
        .await;
    assert_eq!(put.status(), 201);

    let response = app.lookup(&acme.lookup_token, "0700000000").await;

    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    let text = response.text().await.unwrap();
    assert_eq!(
        with_link_placeholder(&text, &app.address),
        r#"{"id":12345,"name":"John Doe","queue_position":null,"direct_line":null,"backend_link":"LINK","route_identifier":null,"outbound_number":null,"language":null,"external_id":null}"#
    );
}

#[tokio::test]
async fn lookup_answers_the_reference_not_found_example_for_an_unknown_caller() {
    let app = spawn_app().await;
    let acme = app.create_tenant("acme", "RO").await;

    let response = app.lookup(&acme.lookup_token, "0700000001").await;

    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    assert_eq!(response.text().await.unwrap(), UNKNOWN_ANSWER);
}

#[tokio::test]
async fn lookup_is_also_served_at_the_reference_path() {
    let app = spawn_app().await;
    let acme = app.create_tenant("acme", "RO").await;
    app.put_contact(&acme.sync_token, "12345", &john_doe())
        .await;

    let response = app
        .http
        .get(format!(
            "{}/api/while1voice?telephone=0700000000&dnid=0210000000&token={}",
            app.address, acme.lookup_token
        ))
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["id"], 12345);
}

#[tokio::test]
async fn every_number_format_a_pbx_may_send_finds_the_same_contact() {
    let app = spawn_app().await;
    let acme = app.create_tenant("acme", "RO").await;
    let body = json!({"name": "Ion Popescu", "phones": ["+40 721 234 567"]});
    app.put_contact(&acme.sync_token, "7", &body).await;

    for telephone in [
        "0721234567",
        "+40721234567",
        "0040721234567",
        "0721 234 567",
        "0721-234-567",
        "(0721) 234 567",
        "+40 (0) 721-234-567",
        "40721234567",
        "tel:+40721234567",
        "sip:+40721234567@pbx.example.com",
        "<sip:0721234567@10.0.0.1;transport=udp>",
        "\u{202D}0721\u{00A0}234\u{2011}567\u{202C}",
        "\"Ion Popescu\" <0721234567>",
        "<+40721234567>",
        "0721234567 ext. 12",
        "\u{0660}\u{0667}\u{0662}\u{0661}\u{0662}\u{0663}\u{0664}\u{0665}\u{0666}\u{0667}",
    ] {
        let answer = app.lookup_json(&acme.lookup_token, telephone).await;
        assert_eq!(answer["name"], "Ion Popescu", "telephone {telephone:?}");
        assert_eq!(answer["id"], 7, "telephone {telephone:?}");
    }
}

#[tokio::test]
async fn a_foreign_caller_matches_however_its_country_writes_the_trunk_zero() {
    let app = spawn_app().await;
    let us = app.create_tenant("acme-us", "US").await;
    let ro = app.create_tenant("acme-ro", "RO").await;
    let london = json!({"name": "London office", "phones": ["+44 (0)20 7946 0111"]});
    let rome = json!({"name": "Rome office", "phones": ["+39 06 1234 5678"]});
    app.put_contact(&us.sync_token, "1", &london).await;
    app.put_contact(&ro.sync_token, "2", &rome).await;

    for telephone in ["+442079460111", "011442079460111", "+44 20 7946 0111"] {
        let answer = app.lookup_json(&us.lookup_token, telephone).await;
        assert_eq!(answer["name"], "London office", "telephone {telephone:?}");
    }
    for telephone in ["+390612345678", "00390612345678"] {
        let answer = app.lookup_json(&ro.lookup_token, telephone).await;
        assert_eq!(answer["name"], "Rome office", "telephone {telephone:?}");
    }
    // Without Italy's leading 0 it is another (non-existent) number.
    let answer = app.lookup_json(&ro.lookup_token, "+39612345678").await;
    assert_eq!(answer["name"], Value::Null);
    let stored: Value = app
        .get_contact(&ro.sync_token, "2")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(stored["phones"], json!(["+390612345678"]));
}

#[tokio::test]
async fn withheld_empty_and_unparseable_callers_get_the_unknown_answer() {
    let app = spawn_app().await;
    let acme = app.create_tenant("acme", "RO").await;
    app.put_contact(
        &acme.sync_token,
        "1",
        &json!({"name": "Digits", "phones": ["123"]}),
    )
    .await;

    for telephone in [
        "",
        "anonymous",
        "Anonymous",
        "sip:anonymous@anonymous.invalid",
        "unknown",
        "private",
        "abc123",
        "+-()",
        "<script>",
    ] {
        let response = app.lookup(&acme.lookup_token, telephone).await;
        assert_eq!(response.status(), 200, "telephone {telephone:?}");
        assert_eq!(
            response.text().await.unwrap(),
            UNKNOWN_ANSWER,
            "telephone {telephone:?}"
        );
    }
    // No telephone parameter at all is an unidentified caller too.
    let response = app
        .http
        .get(format!(
            "{}/api/lookup?token={}",
            app.address, acme.lookup_token
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.text().await.unwrap(), UNKNOWN_ANSWER);
}

#[tokio::test]
async fn short_internal_extensions_match_as_digits() {
    let app = spawn_app().await;
    let acme = app.create_tenant("acme", "RO").await;
    app.put_contact(
        &acme.sync_token,
        "ext",
        &json!({"name": "Reception", "phones": ["101"]}),
    )
    .await;

    let answer = app.lookup_json(&acme.lookup_token, "101").await;

    assert_eq!(answer["name"], "Reception");
    assert_eq!(answer["id"], "ext", "a non-integer CRM id stays a string");
}

#[tokio::test]
async fn routing_fields_reach_the_pbx_and_integer_like_ids_stay_exact() {
    let app = spawn_app().await;
    let acme = app.create_tenant("acme", "RO").await;
    let body = json!({
        "name": "Ana",
        "phones": ["0722000001"],
        "direct_line": "SIP/ion-popescu",
        "queue_position": 3,
        "route_identifier": "emag-mktp",
        "outbound_number": "0213000000",
        "language": "ro",
        "external_id": "X-9",
        "crm_url": "https://crm.example.com/c/00042"
    });
    app.put_contact(&acme.sync_token, "00042", &body).await;

    let response = app.lookup(&acme.lookup_token, "0722000001").await;

    let text = response.text().await.unwrap();
    assert_eq!(
        with_link_placeholder(&text, &app.address),
        r#"{"id":"00042","name":"Ana","queue_position":3,"direct_line":"SIP/ion-popescu","backend_link":"LINK","route_identifier":"emag-mktp","outbound_number":"0213000000","language":"ro","external_id":"X-9"}"#
    );
}

#[tokio::test]
async fn the_token_may_come_as_a_bearer_header() {
    let app = spawn_app().await;
    let acme = app.create_tenant("acme", "RO").await;
    app.put_contact(&acme.sync_token, "12345", &john_doe())
        .await;

    let response = app
        .http
        .get(format!("{}/api/lookup?telephone=0700000000", app.address))
        .bearer_auth(&acme.lookup_token)
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 200);
    assert_eq!(response.json::<Value>().await.unwrap()["name"], "John Doe");
}

#[tokio::test]
async fn a_tenant_never_sees_another_tenants_contacts() {
    let app = spawn_app().await;
    let acme = app.create_tenant("acme", "RO").await;
    let globex = app.create_tenant("globex", "RO").await;
    app.put_contact(
        &acme.sync_token,
        "1",
        &json!({"name": "Acme Customer", "phones": ["0721111111"]}),
    )
    .await;
    app.put_contact(
        &acme.sync_token,
        "2",
        &json!({"name": "Shared Acme", "phones": ["0722222222"]}),
    )
    .await;
    app.put_contact(
        &globex.sync_token,
        "2",
        &json!({"name": "Shared Globex", "phones": ["0722222222"]}),
    )
    .await;

    let response = app.lookup(&globex.lookup_token, "0721111111").await;
    assert_eq!(response.text().await.unwrap(), UNKNOWN_ANSWER);
    let acme_answer = app.lookup_json(&acme.lookup_token, "0722222222").await;
    let globex_answer = app.lookup_json(&globex.lookup_token, "0722222222").await;
    assert_eq!(acme_answer["name"], "Shared Acme");
    assert_eq!(globex_answer["name"], "Shared Globex");
    // Globex's sync token cannot read Acme's contact either.
    let read = app.get_contact(&globex.sync_token, "1").await;
    assert_eq!(read.status(), 404);
}

#[tokio::test]
async fn a_number_shared_by_several_contacts_resolves_to_the_most_recently_changed() {
    let app = spawn_app().await;
    let older = json!({"name": "Old Owner", "phones": ["0733333333"], "updated_at": "2026-01-01T00:00:00Z"});
    let newer = json!({"name": "New Owner", "phones": ["0733333333"], "updated_at": "2026-06-01T00:00:00Z"});
    // Written in both orders (one tenant each), so neither "first written wins" nor
    // "last written wins" can pass for "most recently changed".
    for (slug, first, second) in [
        ("acme", (&newer, "9"), (&older, "1")),
        ("globex", (&older, "1"), (&newer, "9")),
    ] {
        let tenant = app.create_tenant(slug, "RO").await;
        for (body, id) in [first, second] {
            let put = app.put_contact(&tenant.sync_token, id, body).await;
            assert_eq!(put.status(), 201, "{slug}: contact {id}");
        }
        for _ in 0..3 {
            let answer = app.lookup_json(&tenant.lookup_token, "0733333333").await;
            assert_eq!(answer["name"], "New Owner", "{slug}");
            assert_eq!(answer["id"], 9, "{slug}");
        }
    }
}

#[tokio::test]
async fn every_authentication_failure_is_a_401_without_contact_data() {
    let app = spawn_app().await;
    let acme = app.create_tenant("acme", "RO").await;
    app.put_contact(&acme.sync_token, "12345", &john_doe())
        .await;
    let revoked = app.revoked_lookup_token("acme");
    eventually(
        PROPAGATION,
        "the revocation reaches the gateway",
        || async { app.lookup(&revoked, "0700000000").await.status() == 401 },
    )
    .await;

    let lookup_url = format!("{}/api/lookup?telephone=0700000000", app.address);
    let cases = [
        ("no token", app.http.get(&lookup_url)),
        (
            "wrong token",
            app.http.get(format!("{lookup_url}&token=cgl_wrong")),
        ),
        ("empty token", app.http.get(format!("{lookup_url}&token="))),
        (
            "revoked token",
            app.http.get(format!("{lookup_url}&token={revoked}")),
        ),
        (
            "sync token used for lookup",
            app.http
                .get(format!("{lookup_url}&token={}", acme.sync_token)),
        ),
        (
            "two different token parameters",
            app.http.get(format!(
                "{lookup_url}&token={}&token={revoked}",
                acme.lookup_token
            )),
        ),
        (
            "two different Bearer headers",
            app.http
                .get(&lookup_url)
                .header("Authorization", format!("Bearer {}", acme.lookup_token))
                .header("Authorization", format!("Bearer {revoked}")),
        ),
        (
            "not a bearer header",
            app.http
                .get(&lookup_url)
                .header("Authorization", format!("Basic {}", acme.lookup_token)),
        ),
        (
            "lookup token used for sync",
            app.http
                .get(format!("{}/api/v1/contacts/12345", app.address))
                .bearer_auth(&acme.lookup_token),
        ),
        (
            "sync token in the query string",
            app.http.get(format!(
                "{}/api/v1/contacts/12345?token={}",
                app.address, acme.sync_token
            )),
        ),
    ];
    for (case, request) in cases {
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 401, "{case}");
        assert_eq!(
            response.headers()["content-type"],
            "application/json",
            "{case}"
        );
        let body = response.text().await.unwrap();
        let json: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(json["error"], "unauthorized", "{case}");
        assert!(!body.contains("John"), "{case}: {body}");
    }
}

#[tokio::test]
async fn a_source_address_outside_the_allowlist_is_refused_with_403() {
    let app = spawn_app().await;
    let acme = app
        .create_tenant_allowing("acme", "RO", &["203.0.113.0/24"])
        .await;
    app.put_contact(&acme.sync_token, "12345", &john_doe())
        .await;

    eventually(PROPAGATION, "the allowlist reaches the gateway", || async {
        app.lookup(&acme.lookup_token, "0700000000").await.status() == 403
    })
    .await;
    let refused = app.lookup(&acme.lookup_token, "0700000000").await;
    assert_eq!(refused.status(), 403);
    let body = refused.text().await.unwrap();
    assert!(body.contains("allowlist"), "{body}");
    assert!(!body.contains("John"), "{body}");

    assert!(
        app.cli(&["allow", "add", "--tenant", "acme", "127.0.0.1"])
            .status
            .success()
    );
    eventually(
        PROPAGATION,
        "the widened allowlist reaches the gateway",
        || async { app.lookup(&acme.lookup_token, "0700000000").await.status() == 200 },
    )
    .await;
}

#[tokio::test]
async fn hostile_lookup_parameters_get_a_clear_400() {
    let app = spawn_app().await;
    let acme = app.create_tenant("acme", "RO").await;
    let long = "1".repeat(65);
    let response = app.lookup(&acme.lookup_token, &long).await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["message"].as_str().unwrap().contains("telephone"),
        "{body}"
    );

    let response = app
        .http
        .get(format!(
            "{}/api/lookup?telephone=0700000000&dnid={long}&token={}",
            app.address, acme.lookup_token
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert!(body["message"].as_str().unwrap().contains("dnid"), "{body}");

    // PostgreSQL text cannot hold a NUL: such a dnid must not reach the lookup log.
    let response = app
        .get_raw(&format!(
            "/api/lookup?telephone=0700000000&dnid=021%00&token={}",
            acme.lookup_token
        ))
        .await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("dnid must not contain control characters"),
        "{body}"
    );
}

#[tokio::test]
async fn a_plus_the_pbx_did_not_encode_still_finds_a_foreign_caller() {
    let app = spawn_app().await;
    let acme = app.create_tenant("acme", "RO").await;
    let body = json!({"name": "New York", "phones": ["+1 212 555 0123"]});
    app.put_contact(&acme.sync_token, "9", &body).await;

    for raw in ["+12125550123", "%2B12125550123", "+1+212+555+0123"] {
        let response = app
            .get_raw(&format!(
                "/api/lookup?telephone={raw}&token={}",
                acme.lookup_token
            ))
            .await;
        assert_eq!(response.status(), 200);
        let answer: Value = response.json().await.unwrap();
        assert_eq!(answer["name"], "New York", "telephone={raw}");
    }
}

#[tokio::test]
async fn a_token_in_the_header_and_another_in_the_query_is_refused() {
    let app = spawn_app().await;
    let acme = app.create_tenant("acme", "RO").await;
    let globex = app.create_tenant("globex", "RO").await;
    app.put_contact(&acme.sync_token, "12345", &john_doe())
        .await;
    let url = |token: &str| {
        format!(
            "{}/api/lookup?telephone=0700000000&token={token}",
            app.address
        )
    };

    let same = app
        .http
        .get(url(&acme.lookup_token))
        .bearer_auth(&acme.lookup_token)
        .send()
        .await
        .unwrap();
    assert_eq!(same.status(), 200);
    assert_eq!(same.json::<Value>().await.unwrap()["name"], "John Doe");
    // Basic credentials are for a proxy on the way; the parameter carries the token.
    let basic = app
        .http
        .get(url(&acme.lookup_token))
        .basic_auth("pbx", Some("proxy-password"))
        .send()
        .await
        .unwrap();
    assert_eq!(basic.status(), 200);
    assert_eq!(basic.json::<Value>().await.unwrap()["name"], "John Doe");

    for (query, header) in [
        (&globex.lookup_token, &acme.lookup_token),
        (&acme.lookup_token, &globex.lookup_token),
        (&"cgl_wrong".to_owned(), &acme.lookup_token),
    ] {
        let response = app
            .http
            .get(url(query))
            .bearer_auth(header)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401);
        let body = response.text().await.unwrap();
        assert!(body.contains("different tokens"), "{body}");
        assert!(!body.contains("John"), "{body}");
    }
}

#[tokio::test]
async fn lookup_answers_only_get() {
    let app = spawn_app().await;
    let acme = app.create_tenant("acme", "RO").await;
    let response = app
        .http
        .post(format!(
            "{}/api/lookup?token={}",
            app.address, acme.lookup_token
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 405);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "method_not_allowed");
}

#[tokio::test]
async fn health_and_readiness_answer_head_probes_too() {
    let app = spawn_app().await;
    for path in ["/healthz", "/readyz"] {
        let url = format!("{}{path}", app.address);
        let head = app.http.head(&url).send().await.unwrap();
        assert_eq!(head.status(), 200, "{path}");
        assert_eq!(head.text().await.unwrap(), "", "{path}");
        let post = app.http.post(&url).send().await.unwrap();
        assert_eq!(post.status(), 405, "{path}");
        assert_eq!(post.headers()["allow"], "GET, HEAD", "{path}");
    }
}

#[tokio::test]
async fn an_argentine_mobile_meets_its_contact_with_or_without_the_9_and_changes_follow() {
    let app = spawn_app().await;
    let other = crate::helpers::spawn_instance(&app.db.url, |_| {}).await;
    let ba = app.create_tenant("ba", "AR").await;
    let contact = |name: &str, phone: &str| json!({"name": name, "phones": [phone]});
    for (id, name, phone) in [
        ("1", "Sin Nueve", "+54 11 1234-5678"),
        ("2", "Con Nueve", "+54 9 11 8765 4321"),
        ("3", "Fijo", "+54 11 5555 0000"),
        ("4", "Movil", "+54 9 11 5555 0000"),
    ] {
        let put = app
            .put_contact(&ba.sync_token, id, &contact(name, phone))
            .await;
        assert_eq!(put.status(), 201);
    }
    let name_at = |address: String, telephone: &'static str| {
        let (app, token) = (&app, &ba.lookup_token);
        async move {
            let answer: Value = app
                .lookup_at(&address, token, telephone)
                .await
                .json()
                .await
                .unwrap();
            answer["name"].clone()
        }
    };
    let name = |telephone| name_at(app.address.clone(), telephone);

    // The caller's mobile form (+54 9, or the national 15) meets the contact stored
    // without the 9, and the other way round.
    assert_eq!(name("+54 9 11 1234 5678").await, "Sin Nueve");
    assert_eq!(name("011 15 1234-5678").await, "Sin Nueve");
    assert_eq!(name("+54 11 8765 4321").await, "Con Nueve");
    // A number's own form wins over its other form.
    assert_eq!(name("+54 11 5555 0000").await, "Fijo");
    assert_eq!(name("+54 9 11 5555 0000").await, "Movil");

    // The answers just cached under the caller's form follow changes to the contact,
    // on this instance and on another.
    // (Once the other instance has heard of the contact: until then its number index
    // answers unknown.)
    crate::helpers::eventually(
        crate::helpers::PROPAGATION,
        "the contact reaches the other instance",
        || async { name_at(other.clone(), "+54 9 11 1234 5678").await == "Sin Nueve" },
    )
    .await;
    let renamed = app
        .put_contact(
            &ba.sync_token,
            "1",
            &contact("Renombrado", "+54 11 1234-5678"),
        )
        .await;
    assert_eq!(renamed.status(), 200);
    assert_eq!(name("+54 9 11 1234 5678").await, "Renombrado");
    eventually(
        PROPAGATION,
        "the other instance sees the rename",
        || async { name_at(other.clone(), "+54 9 11 1234 5678").await == "Renombrado" },
    )
    .await;
    let deleted = app
        .http
        .delete(format!("{}/api/v1/contacts/2", app.address))
        .bearer_auth(&ba.sync_token)
        .send()
        .await
        .unwrap();
    assert!(deleted.status().is_success());
    assert_eq!(name("+54 11 8765 4321").await, Value::Null);
}
