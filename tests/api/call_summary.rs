//! A new event updates its call from the call's bounded summary, not by re-reading all of
//! its events (issue 29): the record stays the one the whole set of events makes.

use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use serde_json::{Value, json};

use crate::calls::call_tenant;
use crate::helpers::{TestApp, spawn_app};

/// A busy click-to-call: 40 legs, 600 events, agents named and by extension, tags,
/// unknown fields, times that tie.
fn busy_call() -> Vec<Value> {
    let agents = ["Ana(200)", "200", "Bo(201)", "201", "200"];
    (0..600)
        .map(|i| {
            let kind = ["started", "ringing", "pickup", "transfer", "hangup"][i % 5];
            json!({
                "call_id": format!("busy-{}", i % 40),
                "event": kind,
                "at": format!("2026-12-01T10:{:02}:{:02}Z", i / 60 % 60, i % 37),
                "request_id": 42,
                "leg": if i % 40 == 0 { "agent" } else { "external" },
                "agent": agents[i % agents.len()],
                "tags": format!("t{},t{}", i % 7, i % 3),
                "caller": format!("07212345{:02}", i % 13),
                "queue": format!("q{}", i % 11),
                "seq": i.to_string(),
            })
        })
        .collect()
}

/// The call's record without what names this one call (its ids).
async fn record(app: &TestApp, report: &str) -> Value {
    let mut calls = app.call_by_key(report, "busy-7").await;
    assert_eq!(calls.len(), 1, "{calls:?}");
    let mut call = calls.remove(0);
    let object = call.as_object_mut().unwrap();
    for id in ["call_id", "id", "report_call_id", "Id", "CallId"] {
        object.remove(id);
    }
    call
}

#[tokio::test]
async fn a_call_of_many_events_sent_one_batch_at_a_time_answers_the_record_of_all_at_once() {
    let app = spawn_app().await;
    let whole = call_tenant(&app, "whole").await;
    let pieces = call_tenant(&app, "pieces").await;
    let events = busy_call();
    let all = app.post_events(&whole.pbx, &json!(events)).await;
    assert_eq!(all.status(), 200);

    // The same events in another order, a few at a time, some of them twice.
    let mut shuffled = events.clone();
    shuffled.shuffle(&mut StdRng::seed_from_u64(29));
    shuffled.extend(events[..30].iter().cloned());
    for chunk in shuffled.chunks(7) {
        let response = app.post_events(&pieces.pbx, &json!(chunk)).await;
        assert_eq!(response.status(), 200);
    }

    let expected = record(&app, &whole.report).await;
    assert_eq!(record(&app, &pieces.report).await, expected);
    assert_eq!(expected["legs"].as_array().unwrap().len(), 40);
    assert_eq!(expected["activecallkey"], "busy-0");
    assert_eq!(expected["started_at"], "2026-12-01T10:00:00Z");
    let mut tags: Vec<&str> = expected["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    tags.sort_unstable();
    assert_eq!(tags, ["t0", "t1", "t2", "t3", "t4", "t5", "t6"]);

    // Deliveries see the record, not the summary kept for writing it.
    let client = app.pool.get().await.unwrap();
    let (tenant, call): (i64, uuid::Uuid) = client
        .query_one(
            "SELECT c.tenant_id, c.id FROM calls c JOIN tenants t ON t.id = c.tenant_id
             WHERE t.slug = 'whole' AND c.summary IS NOT NULL",
            &[],
        )
        .await
        .map(|r| (r.get(0), r.get(1)))
        .unwrap();
    let facts = cidgate::store::deliveries::call_facts(
        &client,
        cidgate::domain::TenantId(tenant),
        &call.to_string(),
    )
    .await
    .unwrap()
    .unwrap();
    let snapshot = serde_json::to_value(&facts).unwrap();
    assert_eq!(snapshot["legs"].as_array().unwrap().len(), 40);
    assert!(snapshot.get("summary").is_none(), "{snapshot}");
}

#[tokio::test]
async fn a_new_event_reads_the_calls_summary_not_its_events_and_an_older_call_gets_one() {
    let app = spawn_app().await;
    let t = call_tenant(&app, "acme").await;
    let events = busy_call();
    assert_eq!(app.post_events(&t.pbx, &json!(events)).await.status(), 200);
    let before = record(&app, &t.report).await;

    // Were a new event to re-read the call's events, the record would lose what the
    // removed ones gave (39 legs, the tags, the unknown fields).
    let client = app.pool.get().await.unwrap();
    let removed = client
        .execute(
            "DELETE FROM call_events WHERE raw->>'call_id' <> 'busy-7'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(removed, 585);
    let late = json!({"call_id": "busy-7", "event": "hangup", "at": "2026-12-01T11:00:00Z"});
    assert_eq!(app.post_events(&t.pbx, &late).await.status(), 200);
    let after = record(&app, &t.report).await;
    assert_eq!(after["legs"].as_array().unwrap().len(), 40);
    assert_eq!(after["tags"], before["tags"]);
    assert_eq!(after["extra"], before["extra"]);
    assert_eq!(after["agent"], before["agent"]);

    // A call written before summaries were kept has none: its events are read once.
    client
        .execute("UPDATE calls SET summary = NULL", &[])
        .await
        .unwrap();
    let later = json!({"call_id": "busy-7", "event": "hangup", "at": "2026-12-01T11:00:01Z"});
    assert_eq!(app.post_events(&t.pbx, &later).await.status(), 200);
    let remade = record(&app, &t.report).await;
    assert_eq!(remade["legs"].as_array().unwrap().len(), 1, "{remade}");
    let kept: i64 = client
        .query_one("SELECT count(*) FROM calls WHERE summary IS NOT NULL", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(kept, 1, "the call keeps a summary again");
}
