//! The agent's sessions under attack (issue 28, items 3 and 10): others' wrong sessions
//! from a shared address lock no valid session out, and no other site can sign a
//! browser in as an agent.

use crate::click2call::{callbacks, dialing_loopback, tenant};
use crate::fake_pbx;
use crate::helpers::spawn_app_with;

const WRONG: &str = "cgsess_0000000000000000000000000000000000000000";

#[tokio::test]
async fn a_valid_session_passes_after_wrong_sessions_blocked_its_address() {
    let app = spawn_app_with(|s| {
        s.auth_failures_per_min = 3;
        dialing_loopback(s);
    })
    .await;
    let t = tenant(&app, "acme").await;
    let (stub, mut requests) = fake_pbx::dial_api(200, "{}").await;
    app.http_dialer("acme", &stub);
    let session = app.signed_in(&t, "200", "Agent1").await;

    // Someone else behind the same address (a CRM's egress, an office NAT) guesses.
    for _ in 0..3 {
        assert_eq!(
            app.click2call(WRONG, "0721234567", None).await.status(),
            401
        );
    }
    let blocked = app.click2call(WRONG, "0721234567", None).await;
    assert_eq!(blocked.status(), 429, "the address is blocked");
    assert!(blocked.headers().contains_key("retry-after"));

    // The agent's valid session still calls, signs its browser in and presses the button.
    assert_eq!(
        app.click2call(&session, "0721234567", None).await.status(),
        200
    );
    for callback in callbacks(1) {
        app.focalscope(&t.pbx, &callback).await;
    }
    let login = app.agent_login(&session).await;
    assert_eq!(login.status(), 200);
    let cookie = login.headers()["set-cookie"].to_str().unwrap();
    let cookie = cookie.split(';').next().unwrap().to_owned();
    let pressed = app
        .http
        .post(format!("{}/agent/call", app.address))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("cookie", &cookie)
        .header("origin", &app.address)
        .body("number=%2B40721234567")
        .send()
        .await
        .unwrap();
    assert_eq!(pressed.status(), 200);
    // A session started while the address is blocked passes too.
    let fresh = app.signed_in(&t, "201", "Agent2").await;
    assert_eq!(
        app.click2call(&fresh, "0721234567", None).await.status(),
        200
    );
    assert_eq!(std::iter::from_fn(|| requests.try_recv().ok()).count(), 3);
    // Guesses stay blocked.
    assert_eq!(
        app.click2call(WRONG, "0721234567", None).await.status(),
        429
    );
    let guessed_login = app
        .http
        .get(format!("{}/agent/login?session={WRONG}", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(guessed_login.status(), 429);
}

#[tokio::test]
async fn no_other_site_can_sign_a_browser_in_as_an_agent() {
    let app = spawn_app_with(|_| {}).await;
    let t = tenant(&app, "acme").await;
    let session = app.signed_in(&t, "200", "Agent1").await;

    // The link only asks: it sets no cookie, whoever loads it.
    let link = app
        .http
        .get(format!("{}/agent/login", app.address))
        .query(&[("session", &session)])
        .header("sec-fetch-site", "cross-site")
        .send()
        .await
        .unwrap();
    assert_eq!(link.status(), 200);
    assert!(!link.headers().contains_key("set-cookie"));
    let csp = link.headers()["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("form-action 'self'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert_eq!(link.headers()["x-frame-options"], "DENY");
    let html = link.text().await.unwrap();
    assert!(
        html.contains("<bdi>200</bdi>"),
        "the page names the agent: {html}"
    );

    // Another site's form posting the session is refused, by Origin or Sec-Fetch-Site.
    let post = |origin: Option<&str>, site: Option<&str>| {
        let mut request = app
            .http
            .post(format!("{}/agent/login", app.address))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("session={session}"));
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        if let Some(site) = site {
            request = request.header("sec-fetch-site", site);
        }
        request.send()
    };
    for (origin, site) in [
        (Some("https://evil.example"), None),
        (Some("https://evil.example"), Some("cross-site")),
        (None, Some("cross-site")),
        (None, Some("same-site")),
    ] {
        let forged = post(origin, site).await.unwrap();
        assert_eq!(forged.status(), 403, "{origin:?} {site:?}");
        assert!(!forged.headers().contains_key("set-cookie"));
    }
    // From cidgate's own page, the confirmation signs the browser in.
    let confirmed = post(Some(&app.address), Some("same-origin")).await.unwrap();
    assert_eq!(confirmed.status(), 200);
    let cookie = confirmed.headers()["set-cookie"].to_str().unwrap();
    assert!(cookie.starts_with("cidgate_agent=cgsess_"), "{cookie}");
    // The old sign-in by GET alone is gone: a GET never sets the cookie.
    let put = app
        .http
        .put(format!("{}/agent/login", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 405);
    assert_eq!(put.headers()["allow"], "GET, POST");
}
