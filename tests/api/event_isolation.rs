//! One tenant's events can never fail another's: requests of many tenants share a
//! transaction, so what the database would refuse is refused where it enters, and what
//! slips through fails only its own request.

use serde_json::json;

use crate::calls::{call_tenant, named_fields};
use crate::helpers::{PROPAGATION, eventually, spawn_app};

#[tokio::test]
async fn a_nul_in_any_event_input_is_refused_naming_the_field_and_nothing_is_written() {
    let app = spawn_app().await;
    let t = call_tenant(&app, "acme").await;
    let bodies = [
        (
            json!({"call_id": "n1", "event": "started", "note": "a\u{0}b"}),
            "note",
        ),
        (
            json!({"call_id": "n1", "event": "started", "caller_name": "Ana\u{0}"}),
            "caller_name",
        ),
        (json!({"call_id": "n1\u{0}", "event": "started"}), "call_id"),
        (
            json!({"call_id": "n1", "event": "started", "tags": ["vip\u{0}"]}),
            "tags",
        ),
        (
            json!({"call_id": "n1", "event": "started", "note": "\u{1b}[2J"}),
            "note",
        ),
    ];
    for (body, field) in bodies {
        let response = app.post_events(&t.pbx, &body).await;
        assert_eq!(response.status(), 422, "{body}");
        assert_eq!(named_fields(response).await, [field], "{body}");
    }
    let queries = [
        ("/api/v1/events?call_id=n2&event=started&note=a%00b", "note"),
        ("/api/v1/events?call_id=n2%00&event=started", "call_id"),
        (
            "/api/v1/events/focalscope?CallType=API&Event=pickup&CallID=n3&Extra=%00",
            "Extra",
        ),
        (
            "/api/v1/events/call-end?call_id=n4&ivr_choice=2%00",
            "ivr_choice",
        ),
    ];
    for (query, field) in queries {
        let response = app.get_raw(&format!("{query}&token={}", t.pbx)).await;
        assert_eq!(response.status(), 422, "{query}");
        assert_eq!(named_fields(response).await, [field], "{query}");
    }
    for key in ["n1", "n2", "n3", "n4"] {
        assert!(app.call_by_key(&t.report, key).await.is_empty(), "{key}");
    }
}

#[tokio::test]
async fn a_lookup_whose_caller_id_holds_a_nul_still_answers_and_links_its_call() {
    let app = spawn_app().await;
    let t = call_tenant(&app, "acme").await;
    let response = app
        .get_raw(&format!(
            "/api/lookup?telephone=0721%00234567&call_id=L-nul&token={}",
            t.pbx
        ))
        .await;
    assert_eq!(response.status(), 200);
    eventually(PROPAGATION, "the lookup opens its call", || async {
        !app.call_by_key(&t.report, "L-nul").await.is_empty()
    })
    .await;
}

#[tokio::test]
async fn a_value_the_database_refuses_fails_only_its_own_request_not_its_batch() {
    let app = spawn_app().await;
    let acme = call_tenant(&app, "acme").await;
    let globex = call_tenant(&app, "globex").await;
    // Whatever validation may miss one day: the database refuses this call's event as it
    // refuses a NUL (SQLSTATE 22P05).
    app.pool
        .get()
        .await
        .unwrap()
        .batch_execute(
            "CREATE FUNCTION refuse_poison() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN
               IF NEW.raw->>'call_id' LIKE 'poison%' THEN
                 RAISE EXCEPTION 'refused by the test' USING ERRCODE = '22P05';
               END IF;
               RETURN NEW;
             END $$;
             CREATE TRIGGER refuse_poison BEFORE INSERT ON call_events
               FOR EACH ROW EXECUTE FUNCTION refuse_poison();",
        )
        .await
        .unwrap();
    // Many requests at once share the writer's transactions, both tenants' and the
    // poisoned ones among them.
    let mut sent = Vec::new();
    let app = &app;
    for i in 0..40 {
        let (token, call_id) = match i % 4 {
            0 => (&acme.pbx, format!("poison-{i}")),
            1 => (&acme.pbx, format!("acme-{i}")),
            _ => (&globex.pbx, format!("globex-{i}")),
        };
        let body = json!({"call_id": call_id, "event": "started"});
        sent.push(async move { (call_id, app.post_events(token, &body).await.status()) });
    }
    for (call_id, status) in futures_util::future::join_all(sent).await {
        let expected = if call_id.starts_with("poison") {
            422
        } else {
            200
        };
        assert_eq!(status, expected, "{call_id}");
    }
    for i in 0..40 {
        let (report, call_id) = match i % 4 {
            0 => (&acme.report, format!("poison-{i}")),
            1 => (&acme.report, format!("acme-{i}")),
            _ => (&globex.report, format!("globex-{i}")),
        };
        let found = app.call_by_key(report, &call_id).await;
        assert_eq!(found.len(), usize::from(i % 4 != 0), "{call_id}");
    }
}
