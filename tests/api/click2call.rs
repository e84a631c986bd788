//! Agents, sessions and click-to-call (issue 18), through HTTP and the CLI, against local
//! fakes of the PBXs' dial interfaces.

use cidgate::domain::{TenantSlug, TokenScope, TokenScopes};
use cidgate::store;
use serde_json::{Value, json};

use crate::fake_pbx;
use cidgate::config::ServeSettings;

use crate::helpers::{TestApp, spawn_app, spawn_app_with};

/// The fake PBXs listen on loopback: what `http` dialers need to reach them, for every
/// tenant (`CIDGATE_WEBHOOK_ALLOW_NETWORKS=127.0.0.0/8`), as web-service tests allow
/// their receivers.
pub(crate) fn dialing_loopback(s: &mut ServeSettings) {
    s.webhooks.client.webhook_allow_networks = vec!["127.0.0.0/8".parse().unwrap()];
}

/// A tenant's tokens: the CRM's `sync`, an `admin`, the PBX's `lookup,events`, a `report`.
pub(crate) struct Tenant {
    pub(crate) sync: String,
    pub(crate) admin: String,
    pub(crate) pbx: String,
    pub(crate) report: String,
}

pub(crate) async fn tenant(app: &TestApp, slug: &str) -> Tenant {
    let created = app.create_tenant(slug, "RO").await;
    let client = app.pool.get().await.unwrap();
    let id = store::tenants::find_by_slug(&client, &TenantSlug::parse(slug).unwrap())
        .await
        .unwrap()
        .unwrap()
        .id;
    let token = |scopes: TokenScopes| {
        let client = &client;
        async move {
            let (_, token) = store::tokens::create(client, id, scopes, "test")
                .await
                .unwrap();
            token.expose().to_owned()
        }
    };
    Tenant {
        sync: created.sync_token,
        admin: token(TokenScope::Admin.into()).await,
        pbx: token(TokenScopes::parse("lookup,events").unwrap()).await,
        report: token(TokenScope::Report.into()).await,
    }
}

impl TestApp {
    pub(crate) async fn put_agent(
        &self,
        token: &str,
        extension: &str,
        body: &Value,
    ) -> reqwest::Response {
        self.http
            .put(format!("{}/api/v1/agents/{extension}", self.address))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    /// Adds agent `extension` and signs it in; the session secret.
    pub(crate) async fn signed_in(&self, t: &Tenant, extension: &str, name: &str) -> String {
        let added = self
            .put_agent(&t.sync, extension, &json!({"name": name}))
            .await;
        assert!(
            added.status().is_success(),
            "{}",
            added.text().await.unwrap()
        );
        let started = self.start_session(&t.sync, extension).await;
        assert_eq!(started.status(), 201);
        let body: Value = started.json().await.unwrap();
        body["session"].as_str().unwrap().to_owned()
    }

    pub(crate) async fn start_session(&self, token: &str, extension: &str) -> reqwest::Response {
        self.http
            .post(format!(
                "{}/api/v1/agents/{extension}/sessions",
                self.address
            ))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    /// The reference's GET.
    pub(crate) async fn click2call(
        &self,
        session: &str,
        number: &str,
        queue: Option<&str>,
    ) -> reqwest::Response {
        let mut query = vec![("session", session), ("number", number)];
        if let Some(queue) = queue {
            query.push(("queue", queue));
        }
        self.http
            .get(format!("{}/api/v1/click2call", self.address))
            .query(&query)
            .send()
            .await
            .unwrap()
    }

    pub(crate) async fn request_state(&self, session: &str, request_id: i64) -> Value {
        let response = self
            .http
            .get(format!("{}/api/v1/click2call/{request_id}", self.address))
            .query(&[("session", session)])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    }

    pub(crate) async fn focalscope(&self, pbx: &str, query: &str) {
        let response = self
            .get_raw(&format!("/api/v1/events/focalscope?{query}&token={pbx}"))
            .await;
        assert_eq!(response.status(), 200, "{query}");
    }

    /// The agent's browser confirming `/agent/login?session=…`: the confirmation page's
    /// form posted back from cidgate's own origin.
    pub(crate) async fn agent_login(&self, session: &str) -> reqwest::Response {
        let confirm = self
            .http
            .get(format!("{}/agent/login", self.address))
            .query(&[("session", session)])
            .send()
            .await
            .unwrap();
        assert_eq!(confirm.status(), 200);
        assert!(!confirm.headers().contains_key("set-cookie"));
        let html = confirm.text().await.unwrap();
        assert!(html.contains(r#"method="post" action="login""#), "{html}");
        self.http
            .post(format!("{}/agent/login", self.address))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("origin", &self.address)
            .header("sec-fetch-site", "same-origin")
            .body(format!("session={session}"))
            .send()
            .await
            .unwrap()
    }

    pub(crate) fn cli_ok(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Agent 200 signed in, and a contact at the number the tests call.
    pub(crate) async fn signed_in_with_a_contact(&self, t: &Tenant) -> String {
        let contact = json!({"name": "Ion Popescu", "phones": ["0721234567"]});
        assert!(
            self.put_contact(&t.sync, "c1", &contact)
                .await
                .status()
                .is_success()
        );
        self.signed_in(t, "200", "Agent1").await
    }

    /// `cidgate` with the fake PBXs' loopback network allowed, as the server allows it.
    pub(crate) fn cli_dialing_ok(&self, args: &[&str]) -> String {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_cidgate"))
            .args(args)
            .env("DATABASE_URL", &self.db.url)
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

    pub(crate) fn http_dialer(&self, slug: &str, stub: &str) {
        let url = format!(
            "{stub}/dial?agent={{{{AgentExtension}}}}&number={{{{Number}}}}&id={{{{RequestID}}}}&name={{{{ContactName}}}}"
        );
        self.cli_dialing_ok(&[
            "dialer",
            "set",
            "--tenant",
            slug,
            "http",
            "--url",
            &url,
            "--method",
            "POST",
            "--secret-header",
            "Authorization: Bearer pbx-dial-secret",
        ]);
    }
}

pub(crate) async fn json_of(response: reqwest::Response) -> Value {
    response.json().await.unwrap()
}

/// A click-to-call's answer: exactly `RequestID` and the `call_id` of the call record it
/// opened (issue 27).
pub(crate) async fn placed(response: reqwest::Response) -> (i64, String) {
    assert_eq!(response.status(), 200);
    let body = json_of(response).await;
    let keys: Vec<&String> = body.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["RequestID", "call_id"], "{body}");
    let call_id = body["call_id"].as_str().unwrap().to_owned();
    assert!(uuid::Uuid::parse_str(&call_id).is_ok(), "{body}");
    (body["RequestID"].as_i64().unwrap(), call_id)
}

/// The four FocalScope callbacks of a request where both parties picked up.
pub(crate) fn callbacks(request_id: i64) -> [String; 4] {
    let agent = format!(
        "CallType=API&CallID=9000{request_id}1&RequestID={request_id}&EventCode=2&IsCallRecorded=&Guid=a-{request_id}"
    );
    let outgoing = format!(
        "CallType=Outgoing&CallID=9000{request_id}2&RequestID={request_id}&EventCode=2&IsCallRecorded=&Guid=o-{request_id}"
    );
    [
        format!("{agent}&Event=pickup"),
        format!("{outgoing}&Event=pickup"),
        format!("{outgoing}&Event=hangup"),
        format!("{agent}&Event=hangup"),
    ]
}

#[tokio::test]
async fn agents_are_kept_through_the_sync_api() {
    let app = spawn_app().await;
    let t = tenant(&app, "acme").await;
    let body = json!({"name": "Agent1", "groups": ["Sales", "Support"]});
    assert_eq!(app.put_agent(&t.sync, "200", &body).await.status(), 201);
    let replaced = app
        .put_agent(&t.sync, "200", &json!({"name": "Ana", "groups": "Sales"}))
        .await;
    assert_eq!(replaced.status(), 200);
    assert_eq!(
        json_of(replaced).await,
        json!({"extension": "200", "name": "Ana", "groups": ["Sales"], "agent": "Ana(200)"})
    );
    let read = app
        .http
        .get(format!("{}/api/v1/agents/200", app.address))
        .bearer_auth(&t.sync)
        .send()
        .await
        .unwrap();
    assert_eq!(json_of(read).await["agent"], "Ana(200)");
    let listed = app
        .http
        .get(format!("{}/api/v1/agents", app.address))
        .bearer_auth(&t.sync)
        .send()
        .await
        .unwrap();
    assert_eq!(json_of(listed).await["agents"][0]["extension"], "200");
    assert!(
        app.cli_ok(&["agent", "list", "--tenant", "acme"])
            .contains("Ana(200)")
    );

    for (body, field) in [
        (json!({"groups": []}), "name"),
        (json!({"name": "A (B)"}), "name"),
        (json!({"name": "A", "groups": [1]}), "groups"),
        (json!({"name": "A", "extension": "201"}), "extension"),
        (json!({"name": "A", "colour": "red"}), "colour"),
    ] {
        let refused = app.put_agent(&t.sync, "200", &body).await;
        assert_eq!(refused.status(), 422, "{body}");
        assert_eq!(
            json_of(refused).await["fields"][0]["field"],
            field,
            "{body}"
        );
    }
    assert_eq!(app.put_agent(&t.pbx, "200", &body).await.status(), 401);

    let delete = |ext: &str| {
        app.http
            .delete(format!("{}/api/v1/agents/{ext}", app.address))
            .bearer_auth(&t.sync)
            .send()
    };
    assert_eq!(delete("200").await.unwrap().status(), 204);
    assert_eq!(delete("200").await.unwrap().status(), 404);
}

#[tokio::test]
async fn sessions_are_started_for_agents_and_an_expired_one_says_login_false() {
    let app = spawn_app_with(dialing_loopback).await;
    let t = tenant(&app, "acme").await;
    let (stub, _requests) = fake_pbx::dial_api(200, "{}").await;
    app.http_dialer("acme", &stub);
    let session = app.signed_in(&t, "200", "Agent1").await;
    assert!(session.starts_with("cgsess_"));

    // The admin token signs agents in too; a lookup token does not; nobody signs in an
    // agent the tenant does not have.
    let by_admin: Value = json_of(app.start_session(&t.admin, "200").await).await;
    assert_eq!(by_admin["login"], true);
    let left = by_admin["expires_in"].as_i64().unwrap();
    assert!(
        (9 * 3600..=10 * 3600).contains(&left),
        "10 hours by default: {left}"
    );
    assert_eq!(app.start_session(&t.pbx, "200").await.status(), 401);
    assert_eq!(app.start_session(&t.sync, "999").await.status(), 404);

    // Stored only as a hash.
    let client = app.pool.get().await.unwrap();
    let stored: i64 = client
        .query_one(
            "SELECT count(*) FROM agent_sessions WHERE encode(secret_hash, 'escape') LIKE '%cgsess%'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(stored, 0);

    // Expired (the shift is over): 401 with "login":false, so the CRM signs in again.
    client
        .execute(
            "UPDATE agent_sessions SET expires_at = now() - interval '1 minute'",
            &[],
        )
        .await
        .unwrap();
    let refused = app.click2call(&session, "0721234567", None).await;
    assert_eq!(refused.status(), 401);
    let body = json_of(refused).await;
    assert_eq!(body["login"], false, "{body}");
    assert_eq!(body["error"], "session_expired");
    let unknown = app.click2call("cgsess_nothing", "0721234567", None).await;
    assert_eq!(unknown.status(), 401);
    assert_eq!(json_of(unknown).await["login"], false);

    // Renewed, it dials; signed out, it no longer does.
    let renewed = app.signed_in(&t, "200", "Agent1").await;
    assert_eq!(
        app.click2call(&renewed, "0721234567", None).await.status(),
        200
    );
    let out = app
        .http
        .delete(format!("{}/api/v1/agents/200/sessions", app.address))
        .bearer_auth(&t.sync)
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 200);
    assert!(json_of(out).await["ended"].as_u64().unwrap() >= 1);
    let after = app.click2call(&renewed, "0721234567", None).await;
    assert_eq!(json_of(after).await["login"], false);
}

#[tokio::test]
async fn click_to_call_asks_the_http_dial_api_and_the_pbx_events_link_both_legs_to_the_request() {
    let app = spawn_app_with(dialing_loopback).await;
    let t = tenant(&app, "acme").await;
    let (stub, mut requests) = fake_pbx::dial_api(200, r#"{"status":"ok","id":"pbx-4711"}"#).await;
    app.http_dialer("acme", &stub);
    let session = app.signed_in_with_a_contact(&t).await;

    let answer = app.click2call(&session, "0721 234 567", None).await;
    assert_eq!(answer.status(), 200);
    assert_eq!(placed(answer).await.0, 1);

    // What the PBX got: the agent, the number as the dialer wants it (E.164 by default),
    // the RequestID its events will carry, the contact's name, and the secret header.
    let got = requests.try_recv().expect("the dial API was called");
    assert_eq!(got.method, "POST");
    assert_eq!(got.query("agent").as_deref(), Some("200"));
    assert_eq!(got.query("number").as_deref(), Some("+40721234567"));
    assert_eq!(got.query("id").as_deref(), Some("1"));
    assert_eq!(got.query("name").as_deref(), Some("Ion Popescu"));
    assert_eq!(got.header("authorization"), Some("Bearer pbx-dial-secret"));
    let shown = app.cli_ok(&["dialer", "show", "--tenant", "acme"]);
    assert!(!shown.contains("pbx-dial-secret"), "{shown}");
    assert!(shown.contains("never shown"), "{shown}");

    let state = app.request_state(&session, 1).await;
    assert_eq!(state["state"], "dialling_agent");
    assert_eq!(state["pbx_id"], "pbx-4711");
    assert_eq!(state["agent"], "Agent1(200)");

    // The PBX's callbacks carry the RequestID: the request follows them.
    let [agent_pickup, outgoing_pickup, outgoing_hangup, agent_hangup] = callbacks(1);
    app.focalscope(&t.pbx, &agent_pickup).await;
    assert_eq!(
        app.request_state(&session, 1).await["state"],
        "agent_answered"
    );
    app.focalscope(&t.pbx, &outgoing_pickup).await;
    assert_eq!(app.request_state(&session, 1).await["state"], "connected");
    app.focalscope(&t.pbx, &outgoing_hangup).await;
    app.focalscope(&t.pbx, &agent_hangup).await;
    let done = app.request_state(&session, 1).await;
    assert_eq!(done["state"], "completed");
    assert_eq!(done["legs"].as_array().unwrap().len(), 2);

    // The CDR: one call, both legs, linked to the request.
    let cdr = app
        .http
        .get(format!("{}/api/v1/reportsCDRLogs", app.address))
        .bearer_auth(&t.report)
        .query(&[("activecallkey", "900011")])
        .send()
        .await
        .unwrap();
    let cdr = json_of(cdr).await;
    let call = &cdr["CallList"][0];
    assert_eq!(call["request_id"], 1);
    assert_eq!(call["call_id"], done["call_id"]);
    assert_eq!(call["outcome"], "answered");
    let legs: Vec<&str> = call["legs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["leg"].as_str().unwrap())
        .collect();
    assert_eq!(legs, ["agent", "external"]);

    // RequestIDs increase per tenant.
    let next = app.click2call(&session, "0721234568", None).await;
    assert_eq!(placed(next).await.0, 2);
    let other = tenant(&app, "globex").await;
    app.http_dialer("globex", &stub);
    let globex = app.signed_in(&other, "300", "Agent3").await;
    let first = app.click2call(&globex, "0721234567", None).await;
    assert_eq!(placed(first).await.0, 1);
}

#[tokio::test]
async fn a_pbx_that_refuses_the_request_is_a_502_and_the_request_says_why() {
    let app = spawn_app_with(dialing_loopback).await;
    let t = tenant(&app, "acme").await;
    let (stub, mut requests) = fake_pbx::dial_api(503, r#"{"error":"busy"}"#).await;
    // A dial API that takes JSON: values are escaped for it.
    app.cli_dialing_ok(&[
        "dialer", "set", "--tenant", "acme", "http", "--url", &format!("{stub}/calls"),
        "--method", "POST", "--content-type", "application/json", "--body",
        r#"{"from":"{{AgentExtension}}","to":"{{Number}}","ref":"{{RequestID}}","who":"{{Agent}}"}"#,
    ]);
    let session = app.signed_in(&t, "200", "Agent \"Q\"").await;
    let refused = app.click2call(&session, "0721234567", None).await;
    assert_eq!(refused.status(), 502);
    let got = requests.try_recv().unwrap();
    assert_eq!(got.header("content-type"), Some("application/json"));
    let sent: Value = serde_json::from_str(&got.body).unwrap();
    assert_eq!(
        sent,
        json!({"from": "200", "to": "+40721234567", "ref": "1", "who": "Agent \"Q\"(200)"})
    );
    let body = json_of(refused).await;
    assert_eq!(body["RequestID"], 1);
    let state = app.request_state(&session, 1).await;
    assert_eq!(state["state"], "failed");
    assert!(state["reason"].as_str().unwrap().contains("503"), "{state}");
    // A failed request is not in flight: the agent may try again at once.
    assert_eq!(
        app.click2call(&session, "0721234567", None).await.status(),
        502
    );
}

#[tokio::test]
async fn an_agent_gets_one_request_in_flight_and_a_few_a_minute() {
    let app = spawn_app_with(dialing_loopback).await;
    let t = tenant(&app, "acme").await;
    let (stub, mut requests) = fake_pbx::dial_api(200, "{}").await;
    app.http_dialer("acme", &stub);
    app.cli_ok(&["dialer", "policy", "--tenant", "acme", "--per-minute", "2"]);
    let session = app.signed_in(&t, "200", "Agent1").await;
    let other = app.signed_in(&t, "201", "Agent2").await;

    assert_eq!(
        app.click2call(&session, "0721234567", None).await.status(),
        200
    );
    let busy = app.click2call(&session, "0721234567", None).await;
    assert_eq!(busy.status(), 429);
    assert!(busy.headers().contains_key("retry-after"));
    assert!(
        json_of(busy).await["message"]
            .as_str()
            .unwrap()
            .contains("in flight")
    );
    // Another agent is not held up.
    assert_eq!(
        app.click2call(&other, "0721234567", None).await.status(),
        200
    );

    // The first call ends: the agent may call again, up to two a minute.
    for callback in callbacks(1) {
        app.focalscope(&t.pbx, &callback).await;
    }
    assert_eq!(
        app.click2call(&session, "0721234567", None).await.status(),
        200
    );
    for callback in callbacks(3) {
        app.focalscope(&t.pbx, &callback).await;
    }
    let over = app.click2call(&session, "0721234567", None).await;
    assert_eq!(over.status(), 429);
    assert!(
        json_of(over).await["message"]
            .as_str()
            .unwrap()
            .contains("a minute")
    );
    let mut asked = 0;
    while requests.try_recv().is_ok() {
        asked += 1;
    }
    assert_eq!(asked, 3, "refused requests never reach the PBX");
}

#[tokio::test]
async fn refused_destinations_name_their_rule_and_never_reach_the_pbx() {
    let app = spawn_app_with(dialing_loopback).await;
    let t = tenant(&app, "acme").await;
    let (stub, mut requests) = fake_pbx::dial_api(200, "{}").await;
    app.http_dialer("acme", &stub);
    app.cli_ok(&[
        "dialer",
        "policy",
        "--tenant",
        "acme",
        "--international",
        "off",
        "--refuse-prefix",
        "+40723",
        "--queue-prefix",
        "sales=9",
        "--number-format",
        "national",
        "--per-minute",
        "100",
    ]);
    let session = app.signed_in(&t, "200", "Agent1").await;
    for (number, rule) in [
        ("0900123456", "premium_rate"),
        ("+49 30 12345678", "international"),
        ("0723 000 000", "refused_prefixes"),
        ("112", "short_numbers"),
    ] {
        let refused = app.click2call(&session, number, None).await;
        assert_eq!(refused.status(), 403, "{number}");
        let body = json_of(refused).await;
        assert_eq!(body["rule"], rule, "{number}");
        assert!(body["message"].as_str().unwrap().contains(rule), "{body}");
    }
    let no_queue = app
        .click2call(&session, "0721234567", Some("support"))
        .await;
    assert_eq!(no_queue.status(), 422);
    assert_eq!(json_of(no_queue).await["fields"][0]["field"], "queue");
    let bad = app.click2call(&session, "not a number", None).await;
    assert_eq!(json_of(bad).await["fields"][0]["field"], "number");
    assert!(
        requests.try_recv().is_err(),
        "nothing refused reached the PBX"
    );

    // An outbound queue: its prefix, then the number as a desk phone dials it.
    let queued = app
        .http
        .post(format!("{}/api/v1/click2call", app.address))
        .json(&json!({"session": session, "number": "+40721234567", "queue": "sales"}))
        .send()
        .await
        .unwrap();
    assert_eq!(queued.status(), 200);
    let got = requests.try_recv().unwrap();
    assert_eq!(got.query("number").as_deref(), Some("90721234567"));
}

#[tokio::test]
async fn overdialled_and_costly_numbers_never_reach_the_pbx_even_with_short_numbers_on() {
    let app = spawn_app_with(dialing_loopback).await;
    let t = tenant(&app, "acme").await;
    let (stub, mut requests) = fake_pbx::dial_api(200, "{}").await;
    app.http_dialer("acme", &stub);
    // Short numbers allowed: a number of invalid length is still placed by its range.
    app.cli_ok(&[
        "dialer",
        "policy",
        "--tenant",
        "acme",
        "--short-numbers",
        "on",
        "--per-minute",
        "100",
    ]);
    let session = app.signed_in(&t, "200", "Agent1").await;
    for (number, rule) in [
        ("0900123456", "premium_rate"),
        ("09001234567", "premium_rate"),
        ("0900 123 456 7", "premium_rate"),
        ("+44 90987654321", "premium_rate"),
        ("+1 9005550123 9", "premium_rate"),
        ("0900", "premium_rate"),
        ("+882 16 1234 5678", "costly_numbers"),
        ("+870 772 123 456", "costly_numbers"),
        ("+44 70 1234 5678", "costly_numbers"),
    ] {
        let refused = app.click2call(&session, number, None).await;
        assert_eq!(refused.status(), 403, "{number}");
        assert_eq!(json_of(refused).await["rule"], rule, "{number}");
    }
    assert!(
        requests.try_recv().is_err(),
        "no costly number reached the PBX"
    );
}

#[tokio::test]
async fn another_tenants_session_never_dials_nor_sees_its_requests() {
    let app = spawn_app_with(dialing_loopback).await;
    let a = tenant(&app, "acme").await;
    let b = tenant(&app, "globex").await;
    let (stub, mut requests) = fake_pbx::dial_api(200, "{}").await;
    app.http_dialer("acme", &stub);
    let acme = app.signed_in(&a, "200", "Agent1").await;
    let globex = app.signed_in(&b, "300", "Agent3").await;

    assert_eq!(
        app.click2call(&acme, "0721234567", None).await.status(),
        200
    );
    assert!(requests.try_recv().is_ok());
    // globex has no dialer: its agent's click never reaches acme's PBX.
    let none = app.click2call(&globex, "0721234567", None).await;
    assert_eq!(none.status(), 409);
    assert!(requests.try_recv().is_err());
    // globex's token signs in none of acme's agents, and sees none of its requests.
    assert_eq!(app.start_session(&b.sync, "200").await.status(), 404);
    let peek = app
        .http
        .get(format!("{}/api/v1/click2call/1", app.address))
        .query(&[("session", &globex)])
        .send()
        .await
        .unwrap();
    assert_eq!(peek.status(), 404);
    let peek = app
        .http
        .get(format!("{}/api/v1/click2call/1", app.address))
        .bearer_auth(&b.sync)
        .send()
        .await
        .unwrap();
    assert_eq!(peek.status(), 404);
    // Within acme, an agent sees its own requests; the CRM's token sees every agent's.
    let colleague = app.signed_in(&a, "201", "Agent2").await;
    let state = |session: String| {
        app.http
            .get(format!("{}/api/v1/click2call/1", app.address))
            .query(&[("session", session)])
            .send()
    };
    assert_eq!(state(colleague).await.unwrap().status(), 404);
    assert_eq!(state(acme).await.unwrap().status(), 200);
}

#[tokio::test]
async fn agent_and_click_to_call_answers_match_the_openapi_description() {
    use crate::openapi::assert_conforms;
    let app = spawn_app_with(dialing_loopback).await;
    let t = tenant(&app, "acme").await;
    let (stub, _requests) = fake_pbx::dial_api(200, r#"{"id":7}"#).await;
    let base = app.address.clone();
    let check = |method: &'static str, path: &'static str, request: reqwest::RequestBuilder| async move {
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let body = response.text().await.unwrap();
        assert_conforms(method, path, status, &body);
        status
    };
    let h = &app.http;
    let agent = "/api/v1/agents/{extension}";
    let sessions = "/api/v1/agents/{extension}/sessions";
    let click = "/api/v1/click2call";
    let state = "/api/v1/click2call/{RequestID}";
    let put = |body: Value| {
        h.put(format!("{base}/api/v1/agents/200"))
            .bearer_auth(&t.sync)
            .json(&body)
    };
    assert_eq!(
        check("PUT", agent, put(json!({"name": "Agent1"}))).await,
        201
    );
    assert_eq!(
        check(
            "PUT",
            agent,
            put(json!({"name": "Agent1", "groups": ["Sales"]}))
        )
        .await,
        200
    );
    assert_eq!(check("PUT", agent, put(json!({"name": ""}))).await, 422);
    assert_eq!(
        check(
            "PUT",
            agent,
            h.put(format!("{base}/api/v1/agents/200")).json(&json!({}))
        )
        .await,
        401
    );
    assert_eq!(
        check(
            "GET",
            agent,
            h.get(format!("{base}/api/v1/agents/200"))
                .bearer_auth(&t.sync)
        )
        .await,
        200
    );
    assert_eq!(
        check(
            "GET",
            agent,
            h.get(format!("{base}/api/v1/agents/999"))
                .bearer_auth(&t.sync)
        )
        .await,
        404
    );
    assert_eq!(
        check(
            "GET",
            "/api/v1/agents",
            h.get(format!("{base}/api/v1/agents")).bearer_auth(&t.sync)
        )
        .await,
        200
    );
    let start = || {
        h.post(format!("{base}/api/v1/agents/200/sessions"))
            .bearer_auth(&t.sync)
    };
    let started = start().send().await.unwrap().json::<Value>().await.unwrap();
    let session = started["session"].as_str().unwrap().to_owned();
    assert_eq!(check("POST", sessions, start()).await, 201);
    assert_eq!(
        check(
            "POST",
            sessions,
            h.post(format!("{base}/api/v1/agents/9/sessions"))
                .bearer_auth(&t.sync)
        )
        .await,
        404
    );
    let get = |number: &str| {
        h.get(format!("{base}/api/v1/click2call"))
            .query(&[("session", session.as_str()), ("number", number)])
    };
    assert_eq!(check("GET", click, get("0721234567")).await, 409);
    app.http_dialer("acme", &stub);
    assert_eq!(check("GET", click, get("0721234567")).await, 200);
    assert_eq!(check("GET", click, get("0721234567")).await, 429);
    assert_eq!(check("GET", click, get("0900123456")).await, 403);
    assert_eq!(check("GET", click, get("x")).await, 422);
    assert_eq!(
        check(
            "GET",
            click,
            h.get(format!(
                "{base}/api/v1/click2call?session=cgsess_x&number=1"
            ))
        )
        .await,
        401
    );
    let post = h
        .post(format!("{base}/api/v1/click2call"))
        .json(&json!({"session": session, "number": "0721234567"}));
    assert_eq!(check("POST", click, post).await, 429);
    let read = |id: &str| {
        h.get(format!("{base}/api/v1/click2call/{id}"))
            .bearer_auth(&t.admin)
    };
    assert_eq!(check("GET", state, read("1")).await, 200);
    assert_eq!(check("GET", state, read("2")).await, 404);
    assert_eq!(check("GET", state, read("x")).await, 422);
    let end = h
        .delete(format!("{base}/api/v1/agents/200/sessions"))
        .bearer_auth(&t.sync);
    assert_eq!(check("DELETE", sessions, end).await, 200);
    assert_eq!(
        check(
            "DELETE",
            agent,
            h.delete(format!("{base}/api/v1/agents/200"))
                .bearer_auth(&t.sync)
        )
        .await,
        204
    );
    assert_eq!(
        check(
            "GET",
            "/agent/login",
            h.get(format!("{base}/agent/login?session=cgsess_x"))
        )
        .await,
        401
    );
}

#[tokio::test]
async fn the_screen_pop_offers_a_call_button_that_calls_as_the_signed_in_agent() {
    let app = spawn_app_with(dialing_loopback).await;
    let t = tenant(&app, "acme").await;
    let (stub, mut requests) = fake_pbx::dial_api(200, "{}").await;
    let session = app.signed_in_with_a_contact(&t).await;
    let link = crate::popup::link_for(&app, &t.pbx, "0721234567").await;
    let page = |cookie: Option<String>| {
        let mut request = app.http.get(&link);
        if let Some(cookie) = cookie {
            request = request.header("cookie", cookie);
        }
        request.send()
    };
    let without_dialer = page(None).await.unwrap().text().await.unwrap();
    assert!(
        !without_dialer.contains("agent/call"),
        "no dialer, no button"
    );
    app.http_dialer("acme", &stub);

    // The agent's browser signs in once per shift: the link, then its confirmation.
    let login = app.agent_login(&session).await;
    assert_eq!(login.status(), 200);
    let set_cookie = login.headers()["set-cookie"].to_str().unwrap().to_owned();
    for part in [
        "cidgate_agent=cgsess_",
        "HttpOnly",
        "Secure",
        "SameSite=Strict",
        "Max-Age=",
    ] {
        assert!(set_cookie.contains(part), "{part}: {set_cookie}");
    }
    let cookie = set_cookie.split(';').next().unwrap().to_owned();
    let refused = app
        .http
        .post(format!("{}/agent/login", app.address))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("session=cgsess_nothing")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    assert!(!refused.headers().contains_key("set-cookie"));

    // The pop page offers the button (a form, no script), naming the agent.
    let shown = page(Some(cookie.clone())).await.unwrap();
    let csp = shown.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("form-action 'self'") && csp.contains("default-src 'none'"),
        "{csp}"
    );
    let html = shown.text().await.unwrap();
    assert!(
        html.contains(r#"<form class="call" method="post" action="../agent/call">"#),
        "{html}"
    );
    assert!(
        html.contains(r#"name="number" value="&#43;40721234567""#)
            || html.contains(r#"name="number" value="+40721234567""#),
        "{html}"
    );
    assert!(html.contains("<bdi>200</bdi>"), "{html}");
    assert!(!html.contains("<script"));

    // Pressing it calls as that agent.
    let press = |cookie: Option<&str>, origin: Option<&str>| {
        let mut request = app
            .http
            .post(format!("{}/agent/call", app.address))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("number=%2B40721234567");
        if let Some(cookie) = cookie {
            request = request.header("cookie", cookie);
        }
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        request.send()
    };
    let pressed = press(Some(&cookie), Some(&app.address)).await.unwrap();
    assert_eq!(pressed.status(), 200);
    assert!(pressed.text().await.unwrap().contains("RequestID 1"));
    let got = requests.try_recv().unwrap();
    assert_eq!(got.query("agent").as_deref(), Some("200"));
    assert_eq!(got.query("number").as_deref(), Some("+40721234567"));

    // Another site's form arrives without the cookie, or names its origin: no call.
    assert_eq!(press(None, None).await.unwrap().status(), 401);
    let forged = press(Some(&cookie), Some("https://evil.example"))
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    assert!(requests.try_recv().is_err());
}
