//! Web-service profiles: call events out to a real receiver on 127.0.0.1, signed,
//! retried, refused where the SSRF guard says so, and delivered after a SIGKILL.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use cidgate::config::ServeSettings;
use cidgate::config::webhooks::RetrySchedule;
use cidgate::domain::{TenantSlug, TokenScopes};
use cidgate::store;
use serde_json::{Value, json};

use crate::helpers::{PROPAGATION, TestApp, eventually, spawn_app_with, spawn_instance};
use crate::proxy::{DbProxy, Mode};

/// What the receiver got.
#[derive(Clone, Debug)]
struct Received {
    method: String,
    path_and_query: String,
    headers: http::HeaderMap,
    body: Vec<u8>,
}

impl Received {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    fn query(&self) -> Vec<(String, String)> {
        let query = self.path_and_query.split_once('?').map_or("", |(_, q)| q);
        form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect()
    }

    fn form(&self) -> Vec<(String, String)> {
        form_urlencoded::parse(&self.body).into_owned().collect()
    }
}

/// How the receiver answers: statuses in turn (then 200), and whether the first
/// request is never answered (a gateway killed while it waits).
#[derive(Default)]
struct Script {
    statuses: VecDeque<u16>,
    down: bool,
    hang_first: bool,
}

/// A CRM's endpoint on 127.0.0.1 that records every request.
#[derive(Clone)]
struct Receiver {
    url: String,
    got: Arc<Mutex<Vec<Received>>>,
    script: Arc<Mutex<Script>>,
}

impl Receiver {
    async fn start() -> Self {
        let got: Arc<Mutex<Vec<Received>>> = Arc::default();
        let script: Arc<Mutex<Script>> = Arc::default();
        let (g, s) = (got.clone(), script.clone());
        let server = HttpServer::new(move || {
            let (got, script) = (g.clone(), s.clone());
            App::new().default_service(web::to(move |req: HttpRequest, body: web::Bytes| {
                let (got, script) = (got.clone(), script.clone());
                async move { answer(&req, &body, &got, &script).await }
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
            script,
        }
    }

    fn received(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }

    fn count(&self) -> usize {
        self.got.lock().unwrap().len()
    }

    fn answer_in_turn(&self, statuses: &[u16]) {
        self.script.lock().unwrap().statuses.extend(statuses);
    }

    fn set_down(&self, down: bool) {
        self.script.lock().unwrap().down = down;
    }

    async fn wait_for(&self, n: usize, what: &str) -> Vec<Received> {
        eventually(Duration::from_secs(30), what, || async {
            self.count() >= n
        })
        .await;
        self.received()
    }
}

async fn answer(
    req: &HttpRequest,
    body: &[u8],
    got: &Mutex<Vec<Received>>,
    script: &Mutex<Script>,
) -> HttpResponse {
    let mut headers = http::HeaderMap::new();
    for (name, value) in req.headers() {
        headers.append(
            http::HeaderName::from_bytes(name.as_str().as_bytes()).unwrap(),
            http::HeaderValue::from_bytes(value.as_bytes()).unwrap(),
        );
    }
    let path_and_query = match req.query_string() {
        "" => req.path().to_owned(),
        q => format!("{}?{q}", req.path()),
    };
    let (status, hang) = {
        let mut script = script.lock().unwrap();
        let first = got.lock().unwrap().is_empty();
        let hang = first && script.hang_first;
        let status = if script.down {
            503
        } else {
            script.statuses.pop_front().unwrap_or(200)
        };
        (status, hang)
    };
    got.lock().unwrap().push(Received {
        method: req.method().to_string(),
        path_and_query,
        headers,
        body: body.to_vec(),
    });
    if hang {
        std::future::pending::<()>().await;
    }
    HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap()).body("thanks")
}

/// Deliveries allowed to 127.0.0.1, retried quickly.
fn fast_deliveries(s: &mut ServeSettings) {
    s.webhooks.client.webhook_allow_networks = vec!["127.0.0.0/8".parse().unwrap()];
    s.webhooks.client.webhook_timeout_ms = 2_000;
    s.webhooks.webhook_retry_schedule =
        RetrySchedule::parse("0s,50ms,50ms,50ms,50ms,50ms,50ms,50ms,50ms,50ms").unwrap();
}

/// A tenant with a PBX token for call events and a sync token; answers the PBX token.
async fn tenant(app: &TestApp, slug: &str) -> (String, String) {
    let created = app.create_tenant(slug, "RO").await;
    let client = app.pool.get().await.unwrap();
    let tenant = store::tenants::find_by_slug(&client, &TenantSlug::parse(slug).unwrap())
        .await
        .unwrap()
        .unwrap();
    let (_, pbx) = store::tokens::create(
        &client,
        tenant.id,
        TokenScopes::parse("lookup,events").unwrap(),
        "pbx",
    )
    .await
    .unwrap();
    (pbx.expose().to_owned(), created.sync_token)
}

/// The `cidgate` command against the test's database, 127.0.0.1 allowed as a target.
fn cli(app: &TestApp, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_cidgate"))
        .args(args)
        .env("DATABASE_URL", &app.db.url)
        .env("CIDGATE_WEBHOOK_ALLOW_NETWORKS", "127.0.0.0/8")
        .env_remove("RUST_LOG")
        .output()
        .expect("running cidgate")
}

fn stdout(output: &std::process::Output) -> String {
    assert!(
        output.status.success(),
        "command failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone()).unwrap()
}

/// Creates a profile with the command line; answers its signing secret (the last line).
fn create_profile(app: &TestApp, name: &str, args: &[&str]) -> String {
    let mut all = vec!["profile", "create", "--tenant", "acme", name];
    all.extend_from_slice(args);
    let out = stdout(&cli(app, &all));
    let secret = out.lines().last().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"), "{out}");
    secret
}

async fn post_events(app: &TestApp, token: &str, events: &Value) {
    let response = app
        .http
        .post(format!("{}/api/v1/events", app.address))
        .bearer_auth(token)
        .json(events)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
}

/// A whole inbound call: started, answered, recorded, hung up.
fn finished_call(call_id: &str, caller: &str) -> Value {
    json!([
        {"call_id": call_id, "event": "started", "at": "2026-12-01T10:00:00Z", "direction": "inbound",
         "caller": caller, "caller_name": "Ion Popescu", "dnis": "0210000000", "agent": "Ana(200)",
         "group": "Sales", "tags": "vip,renewal", "account_codes": "1001,1002"},
        {"call_id": call_id, "event": "pickup", "at": "2026-12-01T10:00:10Z", "agent": "Bo(201)"},
        {"call_id": call_id, "event": "recorded", "at": "2026-12-01T10:01:00Z",
         "recording_url": "https://pbx.example.com/rec/1.wav"},
        {"call_id": call_id, "event": "hangup", "at": "2026-12-01T10:02:10Z"},
    ])
}

fn verify(received: &Received, secret: &str) {
    standardwebhooks::Webhook::new(secret)
        .unwrap()
        .verify(&received.body, &received.headers)
        .expect("the signature verifies");
}

/// Waits until `count` deliveries are in `state`.
async fn deliveries_in(app: &TestApp, state: &str, count: usize, within: Duration, what: &str) {
    eventually(within, what, || async {
        delivery_states(app)
            .await
            .iter()
            .filter(|(s, _)| s == state)
            .count()
            == count
    })
    .await;
}

async fn delivery_states(app: &TestApp) -> Vec<(String, i32)> {
    let client = app.pool.get().await.unwrap();
    client
        .query(
            "SELECT state, attempts FROM webhook_deliveries ORDER BY seq",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

#[tokio::test]
async fn a_finished_call_meeting_the_criteria_is_sent_signed_with_every_placeholder_filled() {
    let app = spawn_app_with(fast_deliveries).await;
    let receiver = Receiver::start().await;
    let (pbx, sync) = tenant(&app, "acme").await;
    let contact = json!({"name": "Ion Popescu SRL", "phones": ["0721000001"],
        "crm_url": "https://crm.example.com/c/77", "updated_at": "2026-11-20T10:00:00Z"});
    assert!(
        app.put_contact(&sync, "77", &contact)
            .await
            .status()
            .is_success()
    );
    let from_url = format!(
        "{}/identity.asp?CallType={{{{CallTypeName}}}}&Event={{{{DialApiEventName}}}}&CallID={{{{CallID}}}}&RequestID={{{{DialApiRequestID}}}}&EventCode={{{{DialApiEventCode}}}}&IsCallRecorded={{{{IsCallRecorded}}}}&Guid={{{{CallUUID}}}}",
        receiver.url
    );
    let form: Vec<String> = [
        "empty=<Empty Value>",
        "codes=<Account Codes>",
        "agent=<Agent>",
        "direction=<Call Direction>",
        "name=<Caller Name>",
        "dnis=<DNIS>",
        "call=<Call ID>",
        "external=<External Number>",
        "group=<Group/Skill>",
        "location=<Location>",
        "time=<Time>",
        "tags=<Tag>",
        "recording=<Audio Recording Link>",
        "report=<Report Call ID>",
        "number=<Caller Number>",
        "contact=<Contact ID>",
        "contact_name=<Contact Name>",
        "crm=<CRM URL>",
        "pop=<Popup Link>",
        "duration=<Duration>",
        "talk=<Talk Duration>",
        "outcome=<Outcome>",
        "answered=<Answered Time>",
        "ended=<End Time>",
        "request=<Request ID>",
        "event=<Event>",
        "mixed=call <Report Call ID> from <Caller Name>",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    let mut args = vec![
        "--from-url",
        from_url.as_str(),
        "--criteria",
        "Call Direction = Inbound",
        "--criteria",
        "Talk Duration >= 60",
        "--secret-header",
        "Authorization: Bearer crm-key",
    ];
    for f in &form {
        args.extend(["--form", f.as_str()]);
    }
    let secret = create_profile(&app, "crm", &args);
    create_profile(
        &app,
        "outbound-only",
        &[
            "--url",
            &receiver.url,
            "--criteria",
            "Call Direction = Outbound",
        ],
    );

    post_events(&app, &pbx, &finished_call("pbx-1", "0721000001")).await;
    let got = receiver.wait_for(1, "the finished call is delivered").await;
    let sent = &got[0];
    verify(sent, &secret);
    assert_eq!(sent.method, "POST");
    assert_eq!(sent.header("authorization"), "Bearer crm-key");
    assert_eq!(
        sent.header("content-type"),
        "application/x-www-form-urlencoded"
    );
    assert!(sent.path_and_query.starts_with("/identity.asp?"));
    let query = sent.query();
    assert_eq!(
        query,
        [
            ("CallType", "Inbound"),
            ("Event", "hangup"),
            ("CallID", "pbx-1"),
            ("RequestID", ""),
            ("EventCode", "1"),
            ("IsCallRecorded", "1"),
            ("Guid", ""),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
    );
    let form: std::collections::HashMap<String, String> = sent.form().into_iter().collect();
    let call: Value = {
        let client = app.pool.get().await.unwrap();
        client
            .query_one("SELECT to_jsonb(c) FROM calls c", &[])
            .await
            .unwrap()
            .get(0)
    };
    for (key, expected) in [
        ("empty", ""),
        ("codes", "1001,1002"),
        ("agent", "Bo(201)"),
        ("direction", "Inbound"),
        ("name", "Ion Popescu"),
        ("dnis", "0210000000"),
        ("call", call["id"].as_str().unwrap()),
        ("external", ""),
        ("group", "Sales"),
        ("location", "RO"),
        ("time", "1796119200000"),
        ("tags", "vip,renewal"),
        ("recording", "https://pbx.example.com/rec/1.wav"),
        ("report", "1"),
        ("number", "+40721000001"),
        ("contact", "77"),
        ("contact_name", "Ion Popescu SRL"),
        ("crm", "https://crm.example.com/c/77"),
        ("duration", "130"),
        ("talk", "120"),
        ("outcome", "answered"),
        ("answered", "1796119210000"),
        ("ended", "1796119330000"),
        ("request", ""),
        ("event", "hangup"),
        ("mixed", "call 1 from Ion Popescu"),
    ] {
        assert_eq!(form[key], expected, "{key}");
    }
    assert!(
        form["pop"].starts_with(&format!("{}/pop/", app.address)),
        "{}",
        form["pop"]
    );

    // Only the matching profile queued anything: the queue is written with the events.
    eventually(PROPAGATION, "the delivery is recorded", || async {
        delivery_states(&app).await == [("delivered".to_owned(), 1)]
    })
    .await;
    // Repeated events send nothing twice.
    post_events(&app, &pbx, &finished_call("pbx-1", "0721000001")).await;
    assert_eq!(delivery_states(&app).await.len(), 1);
    let listed = stdout(&cli(&app, &["delivery", "list", "--tenant", "acme"]));
    assert!(
        listed.contains("delivered") && listed.contains("crm"),
        "{listed}"
    );
}

#[tokio::test]
async fn a_json_body_and_url_parameters_are_exact_and_a_get_signs_its_path() {
    let app = spawn_app_with(fast_deliveries).await;
    let receiver = Receiver::start().await;
    let (pbx, _) = tenant(&app, "acme").await;
    let json_secret = create_profile(
        &app,
        "json",
        &[
            "--url",
            &format!("{}/calls?source=pbx", receiver.url),
            "--method",
            "PUT",
            "--param",
            "who=<Caller Name>",
            "--json-body",
            r#"{"caller": "<Caller Name>", "talk": "<Talk Duration>", "fixed": 1}"#,
            "--header",
            "X-Source: cidgate <Call Direction>",
        ],
    );
    let get_secret = create_profile(
        &app,
        "get",
        &[
            "--url",
            &format!("{}/get", receiver.url),
            "--method",
            "GET",
            "--param",
            "n=<Caller Number>",
            "--event",
            "call-started",
        ],
    );
    post_events(
        &app,
        &pbx,
        &json!([{"call_id": "x", "event": "started", "direction": "inbound",
        "caller": "0721000002", "caller_name": "Ana \"A\" & Co"},
        {"call_id": "x", "event": "hangup"}]),
    )
    .await;
    let got = receiver.wait_for(2, "both profiles deliver").await;
    let put = got.iter().find(|r| r.method == "PUT").unwrap();
    verify(put, &json_secret);
    assert_eq!(
        put.path_and_query,
        "/calls?source=pbx&who=Ana+%22A%22+%26+Co"
    );
    assert_eq!(put.header("x-source"), "cidgate Inbound");
    let body: Value = serde_json::from_slice(&put.body).unwrap();
    assert_eq!(
        body,
        json!({"caller": "Ana \"A\" & Co", "talk": "0", "fixed": 1})
    );
    let get = got.iter().find(|r| r.method == "GET").unwrap();
    assert_eq!(get.path_and_query, "/get?n=%2B40721000002");
    // Beyond the standard: a request without a body signs `METHOD path?query`.
    let signed = format!("GET {}", get.path_and_query);
    let mut headers = get.headers.clone();
    headers.remove("content-type");
    standardwebhooks::Webhook::new(&get_secret)
        .unwrap()
        .verify(signed.as_bytes(), &headers)
        .unwrap();
}

#[tokio::test]
async fn deliveries_wait_for_a_receiver_that_is_down_and_all_arrive_in_order_per_call() {
    let app = spawn_app_with(fast_deliveries).await;
    let receiver = Receiver::start().await;
    receiver.set_down(true);
    let (pbx, _) = tenant(&app, "acme").await;
    create_profile(
        &app,
        "crm",
        &["--url", &receiver.url, "--form", "call=<Report Call ID>"],
    );
    for i in 0..5 {
        post_events(&app, &pbx, &finished_call(&format!("c{i}"), "0721000001")).await;
    }
    receiver
        .wait_for(10, "attempts while the receiver is down")
        .await;
    // While the first delivery of call 1 waits, one more for the same call and profile
    // (`profile run`) queues behind it.
    let run = stdout(&cli(
        &app,
        &["profile", "run", "--tenant", "acme", "crm", "--call", "1"],
    ));
    assert!(run.starts_with("delivery "), "{run}");
    receiver.set_down(false);
    eventually(
        Duration::from_secs(30),
        "everything is delivered",
        || async {
            delivery_states(&app)
                .await
                .iter()
                .all(|(s, _)| s == "delivered")
        },
    )
    .await;
    let states = delivery_states(&app).await;
    assert_eq!(states.len(), 6);
    let delivered: Vec<Received> = receiver
        .received()
        .into_iter()
        .filter(|r| r.header("webhook-id").starts_with("msg_"))
        .collect();
    // Every call delivered; call 1's second delivery only after its first succeeded.
    let ok_ids: Vec<String> = {
        let client = app.pool.get().await.unwrap();
        client
            .query("SELECT 'msg_' || replace(message_id::text, '-', '') FROM webhook_deliveries ORDER BY seq", &[])
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect()
    };
    let last_seen = |id: &str| {
        delivered
            .iter()
            .rposition(|r| r.header("webhook-id") == id)
            .unwrap()
    };
    let first_seen = |id: &str| {
        delivered
            .iter()
            .position(|r| r.header("webhook-id") == id)
            .unwrap()
    };
    for id in &ok_ids {
        assert!(
            delivered.iter().any(|r| r.header("webhook-id") == id),
            "{id} arrived"
        );
    }
    let call_one = &ok_ids[0];
    let manual = &ok_ids[5];
    assert!(
        first_seen(manual) > last_seen(call_one),
        "the later delivery waited for the earlier"
    );
    let attempts: i32 = states.iter().map(|(_, a)| a).sum();
    assert!(attempts > 6, "the receiver's 503s were retried");
}

#[tokio::test]
async fn a_client_error_is_not_retried_and_410_disables_the_profile() {
    let app = spawn_app_with(fast_deliveries).await;
    let receiver = Receiver::start().await;
    receiver.answer_in_turn(&[400, 410]);
    let (pbx, _) = tenant(&app, "acme").await;
    create_profile(&app, "crm", &["--url", &receiver.url]);
    post_events(&app, &pbx, &finished_call("a", "0721000001")).await;
    eventually(PROPAGATION, "the 400 fails the delivery", || async {
        delivery_states(&app).await == [("failed".to_owned(), 1)]
    })
    .await;
    post_events(&app, &pbx, &finished_call("b", "0721000001")).await;
    deliveries_in(&app, "failed", 2, PROPAGATION, "the 410 fails it").await;
    let listed = stdout(&cli(&app, &["profile", "list", "--tenant", "acme"]));
    assert!(
        listed.contains("disabled") && listed.contains("410"),
        "{listed}"
    );
    assert_eq!(receiver.count(), 2, "neither was tried again");
    let failed = stdout(&cli(
        &app,
        &["delivery", "list", "--tenant", "acme", "--failed"],
    ));
    assert_eq!(failed.lines().count(), 2, "{failed}");
}

#[tokio::test]
async fn a_profile_failing_too_long_is_disabled_with_its_reason_and_enabling_resets_it() {
    let app = spawn_app_with(|s| {
        fast_deliveries(s);
        s.webhooks.webhook_disable_after = Duration::from_millis(1);
    })
    .await;
    let receiver = Receiver::start().await;
    receiver.set_down(true);
    let (pbx, _) = tenant(&app, "acme").await;
    create_profile(&app, "crm", &["--url", &receiver.url]);
    post_events(&app, &pbx, &finished_call("a", "0721000001")).await;
    eventually(PROPAGATION, "the profile is disabled", || async {
        stdout(&cli(&app, &["profile", "list", "--tenant", "acme"])).contains("disabled")
    })
    .await;
    let shown: Value = serde_json::from_str(&stdout(&cli(
        &app,
        &["profile", "show", "--tenant", "acme", "crm"],
    )))
    .unwrap();
    assert!(
        shown["disabled_reason"]
            .as_str()
            .unwrap()
            .contains("failing without a success since"),
        "{shown}"
    );
    receiver.set_down(false);
    stdout(&cli(
        &app,
        &["profile", "enable", "--tenant", "acme", "crm"],
    ));
    let shown: Value = serde_json::from_str(&stdout(&cli(
        &app,
        &["profile", "show", "--tenant", "acme", "crm"],
    )))
    .unwrap();
    assert_eq!(shown["enabled"], true);
    assert_eq!(shown["disabled_reason"], Value::Null);
    assert_eq!(shown["failing_since"], Value::Null);
    eventually(
        Duration::from_secs(10),
        "the waiting delivery goes once enabled",
        || async {
            delivery_states(&app)
                .await
                .iter()
                .all(|(s, _)| s == "delivered")
        },
    )
    .await;
}

#[tokio::test]
async fn internal_targets_are_refused_at_save_at_test_and_at_delivery() {
    let app = spawn_app_with(|s| {
        fast_deliveries(s);
        s.webhooks.client.webhook_allow_networks.clear();
    })
    .await;
    let receiver = Receiver::start().await;
    let (pbx, _) = tenant(&app, "acme").await;
    let refused = |url: &str| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_cidgate"))
            .args(["profile", "create", "--tenant", "acme", "x", "--url", url])
            .env("DATABASE_URL", &app.db.url)
            .env_remove("CIDGATE_WEBHOOK_ALLOW_NETWORKS")
            .output()
            .unwrap();
        assert!(!out.status.success(), "{url} was accepted");
        String::from_utf8(out.stderr).unwrap()
    };
    for (url, says) in [
        ("http://127.0.0.1/", "127.0.0.1 is a loopback address"),
        ("http://10.0.0.1/", "10.0.0.1 is a private address"),
        ("http://[::1]/", "::1 is a loopback address"),
        (
            "http://[::ffff:127.0.0.1]/",
            "127.0.0.1 is a loopback address",
        ),
        ("http://localhost:8080/", "is a loopback address"),
    ] {
        let error = refused(url);
        assert!(error.contains(says), "{url}: {error}");
    }
    // Saved while allowed, then refused by a gateway and a test that do not allow it.
    create_profile(&app, "crm", &["--url", &receiver.url]);
    let test = std::process::Command::new(env!("CARGO_BIN_EXE_cidgate"))
        .args(["profile", "test", "--tenant", "acme", "crm"])
        .env("DATABASE_URL", &app.db.url)
        .output()
        .unwrap();
    assert!(!test.status.success());
    assert!(String::from_utf8_lossy(&test.stdout).contains("is a loopback address"));
    post_events(&app, &pbx, &finished_call("a", "0721000001")).await;
    eventually(PROPAGATION, "the delivery is refused", || async {
        delivery_states(&app).await == [("failed".to_owned(), 1)]
    })
    .await;
    assert_eq!(receiver.count(), 0);
    let listed = stdout(&cli(&app, &["delivery", "list", "--tenant", "acme"]));
    assert!(listed.contains("loopback"), "{listed}");
}

#[tokio::test]
async fn test_shows_the_request_with_secrets_masked_and_sends_it() {
    let app = spawn_app_with(fast_deliveries).await;
    let receiver = Receiver::start().await;
    tenant(&app, "acme").await;
    let secret = create_profile(
        &app,
        "crm",
        &[
            "--url",
            &receiver.url,
            "--form",
            "who=<Caller Name>",
            "--secret-header",
            "Authorization: Bearer crm-key",
        ],
    );
    let dry = stdout(&cli(
        &app,
        &["profile", "test", "--tenant", "acme", "crm", "--dry-run"],
    ));
    assert!(dry.starts_with(&format!("POST {}/", receiver.url)), "{dry}");
    assert!(
        dry.contains("Authorization: ********") && !dry.contains("crm-key"),
        "{dry}"
    );
    assert!(
        dry.contains("who=John+Doe") && dry.contains("not sent"),
        "{dry}"
    );
    assert_eq!(receiver.count(), 0);
    let sent = stdout(&cli(&app, &["profile", "test", "--tenant", "acme", "crm"]));
    assert!(
        sent.contains("answered 200") && sent.contains("thanks"),
        "{sent}"
    );
    verify(&receiver.received()[0], &secret);
    // From the command line, `<Popup Link>` points at the gateway named by --public-url.
    create_profile(
        &app,
        "pop",
        &["--url", &receiver.url, "--form", "pop=<Popup Link>"],
    );
    let pop = stdout(&cli(
        &app,
        &[
            "profile",
            "test",
            "--tenant",
            "acme",
            "pop",
            "--dry-run",
            "--public-url",
            "https://gw.example.com",
        ],
    ));
    assert!(
        pop.contains("pop=https%3A%2F%2Fgw.example.com%2Fpop%2F"),
        "{pop}"
    );
    let shown = stdout(&cli(&app, &["profile", "show", "--tenant", "acme", "crm"]));
    assert!(
        !shown.contains("crm-key") && !shown.contains("whsec_"),
        "{shown}"
    );
}

#[tokio::test]
async fn a_replayed_delivery_keeps_its_webhook_id() {
    let app = spawn_app_with(fast_deliveries).await;
    let receiver = Receiver::start().await;
    let (pbx, _) = tenant(&app, "acme").await;
    create_profile(&app, "crm", &["--url", &receiver.url]);
    post_events(&app, &pbx, &finished_call("a", "0721000001")).await;
    let first = receiver.wait_for(1, "the delivery").await;
    let id = stdout(&cli(&app, &["delivery", "list", "--tenant", "acme"]))
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();
    eventually(PROPAGATION, "it is recorded delivered", || async {
        delivery_states(&app).await == [("delivered".to_owned(), 1)]
    })
    .await;
    stdout(&cli(&app, &["delivery", "replay", &id]));
    let again = receiver.wait_for(2, "the replay").await;
    assert_eq!(again[1].header("webhook-id"), first[0].header("webhook-id"));
}

#[tokio::test]
async fn a_gateway_killed_mid_delivery_delivers_after_restart_with_the_same_webhook_id() {
    let app = spawn_app_with(|s| {
        fast_deliveries(s);
        s.webhooks.roles = cidgate::config::webhooks::Roles::parse("http").unwrap();
    })
    .await;
    let receiver = Receiver::start().await;
    receiver.script.lock().unwrap().hang_first = true;
    let (pbx, _) = tenant(&app, "acme").await;
    create_profile(&app, "crm", &["--url", &receiver.url]);
    // This instance only serves HTTP; a separate `cidgate serve` process delivers.
    let (mut server, _) = app
        .serve_process(|command| {
            command
                .env("CIDGATE_WEBHOOK_ALLOW_NETWORKS", "127.0.0.0/8")
                .env("CIDGATE_WEBHOOK_TIMEOUT_MS", "3000")
                .env("CIDGATE_ROLES", "deliver")
                .stderr(std::process::Stdio::null());
        })
        .await;
    post_events(&app, &pbx, &finished_call("a", "0721000001")).await;
    let first = receiver.wait_for(1, "the deliverer sends").await;
    server.kill().unwrap(); // SIGKILL, mid-request
    server.wait().unwrap();
    assert_eq!(delivery_states(&app).await, [("sending".to_owned(), 1)]);
    let (mut restarted, _) = app
        .serve_process(|command| {
            command
                .env("CIDGATE_WEBHOOK_ALLOW_NETWORKS", "127.0.0.0/8")
                .env("CIDGATE_WEBHOOK_TIMEOUT_MS", "3000")
                .env("CIDGATE_ROLES", "deliver")
                .stderr(std::process::Stdio::null());
        })
        .await;
    let again = receiver.wait_for(2, "the restarted gateway delivers").await;
    assert_eq!(again[1].header("webhook-id"), first[0].header("webhook-id"));
    eventually(PROPAGATION, "it is recorded delivered", || async {
        delivery_states(&app).await == [("delivered".to_owned(), 2)]
    })
    .await;
    restarted.kill().unwrap();
    restarted.wait().unwrap();
}

/// A new admin token of an existing tenant.
async fn admin_token(app: &TestApp, slug: &str) -> String {
    let client = app.pool.get().await.unwrap();
    let t = store::tenants::find_by_slug(&client, &TenantSlug::parse(slug).unwrap())
        .await
        .unwrap()
        .unwrap();
    let (_, token) =
        store::tokens::create(&client, t.id, cidgate::domain::TokenScope::Admin, "ops")
            .await
            .unwrap();
    token.expose().to_owned()
}

#[tokio::test]
async fn profile_requests_to_a_hanging_database_get_503_by_the_write_timeout() {
    let app = spawn_app_with(fast_deliveries).await;
    let proxy = DbProxy::start(&app.db.url).await;
    let gateway = spawn_instance(&proxy.url(&app.db.url), |s| s.write_timeout_ms = 1_000).await;
    tenant(&app, "acme").await;
    let admin = admin_token(&app, "acme").await;
    // The delivery log: one of the routes that once took a pool connection unbounded.
    let list = || {
        app.http
            .get(format!("{gateway}/api/v1/deliveries"))
            .bearer_auth(&admin)
            .timeout(Duration::from_secs(10))
            .send()
    };
    // Once the gateway knows the token, its pool holds a connection a hang can catch.
    eventually(PROPAGATION, "the gateway lists deliveries", || async {
        list().await.unwrap().status() == 200
    })
    .await;

    proxy.set(Mode::Stalled);
    let response = list().await.unwrap();
    assert_eq!(response.status(), 503);
    assert!(response.headers().contains_key("retry-after"));

    proxy.set(Mode::Open);
    eventually(
        Duration::from_secs(20),
        "deliveries are listed again",
        || async { list().await.unwrap().status() == 200 },
    )
    .await;
}

/// An admin API call; its answer checked against the OpenAPI description of `documented`.
async fn api(
    app: &TestApp,
    method: &str,
    path: &str,
    token: &str,
    body: Option<Value>,
    documented: &str,
) -> (u16, Value) {
    let url = format!("{}/api/v1{path}", app.address);
    let mut request = app
        .http
        .request(method.parse().unwrap(), url)
        .bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    crate::openapi::assert_conforms(method, documented, status, &text);
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

#[tokio::test]
async fn the_admin_api_manages_profiles_of_its_tenant_only_as_documented() {
    let app = spawn_app_with(fast_deliveries).await;
    let receiver = Receiver::start().await;
    let (pbx, _) = tenant(&app, "acme").await;
    tenant(&app, "other").await;
    let (admin, other_admin) = (
        admin_token(&app, "acme").await,
        admin_token(&app, "other").await,
    );
    let profiles = "/api/v1/profiles";
    let one = "/api/v1/profiles/{name}";

    let (status, created) = api(&app, "POST", "/profiles", &admin, Some(json!({
            "name": "crm", "from_url": format!("{}/x.asp?CallID={{{{CallID}}}}&From=<Caller Name>", receiver.url),
            "method": "GET", "criteria": ["Call Direction = Inbound"],
            "secret_headers": ["Authorization: Bearer crm-key"]})), profiles).await;
    assert_eq!(status, 201, "{created}");
    let secret = created["secret"].as_str().unwrap().to_owned();
    assert_eq!(
        created["profile"]["params"],
        json!(["CallID={{CallID}}", "From=<Caller Name>"])
    );
    assert_eq!(
        created["profile"]["secret_headers"],
        json!(["Authorization: ********"])
    );

    let (status, refused) = api(
        &app,
        "POST",
        "/profiles",
        &admin,
        Some(json!({"name": "bad", "url": "http://10.0.0.1/", "criteria": ["Colour = red"]})),
        profiles,
    )
    .await;
    assert_eq!(status, 422);
    assert_eq!(refused["fields"][0]["field"], "criteria");
    let (status, _) = api(
        &app,
        "POST",
        "/profiles",
        &admin,
        Some(json!({"name": "crm", "url": receiver.url})),
        profiles,
    )
    .await;
    assert_eq!(status, 422, "the name is taken");

    // Another tenant's admin sees none of it.
    let (status, listed) = api(&app, "GET", "/profiles", &other_admin, None, profiles).await;
    assert_eq!((status, listed), (200, json!({"profiles": []})));
    let (status, _) = api(&app, "GET", "/profiles/crm", &other_admin, None, one).await;
    assert_eq!(status, 404);
    let (status, _) = api(&app, "GET", "/profiles", &pbx, None, profiles).await;
    assert_eq!(status, 401, "a PBX token is not an admin token");

    // A PATCH that sends the mask back keeps the secret header.
    let (status, patched) = api(
        &app,
        "PATCH",
        "/profiles/crm",
        &admin,
        Some(json!({"secret_headers": ["Authorization: ********"], "event": "call-answered"})),
        one,
    )
    .await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(patched["event"], "call-answered");
    let (status, dry) = api(
        &app,
        "POST",
        "/profiles/crm/test",
        &admin,
        Some(json!({"dry_run": true})),
        "/api/v1/profiles/{name}/test",
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(dry["sent"], false);
    assert!(
        dry["url"]
            .as_str()
            .unwrap()
            .ends_with("/x.asp?CallID=1000000087849&From=John+Doe"),
        "{dry}"
    );

    post_events(&app, &pbx, &finished_call("a", "0721000001")).await;
    let got = receiver.wait_for(1, "the answered call is sent").await;
    assert_eq!(got[0].header("authorization"), "Bearer crm-key");
    verify_get(&got[0], &secret);
    eventually(PROPAGATION, "recorded", || async {
        delivery_states(&app).await == [("delivered".to_owned(), 1)]
    })
    .await;
    let (status, log) = api(
        &app,
        "GET",
        "/deliveries?failed=false",
        &admin,
        None,
        "/api/v1/deliveries",
    )
    .await;
    assert_eq!(status, 200);
    let id = log["deliveries"][0]["id"].as_str().unwrap().to_owned();
    let (status, attempts) = api(
        &app,
        "GET",
        &format!("/deliveries/{id}"),
        &admin,
        None,
        "/api/v1/deliveries/{id}",
    )
    .await;
    assert_eq!(
        (status, attempts["attempts"][0]["status"].clone()),
        (200, json!(200))
    );
    let (status, _) = api(
        &app,
        "GET",
        &format!("/deliveries/{id}"),
        &other_admin,
        None,
        "/api/v1/deliveries/{id}",
    )
    .await;
    assert_eq!(status, 404);
    let (status, replayed) = api(
        &app,
        "POST",
        &format!("/deliveries/{id}/replay"),
        &admin,
        None,
        "/api/v1/deliveries/{id}/replay",
    )
    .await;
    assert_eq!(status, 202);
    assert_eq!(replayed["replayed"][0]["replay_of"], id.as_str());
    receiver.wait_for(2, "the replay").await;

    let (status, disabled) = api(
        &app,
        "POST",
        "/profiles/crm/disable",
        &admin,
        None,
        "/api/v1/profiles/{name}/disable",
    )
    .await;
    assert_eq!((status, disabled["enabled"].clone()), (200, json!(false)));
    let (status, rotated) = api(
        &app,
        "POST",
        "/profiles/crm/rotate-secret",
        &admin,
        None,
        "/api/v1/profiles/{name}/rotate-secret",
    )
    .await;
    assert_eq!(status, 200);
    assert_ne!(rotated["secret"], secret.as_str());
    let (status, _) = api(&app, "DELETE", "/profiles/crm", &admin, None, one).await;
    assert_eq!(status, 204);
}

/// A GET's signature covers `METHOD path?query` (beyond the standard).
fn verify_get(received: &Received, secret: &str) {
    let signed = format!("{} {}", received.method, received.path_and_query);
    standardwebhooks::Webhook::new(secret)
        .unwrap()
        .verify(signed.as_bytes(), &received.headers)
        .expect("the signature verifies");
}

#[tokio::test]
async fn failed_deliveries_are_replayed_together_and_counted_in_the_metrics() {
    let app = spawn_app_with(fast_deliveries).await;
    let receiver = Receiver::start().await;
    receiver.answer_in_turn(&[400, 400]);
    let (pbx, _) = tenant(&app, "acme").await;
    create_profile(&app, "crm", &["--url", &receiver.url]);
    post_events(&app, &pbx, &finished_call("a", "0721000001")).await;
    post_events(&app, &pbx, &finished_call("b", "0721000001")).await;
    deliveries_in(&app, "failed", 2, PROPAGATION, "both fail").await;
    let replayed = stdout(&cli(
        &app,
        &[
            "delivery",
            "replay",
            "--tenant",
            "acme",
            "--failed",
            "--profile",
            "crm",
        ],
    ));
    assert_eq!(replayed.lines().count(), 2, "{replayed}");
    deliveries_in(
        &app,
        "delivered",
        2,
        PROPAGATION,
        "the replays are delivered",
    )
    .await;
    let metrics = app.get_raw("/metrics").await.text().await.unwrap();
    for line in [
        "cidgate_webhook_deliveries_total{outcome=\"failed\"} 2",
        "cidgate_webhook_deliveries_total{outcome=\"delivered\"} 2",
        "cidgate_webhook_attempt_duration_seconds_count 4",
    ] {
        assert!(metrics.contains(line), "{line} in\n{metrics}");
    }
    assert!(metrics.contains("cidgate_webhook_queue_depth"));
}

#[tokio::test]
async fn debug_logging_shows_each_request_and_answer_with_secrets_masked() {
    let app = spawn_app_with(|s| {
        fast_deliveries(s);
        s.webhooks.roles = cidgate::config::webhooks::Roles::parse("http").unwrap();
    })
    .await;
    let receiver = Receiver::start().await;
    let (pbx, _) = tenant(&app, "acme").await;
    create_profile(
        &app,
        "crm",
        &[
            "--url",
            &receiver.url,
            "--form",
            "who=<Caller Name>",
            "--secret-header",
            "Authorization: Bearer crm-key-123",
        ],
    );
    let log = tempfile::NamedTempFile::new().unwrap();
    let (mut server, _) = app
        .serve_process(|command| {
            command
                .env("CIDGATE_WEBHOOK_ALLOW_NETWORKS", "127.0.0.0/8")
                .env("CIDGATE_ROLES", "deliver")
                .env("RUST_LOG", "warn,cidgate::webhook=debug")
                .stderr(log.reopen().unwrap());
        })
        .await;
    post_events(&app, &pbx, &finished_call("a", "0721000001")).await;
    receiver.wait_for(1, "the delivery").await;
    eventually(PROPAGATION, "the answer is logged", || async {
        std::fs::read_to_string(log.path()).is_ok_and(|l| l.contains("webhook answer"))
    })
    .await;
    server.kill().unwrap();
    server.wait().unwrap();
    let logged = std::fs::read_to_string(log.path()).unwrap();
    assert!(
        logged.contains("webhook request") && logged.contains("authorization: ********"),
        "{logged}"
    );
    assert!(
        logged.contains("who=Ion+Popescu") && logged.contains("status=200"),
        "{logged}"
    );
    assert!(!logged.contains("crm-key-123"), "{logged}");
}
