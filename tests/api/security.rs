//! The defences: auth policies, source addresses behind proxies, rate limits, token
//! rotation, request limits, headers, CORS, and tokens kept out of logs.

use std::net::IpAddr;

use serde_json::{Value, json};

use crate::helpers::{PROPAGATION, TestApp, eventually, spawn_app, spawn_app_with};

/// An HTTP client whose requests come from `source` (any 127.0.0.0/8 address works on
/// loopback), to play a PBX at another address.
fn client_from(source: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(source.parse::<IpAddr>().unwrap())
        .build()
        .unwrap()
}

async fn lookup_from(app: &TestApp, client: &reqwest::Client, query: &str) -> reqwest::Response {
    client
        .get(format!("{}/api/lookup?{query}", app.address))
        .send()
        .await
        .unwrap()
}

fn john() -> Value {
    json!({"name": "John Doe", "phones": ["0700000000"]})
}

fn cli_ok(app: &TestApp, args: &[&str]) {
    let output = app.cli(args);
    assert!(
        output.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test]
async fn a_pbx_outside_the_allowlist_is_refused_even_with_a_valid_token() {
    let app = spawn_app().await;
    let acme = app
        .create_tenant_allowing("acme", "RO", &["127.0.0.1/32"])
        .await;
    app.put_contact(&acme.sync_token, "1", &john()).await;
    let query = format!("telephone=0700000000&token={}", acme.lookup_token);
    let outsider = client_from("127.0.0.2");

    eventually(PROPAGATION, "the allowlist reaches the gateway", || async {
        lookup_from(&app, &outsider, &query).await.status() == 403
    })
    .await;
    let refused = lookup_from(&app, &outsider, &query).await;
    let body = refused.text().await.unwrap();
    assert!(
        body.contains("127.0.0.2") && !body.contains("John"),
        "{body}"
    );
    let allowed = lookup_from(&app, &client_from("127.0.0.1"), &query).await;
    assert_eq!(allowed.json::<Value>().await.unwrap()["name"], "John Doe");
}

#[tokio::test]
async fn an_ip_policy_tenant_is_identified_by_its_source_address_alone() {
    let app = spawn_app().await;
    let acme = app.create_tenant("acme", "RO").await;
    app.put_contact(&acme.sync_token, "1", &john()).await;
    cli_ok(&app, &["allow", "add", "--tenant", "acme", "127.0.0.2/32"]);
    cli_ok(&app, &["tenant", "set", "acme", "--auth", "ip"]);
    let pbx = client_from("127.0.0.2");

    eventually(PROPAGATION, "the policy reaches the gateway", || async {
        lookup_from(&app, &pbx, "telephone=0700000000")
            .await
            .status()
            == 200
    })
    .await;
    let answer: Value = lookup_from(&app, &pbx, "telephone=0700000000")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(answer["name"], "John Doe");
    let stranger = lookup_from(&app, &client_from("127.0.0.3"), "telephone=0700000000").await;
    assert_eq!(stranger.status(), 401);
}

#[tokio::test]
async fn overlapping_allowlists_of_two_ip_policy_tenants_are_refused() {
    let app = spawn_app().await;
    app.create_tenant("acme", "RO").await;
    app.create_tenant("globex", "RO").await;
    cli_ok(&app, &["tenant", "set", "acme", "--auth", "ip"]);
    cli_ok(&app, &["allow", "add", "--tenant", "acme", "10.1.0.0/16"]);
    cli_ok(&app, &["tenant", "set", "globex", "--auth", "ip"]);

    let overlap = app.cli(&["allow", "add", "--tenant", "globex", "10.1.2.0/24"]);
    assert!(!overlap.status.success());
    let err = String::from_utf8(overlap.stderr).unwrap();
    assert!(
        err.contains("overlaps 10.1.0.0/16 of tenant `acme`"),
        "{err}"
    );
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");

    // A token tenant may share addresses; it cannot then switch to ip.
    cli_ok(&app, &["tenant", "set", "globex", "--auth", "token"]);
    cli_ok(&app, &["allow", "add", "--tenant", "globex", "10.1.2.0/24"]);
    let switch = app.cli(&["tenant", "set", "globex", "--auth", "ip"]);
    assert!(!switch.status.success());
}

#[tokio::test]
async fn token_and_ip_policy_needs_both() {
    let app = spawn_app().await;
    let acme = app.create_tenant("acme", "RO").await;
    app.put_contact(&acme.sync_token, "1", &john()).await;
    cli_ok(&app, &["tenant", "set", "acme", "--auth", "token+ip"]);
    let with_token = format!("telephone=0700000000&token={}", acme.lookup_token);
    let pbx = client_from("127.0.0.1");

    eventually(PROPAGATION, "an empty allowlist admits nobody", || async {
        lookup_from(&app, &pbx, &with_token).await.status() == 403
    })
    .await;
    cli_ok(&app, &["allow", "add", "--tenant", "acme", "127.0.0.1/32"]);
    eventually(
        PROPAGATION,
        "token and listed address admit the PBX",
        || async { lookup_from(&app, &pbx, &with_token).await.status() == 200 },
    )
    .await;
    assert_eq!(
        lookup_from(&app, &pbx, "telephone=0700000000")
            .await
            .status(),
        401,
        "no token"
    );
    assert_eq!(
        lookup_from(&app, &client_from("127.0.0.2"), &with_token)
            .await
            .status(),
        403
    );
}

#[tokio::test]
async fn a_forged_forwarded_header_from_an_untrusted_peer_changes_nothing() {
    let app = spawn_app().await;
    let acme = app
        .create_tenant_allowing("acme", "RO", &["203.0.113.0/24"])
        .await;
    let url = format!(
        "{}/api/lookup?telephone=0700000000&token={}",
        app.address, acme.lookup_token
    );

    eventually(PROPAGATION, "the allowlist reaches the gateway", || async {
        app.http.get(&url).send().await.unwrap().status() == 403
    })
    .await;
    for (name, value) in [
        ("x-forwarded-for", "203.0.113.5"),
        ("forwarded", "for=203.0.113.5"),
    ] {
        let response = app.http.get(&url).header(name, value).send().await.unwrap();
        assert_eq!(response.status(), 403, "{name}");
    }
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_forwarded_client_address_counts() {
    let app = spawn_app_with(|s| s.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()]).await;
    let acme = app
        .create_tenant_allowing("acme", "RO", &["203.0.113.0/24"])
        .await;
    let url = format!(
        "{}/api/lookup?telephone=0700000000&token={}",
        app.address, acme.lookup_token
    );
    let proxy = client_from("127.0.0.1");
    let send = |client: &reqwest::Client, xff: &str| {
        client.get(&url).header("x-forwarded-for", xff).send()
    };

    eventually(PROPAGATION, "the allowlist reaches the gateway", || async {
        send(&proxy, "198.51.100.1").await.unwrap().status() == 403
    })
    .await;
    assert_eq!(send(&proxy, "203.0.113.5").await.unwrap().status(), 200);
    // The right-most untrusted hop is the client; a forged left-most entry is ignored.
    assert_eq!(
        send(&proxy, "203.0.113.5, 198.51.100.1")
            .await
            .unwrap()
            .status(),
        403
    );
    assert_eq!(
        send(&proxy, "198.51.100.1, 203.0.113.5")
            .await
            .unwrap()
            .status(),
        200
    );
    // A `Forwarded` header the client wrote, passed through by an X-Forwarded-For proxy,
    // is not believed.
    let forged = proxy
        .get(&url)
        .header("x-forwarded-for", "198.51.100.1")
        .header("forwarded", "for=203.0.113.5")
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    // A peer that is not the trusted proxy cannot claim an address.
    assert_eq!(
        send(&client_from("127.0.0.2"), "203.0.113.5")
            .await
            .unwrap()
            .status(),
        403
    );
}

async fn assert_rate_limited(response: reqwest::Response) {
    assert_eq!(response.status(), 429);
    let retry: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry >= 1);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "rate_limited");
}

/// Sends `n` requests at once and sorts the answers into successes and refusals.
async fn burst(
    n: usize,
    send: impl Fn() -> reqwest::RequestBuilder,
) -> (usize, Vec<reqwest::Response>) {
    let responses = futures_util::future::join_all((0..n).map(|_| send().send())).await;
    let mut ok = 0;
    let mut limited = Vec::new();
    for response in responses {
        let response = response.unwrap();
        match response.status().as_u16() {
            200 | 404 => ok += 1,
            429 => limited.push(response),
            other => panic!("unexpected status {other}"),
        }
    }
    (ok, limited)
}

#[tokio::test]
async fn a_burst_of_lookups_over_the_tenant_limit_gets_429_with_retry_after() {
    // One lookup a second, bursts of two: a burst of 20 cannot all pass.
    let app = spawn_app_with(|s| s.lookup_rate = 1).await;
    let acme = app.create_tenant("acme", "RO").await;
    let globex = app.create_tenant("globex", "RO").await;
    let url = format!("{}/api/lookup?telephone=0700000000", app.address);

    let (ok, limited) = burst(20, || app.http.get(&url).bearer_auth(&acme.lookup_token)).await;

    assert!(ok >= 2, "the burst allowance passes");
    assert!(!limited.is_empty(), "the rest is refused");
    let refused = limited.len();
    assert_rate_limited(limited.into_iter().next().unwrap()).await;
    assert_eq!(
        app.lookup(&globex.lookup_token, "0700000000")
            .await
            .status(),
        200,
        "per tenant"
    );
    let text = app
        .http
        .get(format!("{}/metrics", app.address))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let series = format!("cidgate_rate_limited_total{{limit=\"lookups\"}} {refused}");
    assert!(text.contains(&series), "{series} in {text}");
}

#[tokio::test]
async fn a_burst_of_sync_requests_over_the_token_limit_gets_429() {
    let app = spawn_app_with(|s| s.sync_rate = 1).await;
    let acme = app.create_tenant("acme", "RO").await;
    let url = format!("{}/api/v1/contacts/1", app.address);

    let (ok, limited) = burst(20, || app.http.get(&url).bearer_auth(&acme.sync_token)).await;

    assert!(ok >= 2);
    assert!(!limited.is_empty());
    assert_rate_limited(limited.into_iter().next().unwrap()).await;
}

#[tokio::test]
async fn an_address_guessing_tokens_is_refused_but_a_valid_token_still_passes() {
    let app = spawn_app_with(|s| s.auth_failures_per_min = 3).await;
    let acme = app.create_tenant("acme", "RO").await;
    eventually(PROPAGATION, "the gateway knows the token", || async {
        app.lookup(&acme.lookup_token, "0700000000").await.status() == 200
    })
    .await;
    for guess in 0..3 {
        let response = app.lookup(&format!("cgl_guess{guess}"), "0700000000").await;
        assert_eq!(response.status(), 401);
    }
    assert_rate_limited(app.lookup("cgl_guess3", "0700000000").await).await;
    assert_rate_limited(app.lookup("cgl_guess4", "0700000000").await).await;
    // Blocked for guessing, not for a token the gateway knows (see hardening.rs).
    eventually(PROPAGATION, "the valid token passes the block", || async {
        app.lookup(&acme.lookup_token, "0700000000").await.status() == 200
    })
    .await;
    // Another address is not affected.
    let other = client_from("127.0.0.2");
    let query = format!("telephone=0700000000&token={}", acme.lookup_token);
    assert_eq!(lookup_from(&app, &other, &query).await.status(), 200);
}

#[tokio::test]
async fn a_rotated_token_works_through_its_grace_period_and_then_stops() {
    let app = spawn_app().await;
    let acme = app.create_tenant("acme", "RO").await;
    let lookup_id = app.token_id("acme", "lookup");

    let rotated = app.cli(&["token", "rotate", &lookup_id, "--grace", "1h"]);
    assert!(rotated.status.success());
    let new_token = String::from_utf8(rotated.stdout).unwrap().trim().to_owned();
    assert!(new_token.starts_with("cgl_") && new_token != acme.lookup_token);
    assert_eq!(app.lookup(&new_token, "0700000000").await.status(), 200);
    assert_eq!(
        app.lookup(&acme.lookup_token, "0700000000").await.status(),
        200,
        "grace period"
    );
    let listed = String::from_utf8(app.cli(&["token", "list", "--tenant", "acme"]).stdout).unwrap();
    assert!(listed.contains("expiring"), "{listed}");

    // Rotating again with no grace ends the old token now.
    let new_id = listed
        .lines()
        .last()
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();
    // A capability that outlives its purpose is refused: grace and popup TTL are capped.
    let forever = app.cli(&["token", "rotate", &new_id, "--grace", "1000000h"]);
    assert_eq!(forever.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&forever.stderr).contains("--grace: at most 30 days"));
    let forever = app.cli(&["tenant", "set", "acme", "--popup-ttl", "1000000h"]);
    assert_eq!(forever.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&forever.stderr).contains("--popup-ttl: at most 7 days"));
    let again = app.cli(&["token", "rotate", &new_id, "--grace", "0s"]);
    assert!(again.status.success());
    eventually(PROPAGATION, "the ended token is refused", || async {
        app.lookup(&new_token, "0700000000").await.status() == 401
    })
    .await;
}

#[tokio::test]
async fn oversized_urls_and_headers_get_a_clear_414_or_431() {
    let app = spawn_app().await;
    let long_url = format!("{}/api/lookup?telephone={}", app.address, "1".repeat(9_000));
    let response = app.http.get(&long_url).send().await.unwrap();
    assert_eq!(response.status(), 414);
    assert_eq!(
        response.json::<Value>().await.unwrap()["error"],
        "uri_too_long"
    );

    let response = app
        .http
        .get(format!("{}/healthz", app.address))
        .header("x-padding", "a".repeat(17_000))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 431);
    assert_eq!(
        response.json::<Value>().await.unwrap()["error"],
        "headers_too_large"
    );
}

#[tokio::test]
async fn every_answer_carries_the_security_headers() {
    let app = spawn_app().await;
    let acme = app.create_tenant("acme", "RO").await;
    let responses = [
        app.lookup(&acme.lookup_token, "0700000000").await,
        app.lookup("cgl_wrong", "0700000000").await,
        app.http
            .get(format!("{}/nowhere", app.address))
            .send()
            .await
            .unwrap(),
        app.http
            .get(format!("{}/healthz", app.address))
            .send()
            .await
            .unwrap(),
    ];
    for response in responses {
        let h = response.headers();
        assert_eq!(h["x-content-type-options"], "nosniff", "{}", response.url());
        assert_eq!(h["referrer-policy"], "no-referrer");
        assert_eq!(h["cache-control"], "no-store");
        assert!(
            h.get("access-control-allow-origin").is_none(),
            "CORS is off by default"
        );
    }
}

#[tokio::test]
async fn cors_answers_only_the_configured_origins() {
    let app = spawn_app_with(|s| s.cors_origins = vec!["https://crm.example.com".into()]).await;
    let preflight = |origin: &'static str| {
        app.http
            .request(
                reqwest::Method::OPTIONS,
                format!("{}/api/v1/contacts/1", app.address),
            )
            .header("origin", origin)
            .header("access-control-request-method", "PUT")
            .send()
    };
    let allowed = preflight("https://crm.example.com").await.unwrap();
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "https://crm.example.com"
    );
    let other = preflight("https://evil.example.net").await.unwrap();
    assert!(other.headers().get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn tokens_never_appear_in_logs_error_bodies_or_metrics() {
    let app = spawn_app().await;
    let acme = app.create_tenant("acme", "RO").await;
    let log = tempfile::NamedTempFile::new().unwrap();
    let (mut server, base) = app
        .serve_process(|command| {
            command
                .env("CIDGATE_LOG_FORMAT", "json")
                .env("RUST_LOG", "debug")
                .stderr(log.reopen().unwrap());
        })
        .await;

    let wrong = "cgl_WrongTokenThatMustNotBeLogged0";
    let mut bodies = Vec::new();
    let requests = [
        app.http.get(format!(
            "{base}/api/lookup?telephone=0700000000&token={}",
            acme.lookup_token
        )),
        app.http
            .get(format!("{base}/api/lookup?telephone=0700000000"))
            .bearer_auth(&acme.lookup_token),
        app.http.get(format!(
            "{base}/api/lookup?telephone=0700000000&token={wrong}"
        )),
        app.http
            .get(format!("{base}/api/v1/contacts/1"))
            .bearer_auth(&acme.sync_token),
        app.http
            .get(format!("{base}/api/v1/contacts/1"))
            .bearer_auth(wrong),
        app.http.get(format!(
            "{base}/api/lookup?token={}&telephone={}",
            acme.sync_token,
            "9".repeat(80)
        )),
        app.http.get(format!("{base}/metrics")),
    ];
    for request in requests {
        bodies.push(request.send().await.unwrap().text().await.unwrap());
    }
    // A graceful stop: the log writer thread writes what it still holds before exit.
    let stopped = std::process::Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    assert!(stopped.success());
    assert!(server.wait().unwrap().success());

    let logged = std::fs::read_to_string(log.path()).unwrap();
    assert!(logged.contains("/api/lookup"), "the requests were logged");
    assert!(
        logged.contains("/metrics"),
        "the last request was logged before exit"
    );
    for secret in [acme.lookup_token.as_str(), acme.sync_token.as_str(), wrong] {
        assert!(!logged.contains(secret), "a token reached the log");
        for body in &bodies {
            assert!(!body.contains(secret), "a token reached a response: {body}");
        }
    }
}
