//! One call, one story (issue 27): a click-to-call has its call record from the moment
//! it is placed, outbound and internal calls name the other party, and a `leg-event`
//! profile reproduces the FocalScope URL adapter's callbacks.

use std::sync::{Arc, Mutex};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use chrono::Utc;
use serde_json::{Value, json};

use crate::click2call::{Tenant, callbacks, dialing_loopback, json_of, placed, tenant};
use crate::fake_pbx;
use crate::helpers::{TestApp, eventually, spawn_app, spawn_app_with};
use crate::reports::{report_json, request, service_user};

/// The one call the CDR API finds by `key` (cidgate's call id, a leg's PBX id or GUID).
async fn cdr_call(app: &TestApp, t: &Tenant, key: &str) -> Value {
    let response = app
        .http
        .get(format!("{}/api/v1/reportsCDRLogs", app.address))
        .bearer_auth(&t.report)
        .query(&[("activecallkey", key)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body = json_of(response).await;
    let calls = body["CallList"].as_array().unwrap();
    assert_eq!(calls.len(), 1, "one call for {key}: {body}");
    calls[0].clone()
}

/// What cidgate knew when the call was placed, as the CDR shows it.
fn assert_what_the_request_knew(call: &Value, request_id: i64) {
    assert_eq!(call["request_id"], request_id, "{call}");
    assert_eq!(call["direction"], "Outbound", "{call}");
    assert_eq!(call["agent"], "Agent1(200)", "{call}");
    assert_eq!(call["external_number"], "+40721234567", "{call}");
    assert_eq!(call["caller_number"], "+40721234567", "{call}");
    assert_eq!(call["contact_id"], "c1", "{call}");
    assert_eq!(call["caller_name"], "Ion Popescu", "{call}");
}

#[tokio::test]
async fn a_click_to_call_has_its_call_record_from_the_moment_it_is_placed() {
    let app = spawn_app_with(dialing_loopback).await;
    let t = tenant(&app, "acme").await;
    let (stub, _requests) = fake_pbx::dial_api(200, r#"{"id":"pbx-1"}"#).await;
    app.http_dialer("acme", &stub);
    let session = app.signed_in_with_a_contact(&t).await;

    // Placed: the answer names the call, and the CDR has it at once, in progress.
    let (request_id, call_id) = placed(app.click2call(&session, "0721 234 567", None).await).await;
    let call = cdr_call(&app, &t, &call_id).await;
    assert_eq!(call["call_id"], call_id.as_str());
    assert_what_the_request_knew(&call, request_id);
    assert_eq!(call["outcome"], "in_progress");
    assert_eq!(call["legs"], json!([]), "cidgate's own event is not a leg");
    assert_eq!(
        app.request_state(&session, request_id).await["call_id"],
        call_id.as_str()
    );

    // The PBX's callbacks carry no agent and no number: they fill in the rest of the
    // same call and erase nothing.
    for callback in callbacks(request_id) {
        app.focalscope(&t.pbx, &callback).await;
    }
    let call = cdr_call(&app, &t, &call_id).await;
    assert_what_the_request_knew(&call, request_id);
    assert_eq!(call["outcome"], "answered");
    assert_eq!(call["activecallkey"], "900011", "the agent leg's PBX id");
    let legs: Vec<&Value> = call["legs"].as_array().unwrap().iter().collect();
    assert_eq!(legs.len(), 2, "{call}");
    assert_eq!(legs[0]["leg"], "agent");
    assert_eq!(legs[1]["leg"], "external");
    assert_eq!(
        cdr_call(&app, &t, "900011").await["call_id"],
        call_id.as_str()
    );

    // The agent reports count it under its agent.
    let (key, report) = service_user(&app, "acme", "payroll", &[], "agent-talking-summary");
    let today = Utc::now().date_naive();
    let body = request(
        "json",
        &format!("{today}T00:00:00.000Z"),
        &format!("{today}T23:59:59.999Z"),
        &["Agent1(200)"],
        &[],
    );
    let answer = report_json(&app, &key, &report, &body).await;
    let row = &answer["rows"][0]["values"];
    assert_eq!(row["0"]["value"], "Agent1(200)", "{answer}");
    assert_eq!(row["2"]["value"], 1, "one outbound call: {answer}");
    assert_eq!(row["4"]["value"], 1, "one call in all: {answer}");

    // The POST form answers the same way; a number with no contact has none.
    let posted = app
        .http
        .post(format!("{}/api/v1/click2call", app.address))
        .json(&json!({"session": session, "number": "0721234568"}))
        .send()
        .await
        .unwrap();
    let (next, next_call) = placed(posted).await;
    assert_eq!(next, request_id + 1);
    assert_ne!(next_call, call_id);
    let call = cdr_call(&app, &t, &next_call).await;
    assert_eq!(call["caller_number"], "+40721234568");
    assert_eq!(call["agent"], "Agent1(200)");
    assert_eq!(call["contact_id"], Value::Null);
    assert_eq!(call["outcome"], "in_progress");
}

/// The `cidgate` command with 127.0.0.1 allowed as a profile's target.
fn cli(app: &TestApp, args: &[&str]) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cidgate"))
        .args(args)
        .env("DATABASE_URL", &app.db.url)
        .env("CIDGATE_WEBHOOK_ALLOW_NETWORKS", "127.0.0.0/8")
        .env_remove("RUST_LOG")
        .output()
        .expect("running cidgate");
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test]
async fn outbound_and_internal_calls_name_the_other_partys_number_and_contact() {
    let app = spawn_app().await;
    let t = tenant(&app, "acme").await;
    for (id, name, phone) in [
        ("c1", "Ion Popescu", "0721234567"),
        ("c2", "Maria Ionescu", "0721234568"),
    ] {
        let contact = json!({"name": name, "phones": [phone]});
        let put = app.put_contact(&t.sync, id, &contact).await;
        assert!(put.status().is_success());
    }
    // As a PBX reports them: the agent's extension as the caller, the other party as
    // the external number.
    let events = json!([
        {"call_id": "out-1", "event": "started", "at": "2026-12-01T10:00:00Z",
         "direction": "outbound", "caller": "200", "external_number": "0721 234 567",
         "agent": "Agent1(200)"},
        {"call_id": "out-1", "event": "hangup", "at": "2026-12-01T10:01:00Z"},
        {"call_id": "int-1", "event": "started", "at": "2026-12-01T11:00:00Z",
         "direction": "internal", "caller": "200", "external_number": "0721234568"},
        {"call_id": "int-1", "event": "hangup", "at": "2026-12-01T11:01:00Z"},
    ]);
    let posted = app
        .http
        .post(format!("{}/api/v1/events", app.address))
        .bearer_auth(&t.pbx)
        .json(&events)
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), 200);

    let outbound = cdr_call(&app, &t, "out-1").await;
    assert_eq!(outbound["caller_number"], "+40721234567", "{outbound}");
    assert_eq!(outbound["contact_id"], "c1");
    assert_eq!(outbound["caller_name"], "Ion Popescu");
    let internal = cdr_call(&app, &t, "int-1").await;
    assert_eq!(internal["caller_number"], "+40721234568", "{internal}");
    assert_eq!(internal["contact_id"], "c2");

    // <Caller Number> in a profile is the same number.
    cli(
        &app,
        &[
            "profile",
            "create",
            "--tenant",
            "acme",
            "crm",
            "--url",
            "http://127.0.0.1:9/calls",
            "--form",
            "caller=<Caller Number>",
            "--form",
            "contact=<Contact ID>",
        ],
    );
    let call_id = outbound["call_id"].as_str().unwrap();
    let shown = cli(
        &app,
        &[
            "profile",
            "test",
            "--tenant",
            "acme",
            "crm",
            "--call",
            call_id,
            "--dry-run",
        ],
    );
    assert!(
        shown.contains("caller=%2B40721234567&contact=c1"),
        "{shown}"
    );
}

/// A CRM's endpoint on 127.0.0.1 that records each request's path and query.
struct Receiver {
    url: String,
    got: Arc<Mutex<Vec<String>>>,
}

impl Receiver {
    async fn start() -> Self {
        let got: Arc<Mutex<Vec<String>>> = Arc::default();
        let seen = got.clone();
        let server = HttpServer::new(move || {
            let seen = seen.clone();
            App::new().default_service(web::to(move |req: HttpRequest| {
                let seen = seen.clone();
                async move {
                    let line = format!("{}?{}", req.path(), req.query_string());
                    seen.lock().unwrap().push(line);
                    HttpResponse::Ok().body("ok")
                }
            }))
        })
        .workers(1)
        .bind("127.0.0.1:0")
        .unwrap();
        let port = server.addrs()[0].port();
        tokio::spawn(server.run());
        Self {
            url: format!("http://127.0.0.1:{port}"),
            got,
        }
    }

    fn received(&self) -> Vec<String> {
        self.got.lock().unwrap().clone()
    }
}

/// The reference's four callbacks (dial-api-and-event-url-adapter.txt) of `request_id`,
/// in its order, as query strings.
fn reference_callbacks(request_id: i64) -> [String; 4] {
    let agent = "CallID=1000000087849";
    let dialled = "CallID=1000000087850";
    let (a, o) = (
        "Guid=bfa2dbc8-ab8a-34c8-f243-c2aad8c446ff",
        "Guid=923041af-adb5-a8ae-f29c-e60ea5e17448",
    );
    let r = format!("RequestID={request_id}");
    [
        format!("CallType=API&Event=pickup&{agent}&{r}&EventCode=2&IsCallRecorded=&{a}"),
        format!("CallType=Outgoing&Event=pickup&{dialled}&{r}&EventCode=2&IsCallRecorded=&{o}"),
        format!("CallType=Outgoing&Event=hangup&{dialled}&{r}&EventCode=1&IsCallRecorded=1&{o}"),
        format!("CallType=API&Event=hangup&{agent}&{r}&EventCode=1&IsCallRecorded=1&{a}"),
    ]
}

async fn deliveries(app: &TestApp) -> i64 {
    let client = app.pool.get().await.unwrap();
    client
        .query_one("SELECT count(*) FROM webhook_deliveries", &[])
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn a_leg_event_profile_sends_the_references_four_callbacks_for_one_click_to_call() {
    let app = spawn_app_with(|s| {
        s.webhooks.client.webhook_allow_networks = vec!["127.0.0.0/8".parse().unwrap()];
    })
    .await;
    let receiver = Receiver::start().await;
    let t = tenant(&app, "acme").await;
    let (stub, _requests) = fake_pbx::dial_api(200, "{}").await;
    app.http_dialer("acme", &stub);
    let session = app.signed_in_with_a_contact(&t).await;
    // The reference's adapter URL, pasted whole.
    let adapter = format!(
        "{}/identity.asp?CallType={{{{CallTypeName}}}}&Event={{{{DialApiEventName}}}}&CallID={{{{CallID}}}}&RequestID={{{{DialApiRequestID}}}}&EventCode={{{{DialApiEventCode}}}}&IsCallRecorded={{{{IsCallRecorded}}}}&Guid={{{{CallUUID}}}}",
        receiver.url
    );
    let created = cli(
        &app,
        &[
            "profile",
            "create",
            "--tenant",
            "acme",
            "adapter",
            "--method",
            "GET",
            "--event",
            "leg-event",
            "--from-url",
            &adapter,
        ],
    );
    assert!(created.contains("on leg-event"), "{created}");

    let (request_id, _) = placed(app.click2call(&session, "0721234567", None).await).await;
    // Placing the call sends nothing: it is no leg's event.
    assert_eq!(deliveries(&app).await, 0);
    // The PBX calls back as the reference shows, each callback answered before the next.
    let expected = reference_callbacks(request_id);
    for callback in &expected {
        app.focalscope(&t.pbx, callback).await;
    }
    // Queued with the events: one delivery per leg event, none for a repeat.
    assert_eq!(deliveries(&app).await, 4);
    app.focalscope(&t.pbx, &expected[0]).await;
    assert_eq!(deliveries(&app).await, 4);

    eventually(
        std::time::Duration::from_secs(30),
        "the four callbacks",
        || async { receiver.received().len() >= 4 },
    )
    .await;
    let want: Vec<String> = expected
        .iter()
        .map(|q| format!("/identity.asp?{q}"))
        .collect();
    assert_eq!(receiver.received(), want);

    // The delivery log names them: the trigger, and origin `leg`.
    let listed = app
        .http
        .get(format!("{}/api/v1/deliveries", app.address))
        .bearer_auth(&t.admin)
        .send()
        .await
        .unwrap();
    let listed = json_of(listed).await;
    let kinds: Vec<(&str, &str)> = listed["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["trigger"].as_str().unwrap(),
                d["origin"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(kinds, [("leg-event", "leg"); 4], "{listed}");
}
