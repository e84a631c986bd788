//! What a profile is checked for at save and what a failed delivery says: criteria with
//! an unknown field or operator (issue 27 item 5), allowed networks per tenant without a
//! DNS oracle (issue 28 item 5, issue 27 item 6), and rate-limited warnings about
//! deliveries that did not arrive, never with a secret (issue 27 item 7).

use std::time::Duration;

use cidgate::config::webhooks::{AllowRule, RetrySchedule, Roles};
use cidgate::domain::{TenantSlug, TokenScope};
use cidgate::store;
use serde_json::{Value, json};

use crate::fairness::{SingleThreaded, finished_call, ok, post_events, tenant};
use crate::helpers::{TestApp, eventually, spawn_app_with, text_file};

async fn admin_token(app: &TestApp, slug: &str) -> String {
    let client = app.pool.get().await.unwrap();
    let t = store::tenants::find_by_slug(&client, &TenantSlug::parse(slug).unwrap())
        .await
        .unwrap()
        .unwrap();
    let (_, token) = store::tokens::create(&client, t.id, TokenScope::Admin, "ops")
        .await
        .unwrap();
    token.expose().to_owned()
}

async fn create_by_api(app: &TestApp, token: &str, body: Value) -> (u16, String) {
    let response = app
        .http
        .post(format!("{}/api/v1/profiles", app.address))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

/// `cidgate` against the test's database, with the environment `env` sets.
fn cidgate(app: &TestApp, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_cidgate"));
    command
        .args(args)
        .env("DATABASE_URL", &app.db.url)
        .env_remove("CIDGATE_WEBHOOK_ALLOW_NETWORKS")
        .env_remove("CIDGATE_CONFIG")
        .env_remove("RUST_LOG");
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().expect("running cidgate")
}

#[tokio::test]
async fn criteria_with_an_unknown_operator_or_field_are_refused_at_save() {
    let app = spawn_app_with(|_| {}).await;
    tenant(&app, "acme").await;
    let admin = admin_token(&app, "acme").await;
    let out = cidgate(
        &app,
        &[
            "profile",
            "create",
            "--tenant",
            "acme",
            "crm",
            "--url",
            "https://crm.example.com/",
            "--criteria",
            "Call Direction == Inbound",
        ],
        &[],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "`==` was accepted");
    assert!(
        stderr.contains("`==` is not an operator") && stderr.contains("=, !=, >=, <=, in"),
        "names the operator and lists the valid ones: {stderr}"
    );
    let (status, body) = create_by_api(
        &app,
        &admin,
        json!({"name": "crm", "url": "https://crm.example.com/",
               "criteria": ["Call Direction = Inbound", "Colour = red"]}),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body.contains("`Colour` is not a field") && body.contains("Call Direction, "),
        "names the field and lists the valid ones: {body}"
    );
    let (status, body) = create_by_api(
        &app,
        &admin,
        json!({"name": "crm", "url": "https://crm.example.com/",
               "criteria": ["Call Direction == Inbound"]}),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    assert!(body.contains("`==` is not an operator"), "{body}");
    let listed = ok(cidgate(&app, &["profile", "list", "--tenant", "acme"], &[]));
    assert!(listed.is_empty(), "nothing was saved: {listed}");
}

#[tokio::test]
async fn an_allowed_network_naming_a_tenant_lets_only_that_tenant_through() {
    let app = spawn_app_with(|s| {
        s.webhooks.client.webhook_allow_networks =
            vec![AllowRule::parse("127.0.0.0/8@acme").unwrap()];
        s.webhooks.client.webhook_timeout_ms = 2_000;
        s.webhooks.webhook_retry_schedule = RetrySchedule::parse("0s").unwrap();
    })
    .await;
    let acme_pbx = tenant(&app, "acme").await;
    let globex_pbx = tenant(&app, "globex").await;
    let (acme, globex) = (
        admin_token(&app, "acme").await,
        admin_token(&app, "globex").await,
    );
    let receiver = SingleThreaded::default();
    let url = receiver.start(Duration::ZERO).await;
    let by_name = url.replace("127.0.0.1", "localhost");

    let (status, body) = create_by_api(&app, &acme, json!({"name": "crm", "url": by_name})).await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = create_by_api(&app, &globex, json!({"name": "crm", "url": by_name})).await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body.contains("CIDGATE_WEBHOOK_ALLOW_NETWORKS") && !body.contains("127.0.0.1"),
        "the refusal names the setting, not the address the name resolves to: {body}"
    );

    // The same setting from a configuration file, read by the command line as by `serve`.
    let config = text_file("CIDGATE_WEBHOOK_ALLOW_NETWORKS=127.0.0.0/8@acme\n");
    let config = config.path().to_str().unwrap();
    let refused = cidgate(
        &app,
        &[
            "profile", "create", "--tenant", "globex", "cli", "--url", &by_name,
        ],
        &[("CIDGATE_CONFIG", config)],
    );
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success() && stderr.contains("CIDGATE_WEBHOOK_ALLOW_NETWORKS"),
        "{stderr}"
    );
    ok(cidgate(
        &app,
        &[
            "profile", "create", "--tenant", "acme", "cli", "--url", &by_name,
        ],
        &[("CIDGATE_CONFIG", config)],
    ));

    // globex's profile saved by a command line that allowed more than the server does:
    // its delivery is refused, and what globex reads names the rule, not the address.
    ok(cidgate(
        &app,
        &[
            "profile", "create", "--tenant", "globex", "crm", "--url", &by_name,
        ],
        &[("CIDGATE_WEBHOOK_ALLOW_NETWORKS", "127.0.0.0/8")],
    ));
    post_events(&app, &acme_pbx, &finished_call("a-1")).await;
    post_events(&app, &globex_pbx, &finished_call("g-1")).await;
    eventually(
        Duration::from_secs(20),
        "both deliveries finish",
        || async {
            let client = app.pool.get().await.unwrap();
            let done: i64 = client
            .query_one(
                "SELECT count(*) FROM webhook_deliveries WHERE state IN ('delivered', 'failed')",
                &[],
            )
            .await
            .unwrap()
            .get(0);
            done == 3
        },
    )
    .await;
    assert_eq!(receiver.ids().len(), 2, "acme's two profiles, not globex's");
    let listed: Value = app
        .http
        .get(format!("{}/api/v1/deliveries", app.address))
        .bearer_auth(&globex)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let text = listed.to_string();
    assert!(
        text.contains("\"failed\"")
            && text.contains("CIDGATE_WEBHOOK_ALLOW_NETWORKS")
            && !text.contains("127.0.0.1"),
        "{text}"
    );
}

#[tokio::test]
async fn failed_deliveries_are_warned_about_a_few_times_a_minute_without_secrets() {
    let app = spawn_app_with(|s| {
        s.webhooks.roles = Roles::parse("http").unwrap();
    })
    .await;
    let pbx = tenant(&app, "acme").await;
    let out = ok(cidgate(
        &app,
        &[
            "profile",
            "create",
            "--tenant",
            "acme",
            "crm",
            "--url",
            "http://127.0.0.1:9/calls",
            "--secret-header",
            "Authorization: Bearer s3cret-crm-key",
        ],
        &[("CIDGATE_WEBHOOK_ALLOW_NETWORKS", "127.0.0.0/8")],
    ));
    let signing_secret = out.lines().last().unwrap().to_owned();
    let log = tempfile::NamedTempFile::new().unwrap();
    let (mut server, _) = app
        .serve_process(|command| {
            command
                .env("CIDGATE_WEBHOOK_ALLOW_NETWORKS", "127.0.0.0/8")
                .env("CIDGATE_WEBHOOK_RETRY_SCHEDULE", "0s,50ms,50ms")
                .env("CIDGATE_ROLES", "deliver")
                .env_remove("RUST_LOG")
                .stderr(log.reopen().unwrap());
        })
        .await;
    let events: Vec<Value> = (0..20)
        .flat_map(|i| finished_call(&format!("c{i}")).as_array().unwrap().clone())
        .collect();
    post_events(&app, &pbx, &Value::Array(events)).await;
    eventually(Duration::from_secs(30), "every delivery fails", || async {
        let client = app.pool.get().await.unwrap();
        let failed: i64 = client
            .query_one(
                "SELECT count(*) FROM webhook_deliveries WHERE state = 'failed'",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        failed == 20
    })
    .await;
    let client = app.pool.get().await.unwrap();
    let ids: Vec<String> = client
        .query("SELECT id::text FROM webhook_deliveries", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    eventually(
        Duration::from_secs(5),
        "the warnings are written",
        || async { std::fs::read_to_string(log.path()).is_ok_and(|l| l.contains("not delivered")) },
    )
    .await;
    server.kill().unwrap();
    server.wait().unwrap();
    let logged = std::fs::read_to_string(log.path()).unwrap();
    let warnings: Vec<&str> = logged
        .lines()
        .filter(|l| l.contains("web-service delivery not delivered"))
        .collect();
    assert!(
        (1..=5).contains(&warnings.len()),
        "60 failed attempts, at most 5 warnings a minute: {logged}"
    );
    let first = warnings[0];
    assert!(
        first.contains("WARN")
            && first.contains("profile=")
            && ids.iter().any(|id| first.contains(id.as_str()))
            && first.contains("reason="),
        "profile, delivery id and reason: {first}"
    );
    assert!(
        !logged.contains("s3cret-crm-key") && !logged.contains(&signing_secret[6..]),
        "{logged}"
    );
}

/// The code block of docs/profiles.md between `<!-- NAME -->` and `<!-- /NAME -->`.
fn documented(name: &str) -> String {
    let doc =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/profiles.md")).unwrap();
    let start = doc.find(&format!("<!-- {name} -->")).unwrap();
    let end = doc.find(&format!("<!-- /{name} -->")).unwrap();
    let block = &doc[start..end];
    let code = &block[block.find("```").unwrap()..block.rfind("```").unwrap()];
    code.split_once('\n').unwrap().1.to_owned()
}

#[tokio::test]
async fn the_documented_verification_accepts_form_and_get_requests() {
    let app = spawn_app_with(|s| {
        s.webhooks.client.webhook_allow_networks = vec![AllowRule::parse("127.0.0.0/8").unwrap()];
    })
    .await;
    let pbx = tenant(&app, "acme").await;
    let receiver = SingleThreaded::default();
    let url = receiver.start(Duration::ZERO).await;
    let env = [("CIDGATE_WEBHOOK_ALLOW_NETWORKS", "127.0.0.0/8")];
    let form_url = format!("{url}/calls");
    let form = ok(cidgate(
        &app,
        &[
            "profile",
            "create",
            "--tenant",
            "acme",
            "form",
            "--url",
            &form_url,
            "--form",
            "caller=<Caller Number>",
            "--form",
            "note=a b&c=d ü",
        ],
        &env,
    ));
    let get_url = format!("{url}/identity.asp?CallID={{{{CallID}}}}&Who=<Caller Number>&x=a%20b");
    let get = ok(cidgate(
        &app,
        &[
            "profile",
            "create",
            "--tenant",
            "acme",
            "get",
            "--method",
            "GET",
            "--from-url",
            &get_url,
        ],
        &env,
    ));
    let secrets = [
        ("POST", form.lines().last().unwrap().to_owned()),
        ("GET", get.lines().last().unwrap().to_owned()),
    ];
    post_events(&app, &pbx, &finished_call("v-1")).await;
    eventually(Duration::from_secs(20), "both requests arrive", || async {
        receiver.requests().len() == 2
    })
    .await;
    let python = documented("verify-python");
    let shell = documented("verify-shell");
    let dir = tempfile::tempdir().unwrap();
    for request in receiver.requests() {
        let mut parts = request.line.split(' ');
        let (method, path_and_query) = (parts.next().unwrap(), parts.next().unwrap());
        let secret = &secrets.iter().find(|(m, _)| *m == method).unwrap().1;
        let header = |name: &str| {
            request
                .headers
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
                .unwrap()
        };
        assert_eq!(method == "GET", request.body.is_empty(), "{request:?}");
        let body_file = dir.path().join("body.bin");
        std::fs::write(&body_file, &request.body).unwrap();
        let headers: std::collections::HashMap<_, _> = request.headers.iter().cloned().collect();
        let check = |tamper: bool| {
            let script = format!(
                "{python}\nimport json, os, sys\nh = json.loads(os.environ['HEADERS'])\n\
                 body = open(os.environ['BODY_FILE'], 'rb').read()\n\
                 path = os.environ['PATH_AND_QUERY'] + ('&x=1' if os.environ.get('TAMPER') else '')\n\
                 sys.exit(0 if verify(os.environ['SECRET'], h, os.environ['METHOD'], path, body) else 1)\n"
            );
            let mut command = std::process::Command::new("python3");
            command
                .args(["-c", &script])
                .env("HEADERS", serde_json::to_string(&headers).unwrap())
                .env("BODY_FILE", &body_file)
                .env("PATH_AND_QUERY", path_and_query)
                .env("SECRET", secret)
                .env("METHOD", method);
            if tamper {
                command.env("TAMPER", "1");
            }
            command.status().unwrap().success()
        };
        assert!(check(false), "python verifies the {method} request");
        if method == "GET" {
            assert!(!check(true), "an altered query fails");
        }
        let out = std::process::Command::new("sh")
            .args(["-c", &shell])
            .env("SECRET", secret)
            .env("ID", header("webhook-id"))
            .env("TS", header("webhook-timestamp"))
            .env("METHOD", method)
            .env("PATH_AND_QUERY", path_and_query)
            .env("BODY_FILE", &body_file)
            .output()
            .unwrap();
        let computed = String::from_utf8(out.stdout).unwrap().trim().to_owned();
        assert!(
            header("webhook-signature")
                .split(' ')
                .any(|s| s == computed),
            "openssl computes the {method} request's signature: {computed} {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
