//! Caps that keep one tenant's calls from hurting the others: legs and events per call,
//! events per second and stored calls per tenant.

use serde_json::{Value, json};

use crate::calls::call_tenant;
use crate::helpers::{PROPAGATION, TestApp, eventually, spawn_app, spawn_app_with};

async fn refusal(response: reqwest::Response) -> (u16, Vec<String>, String) {
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap();
    let fields = body["fields"]
        .as_array()
        .map(|f| {
            f.iter()
                .map(|f| f["field"].as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default();
    (
        status,
        fields,
        body["message"].as_str().unwrap_or("").to_owned(),
    )
}

async fn metric(app: &TestApp, line_prefix: &str) -> f64 {
    let text = app
        .http
        .get(format!("{}/metrics", app.address))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(line_prefix))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

fn leg(call_id: &str, event: &str) -> Value {
    json!({"call_id": call_id, "event": event, "request_id": 77})
}

#[tokio::test]
async fn a_call_past_its_legs_or_events_cap_refuses_them_naming_the_cap_and_other_tenants_go_on() {
    let app = spawn_app_with(|s| {
        s.call_max_legs = 3;
        s.call_max_events = 5;
    })
    .await;
    let acme = call_tenant(&app, "acme").await;
    let globex = call_tenant(&app, "globex").await;
    let three_legs = json!([
        leg("a", "started"),
        leg("b", "started"),
        leg("c", "started")
    ]);
    assert_eq!(app.post_events(&acme.pbx, &three_legs).await.status(), 200);

    let (status, fields, message) =
        refusal(app.post_events(&acme.pbx, &leg("d", "started")).await).await;
    assert_eq!((status, fields), (422, vec!["call_id".to_owned()]));
    assert!(message.contains("CIDGATE_CALL_MAX_LEGS"), "{message}");
    // A request holding one event over the cap is refused whole.
    let mixed = json!([leg("a", "pickup"), leg("e", "started")]);
    assert_eq!(app.post_events(&acme.pbx, &mixed).await.status(), 422);

    // Events of the call's own legs go on up to the events cap (3 recorded so far).
    for event in [leg("a", "pickup"), leg("b", "pickup")] {
        assert_eq!(app.post_events(&acme.pbx, &event).await.status(), 200);
    }
    let (status, _, message) = refusal(app.post_events(&acme.pbx, &leg("a", "hangup")).await).await;
    assert_eq!(status, 422);
    assert!(message.contains("CIDGATE_CALL_MAX_EVENTS"), "{message}");
    // A repeat of a recorded event is still a duplicate, not a new event.
    let repeat: Value = app
        .post_events(&acme.pbx, &leg("a", "pickup"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(repeat["duplicates"], 1);

    let call = app.call_by_key(&acme.report, "a").await;
    assert_eq!(call[0]["legs"].as_array().unwrap().len(), 3, "{call:?}");
    assert!(app.call_by_key(&acme.report, "d").await.is_empty());
    assert!(app.call_by_key(&acme.report, "e").await.is_empty());

    // Requests over a cap sharing a batch with another tenant's fail alone.
    let app = &app;
    let mut sent = Vec::new();
    for i in 0..20 {
        let (token, body) = if i % 4 == 0 {
            (&acme.pbx, leg("a", "hangup"))
        } else {
            (
                &globex.pbx,
                json!({"call_id": format!("g-{i}"), "event": "started"}),
            )
        };
        sent.push(async move { (i, app.post_events(token, &body).await.status()) });
    }
    for (i, status) in futures_util::future::join_all(sent).await {
        assert_eq!(status, if i % 4 == 0 { 422 } else { 200 }, "{i}");
    }
    assert!(
        metric(
            app,
            "cidgate_call_events_capped_total{limit=\"max_events\"} "
        )
        .await
            >= 5.0
    );
    assert!(metric(app, "cidgate_call_events_capped_total{limit=\"max_legs\"} ").await >= 2.0);
}

#[tokio::test]
async fn events_of_one_call_sent_at_once_make_one_call_with_all_of_them() {
    let app = spawn_app().await;
    let t = call_tenant(&app, "acme").await;
    let app = &app;
    let mut sent = Vec::new();
    // Many requests that would each create the call, written side by side.
    for i in 0..24 {
        let body = json!({"call_id": format!("leg-{}", i % 6), "event": "ringing",
                          "request_id": 5, "code": i.to_string()});
        let token = &t.pbx;
        sent.push(async move { app.post_events(token, &body).await.status() });
    }
    for status in futures_util::future::join_all(sent).await {
        assert_eq!(status, 200);
    }
    let call = app.call_by_key(&t.report, "leg-0").await;
    assert_eq!(call.len(), 1);
    assert_eq!(call[0]["legs"].as_array().unwrap().len(), 6, "{call:?}");
    for i in 1..6 {
        let other = app.call_by_key(&t.report, &format!("leg-{i}")).await;
        assert_eq!(other[0]["call_id"], call[0]["call_id"], "leg-{i}");
    }
}

#[tokio::test]
async fn a_tenant_past_its_event_rate_gets_429_with_retry_after_and_others_do_not() {
    let app = spawn_app_with(|s| s.event_rate = 1).await;
    let acme = call_tenant(&app, "acme").await;
    let globex = call_tenant(&app, "globex").await;
    // The burst holds one request of the most events (1,000), whatever the rate.
    let thousand = |prefix: &str| -> Value {
        (0..1000)
            .map(|i| json!({"call_id": format!("{prefix}-{i}"), "event": "started"}))
            .collect()
    };
    assert_eq!(
        app.post_events(&acme.pbx, &thousand("a")).await.status(),
        200
    );
    // As many again: however long the first request took to write (its events were
    // counted when it arrived), far fewer than 1,000 can have been refilled since.
    let over = app.post_events(&acme.pbx, &thousand("a-x")).await;
    assert_eq!(over.status(), 429);
    let retry: u64 = over.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry >= 1, "{retry}");
    assert!(app.call_by_key(&acme.report, "a-x-0").await.is_empty());
    // Another tenant has its own allowance.
    assert_eq!(
        app.post_events(&globex.pbx, &thousand("g")).await.status(),
        200
    );
    assert!(metric(&app, "cidgate_rate_limited_total{limit=\"events\"} ").await >= 1.0);

    // The operator raises acme's own rate.
    let out = app.cli(&["tenant", "set", "acme", "--event-rate", "100000"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    eventually(PROPAGATION, "acme's new event rate applies", || async {
        app.post_events(&acme.pbx, &thousand("b")).await.status() == 200
    })
    .await;
    let bad = app.cli(&["tenant", "set", "acme", "--event-rate", "0"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--event-rate"));
}

#[tokio::test]
async fn a_tenant_at_its_max_calls_cannot_start_another_but_its_calls_go_on() {
    let app = spawn_app().await;
    let acme = call_tenant(&app, "acme").await;
    let globex = call_tenant(&app, "globex").await;
    let out = app.cli(&["tenant", "set", "acme", "--max-calls", "2"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for id in ["m1", "m2"] {
        let body = json!({"call_id": id, "event": "started"});
        assert_eq!(app.post_events(&acme.pbx, &body).await.status(), 200);
    }
    let third = app
        .post_events(&acme.pbx, &json!({"call_id": "m3", "event": "started"}))
        .await;
    let (status, fields, message) = refusal(third).await;
    assert_eq!((status, fields), (422, vec!["call_id".to_owned()]));
    assert!(message.contains("--max-calls"), "{message}");
    assert!(app.call_by_key(&acme.report, "m3").await.is_empty());
    // Events of the calls it has are still recorded; another tenant is not capped.
    let hangup = json!({"call_id": "m1", "event": "hangup"});
    assert_eq!(app.post_events(&acme.pbx, &hangup).await.status(), 200);
    let theirs = json!([{"call_id": "g1", "event": "started"}, {"call_id": "g2", "event": "started"},
                        {"call_id": "g3", "event": "started"}]);
    assert_eq!(app.post_events(&globex.pbx, &theirs).await.status(), 200);
    assert!(
        metric(
            &app,
            "cidgate_call_events_capped_total{limit=\"max_calls\"} "
        )
        .await
            >= 1.0
    );
}
