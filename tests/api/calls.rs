//! Call events in (JSON, query string, FocalScope adapter, call-end) and CDRs out.

use std::collections::HashSet;

use cidgate::domain::{TenantSlug, TokenScope, TokenScopes};
use cidgate::store;
use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app};

/// A tenant's PBX token (`lookup,events`) and a `report` token.
pub struct CallTenant {
    pub pbx: String,
    pub report: String,
    pub sync: String,
}

pub async fn call_tenant(app: &TestApp, slug: &str) -> CallTenant {
    let created = app.create_tenant(slug, "RO").await;
    let client = app.pool.get().await.unwrap();
    let tenant = store::tenants::find_by_slug(&client, &TenantSlug::parse(slug).unwrap())
        .await
        .unwrap()
        .unwrap();
    let scopes = TokenScopes::parse("lookup,events").unwrap();
    let (_, pbx) = store::tokens::create(&client, tenant.id, scopes, "pbx")
        .await
        .unwrap();
    let (_, report) = store::tokens::create(&client, tenant.id, TokenScope::Report, "crm")
        .await
        .unwrap();
    app.wait_for_directory().await;
    CallTenant {
        pbx: pbx.expose().to_owned(),
        report: report.expose().to_owned(),
        sync: created.sync_token,
    }
}

/// The fields a 4xx answer names, in order.
pub async fn named_fields(response: reqwest::Response) -> Vec<String> {
    let error: Value = response.json().await.unwrap();
    error["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["field"].as_str().unwrap().to_owned())
        .collect()
}

/// The reference's four callbacks of RequestID 513 (both parties picked up, recorded).
const FOCALSCOPE: [&str; 4] = [
    "CallType=API&Event=pickup&CallID=1000000087849&RequestID=513&EventCode=2&IsCallRecorded=&Guid=bfa2dbc8-ab8a-34c8-f243-c2aad8c446ff",
    "CallType=Outgoing&Event=pickup&CallID=1000000087850&RequestID=513&EventCode=2&IsCallRecorded=&Guid=923041af-adb5-a8ae-f29c-e60ea5e17448",
    "CallType=Outgoing&Event=hangup&CallID=1000000087850&RequestID=513&EventCode=1&IsCallRecorded=1&Guid=923041af-adb5-a8ae-f29c-e60ea5e17448",
    "CallType=API&Event=hangup&CallID=1000000087849&RequestID=513&EventCode=1&IsCallRecorded=1&Guid=bfa2dbc8-ab8a-34c8-f243-c2aad8c446ff",
];

impl TestApp {
    pub async fn post_events(&self, token: &str, body: &Value) -> reqwest::Response {
        self.http
            .post(format!("{}/api/v1/events", self.address))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .expect("events request")
    }

    pub(crate) async fn cdr(&self, token: &str, query: &[(&str, &str)]) -> Value {
        let response = self
            .http
            .get(format!("{}/api/v1/reportsCDRLogs", self.address))
            .bearer_auth(token)
            .query(query)
            .send()
            .await
            .expect("CDR request");
        assert_eq!(response.status(), 200, "CDR query {query:?}");
        response.json().await.unwrap()
    }

    pub async fn call_by_key(&self, token: &str, key: &str) -> Vec<Value> {
        let found = self.cdr(token, &[("activecallkey", key)]).await;
        found["CallList"].as_array().unwrap().clone()
    }
}

#[tokio::test]
async fn the_reference_focalscope_callbacks_make_one_call_with_two_legs_in_any_order() {
    let app = spawn_app().await;
    let t = call_tenant(&app, "acme").await;
    // Out of order, and every callback twice.
    for i in [3, 1, 3, 0, 2, 1, 0, 2] {
        let response = app
            .get_raw(&format!(
                "/api/v1/events/focalscope?{}&token={}",
                FOCALSCOPE[i], t.pbx
            ))
            .await;
        assert_eq!(response.status(), 200);
    }
    let calls = app.call_by_key(&t.report, "1000000087850").await;
    assert_eq!(calls.len(), 1);
    let call = &calls[0];
    assert_eq!(call["request_id"], 513);
    assert_eq!(call["activecallkey"], "1000000087849", "the first leg's id");
    assert_eq!(call["direction"], "Outbound");
    assert_eq!(call["outcome"], "answered");
    assert_eq!(call["recorded"], true);
    let legs = call["legs"].as_array().unwrap();
    assert_eq!(legs.len(), 2);
    let roles: HashSet<&str> = legs.iter().map(|l| l["leg"].as_str().unwrap()).collect();
    assert_eq!(roles, HashSet::from(["agent", "external"]));
    assert!(legs.iter().all(|l| l["outcome"] == "answered"));
    // Every key finds the same call: the other leg, a GUID, the UUID.
    let id = call["call_id"].as_str().unwrap();
    for key in ["1000000087849", "bfa2dbc8-ab8a-34c8-f243-c2aad8c446ff", id] {
        let found = app.call_by_key(&t.report, key).await;
        assert_eq!(found.len(), 1, "{key}");
        assert_eq!(found[0]["call_id"], id);
    }
    assert!(app.call_by_key(&t.report, "nope").await.is_empty());
}

#[tokio::test]
async fn a_repeated_event_is_recorded_once_and_answered_200_both_times() {
    let app = spawn_app().await;
    let t = call_tenant(&app, "acme").await;
    let event = json!({"call_id": "c-1", "event": "started", "at": "2026-11-30T10:00:00Z",
                       "direction": "inbound", "caller": "0721 234 567"});
    let first: Value = app.post_events(&t.pbx, &event).await.json().await.unwrap();
    assert_eq!(
        first,
        json!({"received": 1, "recorded": 1, "duplicates": 0})
    );
    let again = app.post_events(&t.pbx, &json!([event, event])).await;
    assert_eq!(again.status(), 200);
    let again: Value = again.json().await.unwrap();
    assert_eq!(
        again,
        json!({"received": 2, "recorded": 0, "duplicates": 2})
    );
}

#[tokio::test]
async fn out_of_order_events_give_the_same_call_and_the_contact_is_matched() {
    let app = spawn_app().await;
    let t = call_tenant(&app, "acme").await;
    let put = app
        .put_contact(
            &t.sync,
            "42",
            &json!({"name": "Ion Popescu", "phones": ["+40721234567"]}),
        )
        .await;
    assert!(put.status().is_success());
    let events = [
        json!({"call_id": "x-9", "event": "hangup", "at": "2026-11-30T10:05:00Z", "agent": "Ana(200)"}),
        json!({"call_id": "x-9", "event": "pickup", "at": "2026-11-30T10:00:20Z", "agent": "Ana(200)"}),
        json!({"call_id": "x-9", "event": "started", "at": "2026-11-30T10:00:00Z",
               "direction": "Inbound", "caller": "0721234567", "dnis": "0210000000",
               "tags": "vip", "queue": "sales"}),
    ];
    for event in &events {
        assert_eq!(app.post_events(&t.pbx, event).await.status(), 200);
    }
    let call = &app.call_by_key(&t.report, "x-9").await[0];
    assert_eq!(call["caller_number"], "+40721234567");
    assert_eq!(call["contact_id"], "42");
    assert_eq!(call["caller_name"], "Ion Popescu");
    assert_eq!(call["agent"], "Ana(200)");
    assert_eq!(call["outcome"], "answered");
    assert_eq!(call["started_at"], "2026-11-30T10:00:00Z");
    assert_eq!(call["answered_at"], "2026-11-30T10:00:20Z");
    assert_eq!(call["ended_at"], "2026-11-30T10:05:00Z");
    assert_eq!(call["talk_ms"], 280_000);
    assert_eq!(call["duration_ms"], 300_000);
    assert_eq!(call["tags"], json!(["vip"]));
    assert_eq!(call["extra"]["queue"], "sales", "unknown fields are kept");
}

#[tokio::test]
async fn bad_events_are_refused_naming_each_field_and_nothing_is_written() {
    let app = spawn_app().await;
    let t = call_tenant(&app, "acme").await;
    let cases = [
        (json!({"event": "pickup"}), vec!["call_id"]),
        (json!({"call_id": "a", "event": "exploded"}), vec!["event"]),
        (
            json!({"call_id": "a", "event": "pickup", "at": "soon"}),
            vec!["at"],
        ),
        (
            json!({"call_id": "a", "event": "pickup", "direction": "up"}),
            vec!["direction"],
        ),
        (
            json!({"call_id": "a", "event": "pickup", "request_id": "x"}),
            vec!["request_id"],
        ),
        (
            json!({"call_id": "a", "event": "pickup", "recording_url": "ftp://x"}),
            vec!["recording_url"],
        ),
    ];
    for (body, fields) in cases {
        let response = app.post_events(&t.pbx, &body).await;
        assert_eq!(response.status(), 422, "{body}");
        assert_eq!(named_fields(response).await, fields, "{body}");
    }
    // One bad item in a batch: nothing of it is written.
    let batch = json!([{"call_id": "good", "event": "started"}, {"call_id": "bad"}]);
    let response = app.post_events(&t.pbx, &batch).await;
    assert_eq!(response.status(), 422);
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["fields"][0]["index"], 1);
    assert!(app.call_by_key(&t.report, "good").await.is_empty());
    // A query-string event, and a token of another scope.
    let response = app
        .get_raw(&format!("/api/v1/events?call_id=q&token={}", t.pbx))
        .await;
    assert_eq!(response.status(), 422);
    let response = app
        .post_events(&t.report, &json!({"call_id": "a", "event": "pickup"}))
        .await;
    assert_eq!(response.status(), 401);
}

#[tokio::test]
async fn the_call_end_notification_is_read_through_the_tenant_mapping() {
    let app = spawn_app().await;
    let t = call_tenant(&app, "acme").await;
    let mapped = app.cli(&[
        "events",
        "mapping",
        "set",
        "--tenant",
        "acme",
        "caller=ani",
        "call_id=uniqueid",
        "answered_at=answer",
        "at=end",
    ]);
    assert!(
        mapped.status.success(),
        "{}",
        String::from_utf8_lossy(&mapped.stderr)
    );
    let shown = app.cli(&["events", "mapping", "show", "--tenant", "acme"]);
    assert!(
        String::from_utf8(shown.stdout)
            .unwrap()
            .contains("caller=ani")
    );
    let query = format!(
        "/api/v1/events/call-end?uniqueid=1733.7&ani=%2B40721234567&answer=2026-11-30T09:00:10Z&end=2026-11-30T09:01:10Z&ivr_choice=2&token={}",
        t.pbx
    );
    // Whatever the gateway learnt of the mapping, it must be loaded before the call.
    crate::helpers::eventually(
        crate::helpers::PROPAGATION,
        "the mapping is loaded",
        || async { app.get_raw(&query).await.status() == 200 },
    )
    .await;
    let call = &app.call_by_key(&t.report, "1733.7").await[0];
    assert_eq!(call["caller_number"], "+40721234567");
    assert_eq!(call["outcome"], "answered");
    assert_eq!(call["talk_ms"], 60_000);
    assert_eq!(call["extra"]["ivr_choice"], "2");
    // A bad value is named by the IVR's variable.
    let response = app
        .get_raw(&format!(
            "/api/v1/events/call-end?uniqueid=1&end=later&token={}",
            t.pbx
        ))
        .await;
    assert_eq!(response.status(), 422);
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["fields"][0]["field"], "end");
}

#[tokio::test]
async fn another_tenants_calls_are_never_visible() {
    let app = spawn_app().await;
    let a = call_tenant(&app, "alpha").await;
    let b = call_tenant(&app, "beta").await;
    let event = json!({"call_id": "shared-1", "event": "hangup", "at": "2026-11-30T10:00:00Z"});
    assert_eq!(app.post_events(&a.pbx, &event).await.status(), 200);
    assert_eq!(app.call_by_key(&a.report, "shared-1").await.len(), 1);
    assert!(app.call_by_key(&b.report, "shared-1").await.is_empty());
    let id = app.call_by_key(&a.report, "shared-1").await[0]["call_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(app.call_by_key(&b.report, &id).await.is_empty());
    let range = [("startdate", "2026-11-01"), ("finishdate", "2026-12-31")];
    assert_eq!(app.cdr(&b.report, &range).await["CallList"], json!([]));
}

/// Calls `first..first+count` of `token`'s tenant, each ended, a minute apart.
pub(crate) fn ended_calls(first: usize, count: usize) -> Value {
    Value::Array(
        (first..first + count)
            .map(|i| {
                json!({"call_id": format!("p-{i}"), "event": "hangup",
                       "at": 1_764_500_000_000_i64 + i as i64 * 60_000})
            })
            .collect(),
    )
}

#[tokio::test]
async fn a_later_change_to_an_ended_call_brings_it_back_on_a_later_page() {
    let app = spawn_app().await;
    let t = call_tenant(&app, "acme").await;
    assert_eq!(
        app.post_events(&t.pbx, &ended_calls(0, 3)).await.status(),
        200
    );
    let range = [("startdate", "2025-06-01"), ("finishdate", "2026-06-01")];
    let page = app.cdr(&t.report, &range).await;
    assert_eq!(page["CallList"].as_array().unwrap().len(), 3);
    let cursor = page["cursor"].as_str().unwrap().to_owned();
    let empty = app.cdr(&t.report, &[("cursor", &cursor)]).await;
    assert_eq!(empty["CallList"], json!([]));
    let recording = json!({"call_id": "p-1", "event": "recorded",
                           "recording_url": "https://rec.example.com/p-1.wav"});
    assert_eq!(app.post_events(&t.pbx, &recording).await.status(), 200);
    let cursor = empty["cursor"].as_str().unwrap().to_owned();
    let again = app.cdr(&t.report, &[("cursor", &cursor)]).await;
    let calls = again["CallList"].as_array().unwrap();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0]["activecallkey"], "p-1");
    assert_eq!(calls[0]["recording_url"], "https://rec.example.com/p-1.wav");
}

#[tokio::test]
async fn cdrs_come_as_csv_and_the_cli_exports_the_same() {
    let app = spawn_app().await;
    let t = call_tenant(&app, "acme").await;
    let set = app.cli(&["tenant", "set", "acme", "--time-zone", "Europe/Bucharest"]);
    assert!(
        set.status.success(),
        "{}",
        String::from_utf8_lossy(&set.stderr)
    );
    let call = json!([{"call_id": "csv-1", "event": "started", "at": "2026-11-30T10:00:00Z",
                       "caller": "0721234567", "caller_name": "=cmd()", "direction": "inbound"},
                      {"call_id": "csv-1", "event": "hangup", "at": "2026-11-30T10:01:00Z"}]);
    assert_eq!(app.post_events(&t.pbx, &call).await.status(), 200);
    let response = app
        .http
        .get(format!("{}/api/v1/reportsCDRLogs", app.address))
        .bearer_auth(&t.report)
        .header("Accept", "text/csv")
        .query(&[("startdate", "2026-11-30"), ("finishdate", "2026-11-30")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers().contains_key("x-cursor"));
    let response = response.text().await.unwrap();
    let lines: Vec<&str> = response.lines().collect();
    assert!(lines[0].starts_with("call_id,report_call_id,activecallkey,"));
    assert_eq!(lines.len(), 2);
    assert!(lines[1].contains(",csv-1,"));
    assert!(
        lines[1].contains("2026-11-30T12:00:00+02:00"),
        "{}",
        lines[1]
    );
    assert!(
        lines[1].contains(",'=cmd(),"),
        "formulas are defused: {}",
        lines[1]
    );
    let exported = app.cli(&[
        "calls",
        "export",
        "--tenant",
        "acme",
        "--from",
        "2026-11-30",
        "--to",
        "2026-11-30",
    ]);
    assert!(
        exported.status.success(),
        "{}",
        String::from_utf8_lossy(&exported.stderr)
    );
    assert_eq!(String::from_utf8(exported.stdout).unwrap(), response);
}

#[tokio::test]
async fn a_lookup_with_the_pbx_call_id_opens_the_call() {
    let app = spawn_app().await;
    let t = call_tenant(&app, "acme").await;
    let put = app
        .put_contact(
            &t.sync,
            "7",
            &json!({"name": "Ana", "phones": ["0721234567"]}),
        )
        .await;
    assert!(put.status().is_success());
    let response = app
        .get_raw(&format!(
            "/api/lookup?telephone=0721234567&dnid=0210000000&call_id=L-1&token={}",
            t.pbx
        ))
        .await;
    assert_eq!(response.status(), 200);
    crate::helpers::eventually(
        crate::helpers::PROPAGATION,
        "the lookup opens the call",
        || async { !app.call_by_key(&t.report, "L-1").await.is_empty() },
    )
    .await;
    let hangup = json!({"call_id": "L-1", "event": "hangup"});
    assert_eq!(app.post_events(&t.pbx, &hangup).await.status(), 200);
    let call = &app.call_by_key(&t.report, "L-1").await[0];
    assert_eq!(call["lookup"]["identified"], true);
    assert_eq!(call["lookup"]["contact_id"], "7");
    assert_eq!(call["contact_id"], "7");
    assert_eq!(call["direction"], "Inbound");
    assert_eq!(call["outcome"], "missed");
}

#[tokio::test]
async fn the_screen_pop_shows_what_became_of_the_numbers_calls() {
    let app = spawn_app().await;
    let t = call_tenant(&app, "acme").await;
    let put = app
        .put_contact(
            &t.sync,
            "7",
            &json!({"name": "Ana", "phones": ["0721234567"]}),
        )
        .await;
    assert!(put.status().is_success());
    let earlier = json!([
        {"call_id": "old-1", "event": "started", "at": "2026-11-30T10:00:00Z",
         "direction": "inbound", "caller": "0721234567", "dnis": "0210000000"},
        {"call_id": "old-1", "event": "pickup", "at": "2026-11-30T10:00:05Z", "agent": "Bo(201)"},
        {"call_id": "old-1", "event": "hangup", "at": "2026-11-30T10:02:10Z", "recorded": true},
        {"call_id": "old-2", "event": "hangup", "at": "2026-11-30T11:00:00Z",
         "direction": "inbound", "caller": "+40721234567"},
    ]);
    assert_eq!(app.post_events(&t.pbx, &earlier).await.status(), 200);
    let answer = app.lookup_json(&t.pbx, "0721234567").await;
    let page = app
        .http
        .get(answer["backend_link"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("What happened"), "{page}");
    assert!(
        page.contains("Answered by Bo(201) · 0:02:05 talk · recorded"),
        "{page}"
    );
    assert!(page.contains("Missed"), "{page}");
}

#[tokio::test]
async fn the_cdr_filters_narrow_the_page() {
    let app = spawn_app().await;
    let t = call_tenant(&app, "acme").await;
    let calls = json!([
        {"call_id": "f-1", "event": "pickup", "at": "2026-11-30T10:00:00Z", "direction": "inbound",
         "caller": "0721234567", "agent": "Ana(200)"},
        {"call_id": "f-1", "event": "hangup", "at": "2026-11-30T10:01:00Z"},
        {"call_id": "f-2", "event": "missed", "at": "2026-11-30T11:00:00Z", "direction": "inbound",
         "caller": "0722000000", "agent": "Bo(201)"},
        {"call_id": "f-3", "event": "pickup", "at": "2026-11-30T12:00:00Z", "direction": "outbound",
         "external_number": "0721234567", "agent": "2000"},
        {"call_id": "f-3", "event": "hangup", "at": "2026-11-30T12:01:00Z"},
    ]);
    assert_eq!(app.post_events(&t.pbx, &calls).await.status(), 200);
    let keys = |page: Value| -> Vec<String> {
        page["CallList"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["activecallkey"].as_str().unwrap().to_owned())
            .collect()
    };
    let range = [("startdate", "2026-11-30"), ("finishdate", "2026-11-30")];
    assert_eq!(
        keys(app.cdr(&t.report, &range).await),
        ["f-1", "f-2", "f-3"]
    );
    let cases: [((&str, &str), &[&str]); 5] = [
        (("direction", "OUTBOUND"), &["f-3"]),
        (("outcome", "missed"), &["f-2"]),
        // An agent by extension or by its full name; 200 is not 2000.
        (("agent", "200"), &["f-1"]),
        (("agent", "Bo(201)"), &["f-2"]),
        // The other party's number in any format: the caller in, the dialled number out.
        (("number", "+40 721 234 567"), &["f-1", "f-3"]),
    ];
    for (filter, expected) in cases {
        let mut query = range.to_vec();
        query.push(filter);
        assert_eq!(
            keys(app.cdr(&t.report, &query).await),
            expected,
            "{filter:?}"
        );
    }
    let bad = app
        .http
        .get(format!("{}/api/v1/reportsCDRLogs", app.address))
        .bearer_auth(&t.report)
        .query(&[
            ("startdate", "2026-12-01"),
            ("finishdate", "2026-11-30"),
            ("outcome", "maybe"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400, "a query the API cannot read");
    assert_eq!(named_fields(bad).await, ["outcome", "finishdate"]);
}
