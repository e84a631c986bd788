//! The one way out (issue 26 item 5, issue 28 item 5, issue 31 item 9): the HTTP dialer
//! under the same SSRF guard as web services, with the tenant's allowed networks, at save
//! and at dial; and a name that rebinds to loopback after it was checked never reaches
//! the local receiver.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cidgate::config::webhooks::{AllowRule, RetrySchedule};
use cidgate::outbound::Resolver;
use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use serde_json::{Value, json};

use crate::click2call::{json_of, tenant};
use crate::fairness::{SingleThreaded, finished_call, post_events};
use crate::fake_pbx;
use crate::helpers::{TestApp, eventually, spawn_app_resolving, spawn_app_with};

/// `cidgate` against the test's database with `CIDGATE_WEBHOOK_ALLOW_NETWORKS=allow`
/// (unset when empty).
fn cidgate(app: &TestApp, args: &[&str], allow: &str) -> std::process::Output {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_cidgate"));
    command
        .args(args)
        .env("DATABASE_URL", &app.db.url)
        .env_remove("CIDGATE_WEBHOOK_ALLOW_NETWORKS")
        .env_remove("CIDGATE_CONFIG")
        .env_remove("RUST_LOG");
    if !allow.is_empty() {
        command.env("CIDGATE_WEBHOOK_ALLOW_NETWORKS", allow);
    }
    command.output().expect("running cidgate")
}

fn set_http_dialer(app: &TestApp, slug: &str, url: &str, allow: &str) -> std::process::Output {
    let url = format!("{url}/dial?agent={{{{AgentExtension}}}}&number={{{{Number}}}}");
    cidgate(
        app,
        &["dialer", "set", "--tenant", slug, "http", "--url", &url],
        allow,
    )
}

#[tokio::test]
async fn an_http_dialer_reaches_a_private_pbx_only_for_the_tenant_its_network_is_allowed_for() {
    let app = spawn_app_with(|s| {
        s.webhooks.client.webhook_allow_networks =
            vec![AllowRule::parse("127.0.0.0/8@acme").unwrap()];
    })
    .await;
    let acme = tenant(&app, "acme").await;
    let globex = tenant(&app, "globex").await;
    let (stub, mut requests) = fake_pbx::dial_api(200, "{}").await;
    // By name: what globex may read must not say where the name leads.
    let by_name = stub.replace("127.0.0.1", "localhost");

    // At save: refused for globex, naming the setting; allowed for acme.
    let refused = set_http_dialer(&app, "globex", &by_name, "127.0.0.0/8@acme");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success() && stderr.contains("CIDGATE_WEBHOOK_ALLOW_NETWORKS"),
        "{stderr}"
    );
    let shown = cidgate(&app, &["dialer", "show", "--tenant", "globex"], "");
    let shown: Value = serde_json::from_slice(&shown.stdout).unwrap();
    assert_eq!(shown["dialer"], Value::Null, "nothing was saved: {shown}");
    let set = set_http_dialer(&app, "acme", &by_name, "127.0.0.0/8@acme");
    assert!(
        set.status.success(),
        "{}",
        String::from_utf8_lossy(&set.stderr)
    );

    // At dial: globex's dialer, saved by a command line that allowed more than the
    // server does, is refused before any request leaves; its caller reads the rule.
    let set = set_http_dialer(&app, "globex", &by_name, "127.0.0.0/8");
    assert!(
        set.status.success(),
        "{}",
        String::from_utf8_lossy(&set.stderr)
    );
    let contact = json!({"name": "Ion Popescu", "phones": ["0721234567"]});
    for t in [&acme, &globex] {
        assert!(
            app.put_contact(&t.sync, "c1", &contact)
                .await
                .status()
                .is_success()
        );
    }
    let globex_agent = app.signed_in(&globex, "300", "Globex1").await;
    let answer = app.click2call(&globex_agent, "0721234567", None).await;
    assert_eq!(answer.status(), 502);
    let text = json_of(answer).await.to_string();
    assert!(
        text.contains("CIDGATE_WEBHOOK_ALLOW_NETWORKS") && !text.contains("127.0.0.1"),
        "the refusal names the rule, not the address: {text}"
    );
    let state = app.request_state(&globex_agent, 1).await;
    assert_eq!(state["state"], "failed", "{state}");
    assert!(
        !state.to_string().contains("127.0.0.1"),
        "the request's reason names no address: {state}"
    );

    // acme's dial reaches the same PBX: the first request it ever got is acme's.
    let acme_agent = app.signed_in(&acme, "200", "Acme1").await;
    let placed = app.click2call(&acme_agent, "0721234567", None).await;
    assert_eq!(placed.status(), 200);
    let got = requests.try_recv().expect("acme's request reached the PBX");
    assert_eq!(got.query("agent").as_deref(), Some("200"), "{got:?}");
    assert!(requests.try_recv().is_err(), "globex's request never left");
}

#[tokio::test]
async fn an_http_dialer_to_loopback_is_refused_without_an_allowed_network() {
    let app = spawn_app_with(|_| {}).await;
    let acme = tenant(&app, "acme").await;
    let (stub, mut requests) = fake_pbx::dial_api(200, "{}").await;
    let refused = set_http_dialer(&app, "acme", &stub, "");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success()
            && stderr.contains("--url")
            && stderr.contains("CIDGATE_WEBHOOK_ALLOW_NETWORKS"),
        "{stderr}"
    );
    // Saved anyway (by a command line allowing it): the gateway still refuses at dial.
    let set = set_http_dialer(&app, "acme", &stub, "127.0.0.0/8");
    assert!(
        set.status.success(),
        "{}",
        String::from_utf8_lossy(&set.stderr)
    );
    let session = app.signed_in_with_a_contact(&acme).await;
    let answer = app.click2call(&session, "0721234567", None).await;
    assert_eq!(answer.status(), 502);
    let text = json_of(answer).await.to_string();
    assert!(text.contains("CIDGATE_WEBHOOK_ALLOW_NETWORKS"), "{text}");
    assert!(requests.try_recv().is_err(), "no request reached the PBX");
}

/// A DNS that answers a public address the first time it is asked for a name, and
/// 127.0.0.1 every time after (an attacker's record rebinding after the check at save).
#[derive(Default)]
struct Rebinding {
    asked: Mutex<HashMap<String, usize>>,
}

impl Rebinding {
    fn times_asked(&self, host: &str) -> usize {
        self.asked.lock().unwrap().get(host).copied().unwrap_or(0)
    }
}

impl Resolver for Rebinding {
    fn resolve<'a>(&'a self, host: &'a str) -> BoxFuture<'a, std::io::Result<Vec<IpAddr>>> {
        let mut asked = self.asked.lock().unwrap();
        let times = asked.entry(host.to_owned()).or_default();
        *times += 1;
        let address = if *times == 1 {
            "93.184.216.34"
        } else {
            "127.0.0.1"
        };
        let answer = vec![address.parse().unwrap()];
        async move { Ok(answer) }.boxed()
    }
}

async fn create_profile(app: &TestApp, slug: &str, url: &str) {
    let token = app.token(slug, "admin").await;
    let response = app
        .http
        .post(format!("{}/api/v1/profiles", app.address))
        .bearer_auth(&token)
        .json(&json!({"name": "crm", "url": url}))
        .send()
        .await
        .unwrap();
    let status = response.status();
    assert_eq!(status, 201, "{}", response.text().await.unwrap());
}

/// The state and the last error of `slug`'s one delivery, once it is final.
async fn final_delivery(app: &TestApp, slug: &str) -> (String, String) {
    let read = || async {
        let client = app.pool.get().await.unwrap();
        let row = client
            .query_opt(
                "SELECT d.state, coalesce(d.last_error, '')
                   FROM webhook_deliveries d JOIN tenants t ON t.id = d.tenant_id
                  WHERE t.slug = $1",
                &[&slug],
            )
            .await
            .unwrap();
        row.map(|row| (row.get::<_, String>(0), row.get::<_, String>(1)))
    };
    eventually(Duration::from_secs(20), "the delivery is final", || async {
        read()
            .await
            .is_some_and(|(state, _)| state == "delivered" || state == "failed")
    })
    .await;
    read().await.unwrap()
}

#[tokio::test]
async fn a_name_rebinding_to_loopback_after_its_check_never_reaches_the_local_receiver() {
    let dns = Arc::new(Rebinding::default());
    let (app, _jobs) = spawn_app_resolving(
        |s| {
            // acme's on-premises CRM may be on loopback: the control that the name
            // really leads to the receiver when allowed.
            s.webhooks.client.webhook_allow_networks =
                vec![AllowRule::parse("127.0.0.0/8@acme").unwrap()];
            s.webhooks.client.webhook_timeout_ms = 2_000;
            s.webhooks.webhook_retry_schedule = RetrySchedule::parse("0s").unwrap();
        },
        dns.clone(),
    )
    .await;
    let acme = crate::fairness::tenant(&app, "acme").await;
    let globex = crate::fairness::tenant(&app, "globex").await;
    let receiver = SingleThreaded::default();
    let port = receiver
        .start(Duration::ZERO)
        .await
        .rsplit(':')
        .next()
        .unwrap()
        .to_owned();
    let (acme_host, globex_host) = ("crm.acme.rebind.test", "crm.globex.rebind.test");

    // At save each name resolves to a public address: both profiles are accepted.
    create_profile(&app, "acme", &format!("http://{acme_host}:{port}/hook")).await;
    create_profile(&app, "globex", &format!("http://{globex_host}:{port}/hook")).await;
    assert_eq!(dns.times_asked(globex_host), 1, "checked at save");

    post_events(&app, &acme, &finished_call("a-1")).await;
    post_events(&app, &globex, &finished_call("g-1")).await;
    let (state, error) = final_delivery(&app, "globex").await;
    assert_eq!(state, "failed", "{error}");
    assert!(
        error.contains("CIDGATE_WEBHOOK_ALLOW_NETWORKS") && !error.contains("127.0.0.1"),
        "refused by the guard at connect, naming the rule: {error}"
    );
    assert!(
        dns.times_asked(globex_host) >= 2,
        "resolved again to connect"
    );
    let (state, error) = final_delivery(&app, "acme").await;
    assert_eq!(state, "delivered", "{error}");
    let arrived: Vec<String> = receiver
        .requests()
        .iter()
        .map(|r| {
            r.headers
                .iter()
                .find(|(n, _)| n == "host")
                .map_or(String::new(), |(_, v)| v.clone())
        })
        .collect();
    assert_eq!(
        arrived,
        [format!("{acme_host}:{port}")],
        "only acme's delivery reached the local receiver"
    );
}
