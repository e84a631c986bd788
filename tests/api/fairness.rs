//! Deliveries shared fairly (issue 28 item 4, issue 27 item 8): one tenant's backlog to a
//! hanging receiver does not hold another tenant's delivery back, each profile has at
//! most `--max-in-flight` requests out, and a receiver that keeps timing out gets a
//! smaller share.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cidgate::config::ServeSettings;
use cidgate::config::webhooks::{RetrySchedule, Roles};
use cidgate::store;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

use crate::helpers::{TestApp, eventually, spawn_app_with};

/// A receiver that accepts connections and never answers; counts them.
#[derive(Clone, Default)]
struct Hanging {
    open: Arc<AtomicUsize>,
    most_open: Arc<AtomicUsize>,
    accepted: Arc<AtomicUsize>,
}

impl Hanging {
    async fn start(&self) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let me = self.clone();
        tokio::spawn(async move {
            loop {
                let (mut socket, _) = listener.accept().await.unwrap();
                me.accepted.fetch_add(1, Ordering::SeqCst);
                let now = me.open.fetch_add(1, Ordering::SeqCst) + 1;
                me.most_open.fetch_max(now, Ordering::SeqCst);
                let open = me.open.clone();
                tokio::spawn(async move {
                    // Read until the client gives up (its timeout closes the connection).
                    let mut sink = [0u8; 4096];
                    while matches!(socket.read(&mut sink).await, Ok(n) if n > 0) {}
                    open.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        url
    }
}

/// A small receiver that serves one request at a time, each taking `work`; records the
/// `webhook-id` of each request and how many connections waited at once.
#[derive(Clone, Default)]
pub(crate) struct SingleThreaded {
    ids: Arc<Mutex<Vec<String>>>,
    requests: Arc<Mutex<Vec<Request>>>,
}

/// A request as it arrived: its request line, headers (names lower-case) and body.
#[derive(Clone, Debug)]
pub(crate) struct Request {
    pub line: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl SingleThreaded {
    pub(crate) async fn start(&self, work: Duration) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (ids, requests) = (self.ids.clone(), self.requests.clone());
        tokio::spawn(async move {
            loop {
                let (socket, _) = listener.accept().await.unwrap();
                let mut reader = BufReader::new(socket);
                let (mut id, mut length) = (String::new(), 0usize);
                let (mut first, mut headers) = (String::new(), Vec::new());
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).await.unwrap_or(0) == 0 {
                        break;
                    }
                    let line = line.trim_end();
                    if line.is_empty() {
                        break;
                    }
                    if first.is_empty() {
                        first = line.to_owned();
                        continue;
                    }
                    if let Some((name, value)) = line.split_once(':') {
                        headers.push((name.to_ascii_lowercase(), value.trim().to_owned()));
                        match name.to_ascii_lowercase().as_str() {
                            "webhook-id" => id = value.trim().to_owned(),
                            "content-length" => length = value.trim().parse().unwrap_or(0),
                            _ => {}
                        }
                    }
                }
                let mut body = vec![0u8; length];
                if reader.read_exact(&mut body).await.is_err() {
                    continue;
                }
                // The receiver's own work: one request at a time.
                tokio::time::sleep(work).await;
                let mut socket = reader.into_inner();
                let answer = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";
                if socket.write_all(answer).await.is_ok() {
                    ids.lock().unwrap().push(id);
                    requests.lock().unwrap().push(Request {
                        line: first,
                        headers,
                        body,
                    });
                }
                let _ = socket.shutdown().await;
            }
        });
        url
    }

    pub(crate) fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }

    pub(crate) fn ids(&self) -> Vec<String> {
        self.ids.lock().unwrap().clone()
    }
}

fn deliveries_to_127(s: &mut ServeSettings, timeout_ms: u64) {
    s.webhooks.client.webhook_allow_networks = vec!["127.0.0.0/8".parse().unwrap()];
    s.webhooks.client.webhook_timeout_ms = timeout_ms;
    s.webhooks.webhook_retry_schedule = RetrySchedule::parse("0s,50ms,50ms,50ms").unwrap();
}

/// A tenant and a token for its PBX's call events.
pub(crate) async fn tenant(app: &TestApp, slug: &str) -> String {
    app.create_tenant(slug, "RO").await;
    app.token(slug, "lookup,events").await
}

fn cli(app: &TestApp, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_cidgate"))
        .args(args)
        .env("DATABASE_URL", &app.db.url)
        .env("CIDGATE_WEBHOOK_ALLOW_NETWORKS", "127.0.0.0/8")
        .env_remove("RUST_LOG")
        .output()
        .expect("running cidgate")
}

pub(crate) fn ok(output: std::process::Output) -> String {
    assert!(
        output.status.success(),
        "command failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

pub(crate) async fn post_events(app: &TestApp, token: &str, events: &Value) {
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

pub(crate) fn finished_call(call_id: &str) -> Value {
    json!([
        {"call_id": call_id, "event": "started", "at": "2026-12-01T10:00:00Z",
         "direction": "inbound", "caller": "0721234567", "dnis": "0210000000"},
        {"call_id": call_id, "event": "hangup", "at": "2026-12-01T10:00:30Z"},
    ])
}

#[tokio::test]
async fn a_tenants_backlog_to_a_hanging_receiver_does_not_delay_another_tenants_delivery() {
    let app = spawn_app_with(|s| deliveries_to_127(s, 2_000)).await;
    let (acme, globex) = (tenant(&app, "acme").await, tenant(&app, "globex").await);
    let hanging = Hanging::default();
    let dead_url = hanging.start().await;
    let fast = SingleThreaded::default();
    let fast_url = fast.start(Duration::ZERO).await;
    ok(cli(
        &app,
        &[
            "profile", "create", "--tenant", "acme", "slow", "--url", &dead_url,
        ],
    ));
    ok(cli(
        &app,
        &[
            "profile", "create", "--tenant", "globex", "fast", "--url", &fast_url,
        ],
    ));

    // acme's backlog: one call through the API, then 5,000 more like it, all overdue.
    post_events(&app, &acme, &finished_call("acme-1")).await;
    let client = app.pool.get().await.unwrap();
    let copied = client
        .execute(
            "INSERT INTO webhook_deliveries (id, message_id, tenant_id, profile_id, call_id, trigger, call, next_attempt_at)
             SELECT u.id, u.id, d.tenant_id, d.profile_id, u.id, d.trigger,
                    jsonb_set(d.call, '{id}', to_jsonb(u.id::text)), now() - interval '1 hour'
             FROM webhook_deliveries d, (SELECT gen_random_uuid() AS id FROM generate_series(1, 5000)) u",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(copied, 5000);
    eventually(
        Duration::from_secs(10),
        "acme's receiver hangs on requests",
        || async { hanging.accepted.load(Ordering::SeqCst) > 0 },
    )
    .await;

    let posted = Instant::now();
    post_events(&app, &globex, &finished_call("globex-1")).await;
    eventually(
        Duration::from_secs(20),
        "globex's delivery arrives",
        || async { !fast.ids().is_empty() },
    )
    .await;
    let waited = posted.elapsed();
    assert!(
        waited < Duration::from_secs(3),
        "globex's delivery waited {waited:?} behind acme's backlog"
    );
    eventually(
        Duration::from_secs(10),
        "acme's timeouts shrink its share",
        || async {
            let streak: i32 = client
                .query_one(
                    "SELECT timeout_streak FROM webhook_profiles WHERE name = 'slow'",
                    &[],
                )
                .await
                .unwrap()
                .get(0);
            streak > 0
        },
    )
    .await;
    let most = hanging.most_open.load(Ordering::SeqCst);
    assert!(
        (1..=8).contains(&most),
        "the hanging receiver had {most} requests at once; a profile's share is 8"
    );
}

#[tokio::test]
async fn a_slow_single_threaded_receiver_gets_every_delivery_without_timeouts() {
    let app = spawn_app_with(|s| deliveries_to_127(s, 1_000)).await;
    let pbx = tenant(&app, "acme").await;
    let receiver = SingleThreaded::default();
    let url = receiver.start(Duration::from_millis(40)).await;
    // Three profiles to the same small receiver, one request each at a time: at most
    // three wait, 120 ms, well within the 1 s timeout. With the instance's 256 at once,
    // the last of 90 would wait 3.6 s and time out.
    for name in ["a", "b", "c"] {
        let target = format!("{url}/{name}");
        let out = ok(cli(
            &app,
            &[
                "profile",
                "create",
                "--tenant",
                "acme",
                name,
                "--url",
                &target,
                "--max-in-flight",
                "1",
            ],
        ));
        assert!(out.contains("created profile"), "{out}");
    }
    let shown = ok(cli(&app, &["profile", "show", "--tenant", "acme", "a"]));
    assert!(shown.contains("\"max_in_flight\": 1"), "{shown}");

    let events: Vec<Value> = (0..30)
        .flat_map(|i| {
            finished_call(&format!("call-{i}"))
                .as_array()
                .unwrap()
                .clone()
        })
        .collect();
    post_events(&app, &pbx, &Value::Array(events)).await;

    let client = app.pool.get().await.unwrap();
    eventually(
        Duration::from_secs(30),
        "all 90 deliveries finish",
        || async {
            let finished: i64 = client
            .query_one(
                "SELECT count(*) FROM webhook_deliveries WHERE state IN ('delivered', 'failed')",
                &[],
            )
            .await
            .unwrap()
            .get(0);
            finished == 90
        },
    )
    .await;
    let row = client
        .query_one(
            "SELECT count(*) FILTER (WHERE state = 'delivered' AND attempts = 1),
                    count(*), (SELECT count(*) FROM webhook_attempts WHERE error IS NOT NULL)
             FROM webhook_deliveries",
            &[],
        )
        .await
        .unwrap();
    let (first_time, all, errors): (i64, i64, i64) = (row.get(0), row.get(1), row.get(2));
    assert_eq!(
        (first_time, all, errors),
        (90, 90, 0),
        "every delivery at its first attempt"
    );
    let mut ids = receiver.ids();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 90, "no delivery was sent twice");
}

#[tokio::test]
async fn a_profile_is_capped_by_its_share_and_timeouts_shrink_it() {
    // An instance that does not deliver: the test claims as every instance's worker does.
    let app = spawn_app_with(|s| {
        deliveries_to_127(s, 2_000);
        s.webhooks.roles = Roles {
            http: true,
            deliver: false,
        };
    })
    .await;
    let pbx = tenant(&app, "acme").await;
    ok(cli(
        &app,
        &[
            "profile",
            "create",
            "--tenant",
            "acme",
            "crm",
            "--url",
            "http://127.0.0.1:9/",
        ],
    ));
    let events: Vec<Value> = (0..20)
        .flat_map(|i| finished_call(&format!("c{i}")).as_array().unwrap().clone())
        .collect();
    post_events(&app, &pbx, &Value::Array(events)).await;
    let mut client = app.pool.get().await.unwrap();
    let lease = Duration::from_secs(600);
    client
        .execute("UPDATE webhook_profiles SET timeout_streak = 3", &[])
        .await
        .unwrap();
    let claimed = store::deliveries::claim_fair(&mut client, 100, lease)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 2, "8 / (1 + 3 timeouts)");
    client
        .execute("UPDATE webhook_profiles SET timeout_streak = 0", &[])
        .await
        .unwrap();
    let more = store::deliveries::claim_fair(&mut client, 100, lease)
        .await
        .unwrap();
    assert_eq!(more.len(), 6, "the share of 8, less the 2 out");
    let none = store::deliveries::claim_fair(&mut client, 100, lease)
        .await
        .unwrap();
    assert!(none.is_empty(), "the rest wait their turn");
}
