//! The agent's screen pop: signed links, the page, unknown callers, the lookup log.

use cidgate::domain::{PopupKey, TenantId};
use cidgate::popup::{self, LinkClaims};
use serde_json::{Value, json};

use crate::helpers::{PROPAGATION, TestApp, eventually, spawn_app, spawn_app_with};

/// The lookup's link, once the gateway opens it: a lookup answered before the gateway
/// loaded a new tenant (its token checked in the database) seals with a key the gateway
/// learns of only from the change notification, and pages check links in memory.
pub async fn link_for(app: &TestApp, token: &str, telephone: &str) -> String {
    let answer = app.lookup_json(token, telephone).await;
    let link = answer["backend_link"]
        .as_str()
        .unwrap_or_else(|| panic!("no backend_link in {answer}"))
        .to_owned();
    // Not followed: a tenant may send agents on to its CRM.
    let here = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    eventually(PROPAGATION, "the gateway knows the link's key", || async {
        here.get(&link).send().await.unwrap().status() != 403
    })
    .await;
    link
}

async fn open(app: &TestApp, link: &str) -> (u16, reqwest::header::HeaderMap, String) {
    let response = app.http.get(link).send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (status, headers, response.text().await.unwrap())
}

fn cli_ok(app: &TestApp, args: &[&str]) {
    let output = app.cli(args);
    assert!(
        output.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

async fn tenant_id(app: &TestApp, slug: &str) -> TenantId {
    let client = app.pool.get().await.unwrap();
    let row = client
        .query_one("SELECT id FROM tenants WHERE slug = $1", &[&slug])
        .await
        .unwrap();
    TenantId(row.get(0))
}

async fn newest_key(app: &TestApp, slug: &str) -> PopupKey {
    let client = app.pool.get().await.unwrap();
    cidgate::store::signing_keys::newest(&client, tenant_id(app, slug).await)
        .await
        .unwrap()
        .unwrap()
}

/// A genuine seal over `claims` made to have expired a second ago.
async fn expired_link(app: &TestApp, slug: &str, claims: LinkClaims<'_>) -> String {
    let expires = chrono::Utc::now().timestamp() - 1;
    popup::seal(
        &newest_key(app, slug).await,
        &LinkClaims { expires, ..claims },
    )
}

/// What a genuine link names, opened with its tenant's newest key.
async fn claims_of(app: &TestApp, slug: &str, link: &str) -> LinkClaims<'static> {
    let key = popup::LinkKey::new(&newest_key(app, slug).await);
    popup::parse(link.rsplit('/').next().unwrap())
        .unwrap()
        .verify(&key)
        .unwrap()
}

fn ana() -> Value {
    json!({
        "name": "Ana Popescu",
        "phones": ["0721 234 567"],
        "direct_line": "SIP/ana",
        "queue_position": 3,
        "language": "ro",
        "route_identifier": "vip-route",
        "crm_url": "https://crm.example.com/contacts/12345",
        "attributes": {"tier": "gold", "open_tickets": 2}
    })
}

#[tokio::test]
async fn a_known_callers_link_opens_a_page_with_who_is_calling_and_why_they_matter() {
    let app = spawn_app().await;
    let acme = app.create_tenant("acme", "RO").await;
    app.put_contact(&acme.sync_token, "12345", &ana()).await;

    let link = link_for(&app, &acme.lookup_token, "+40721234567").await;
    assert!(link.starts_with(&format!("{}/pop/", app.address)), "{link}");
    let (status, headers, page) = open(&app, &link).await;

    assert_eq!(status, 200);
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    for expected in [
        "Ana Popescu",
        "0721 234 567",
        "+40 721 234 567",
        "12345",
        "href=\"https://crm.example.com/contacts/12345\"",
        "Open in CRM",
        "SIP/ana",
        "Queue position",
        "Romanian (ro)",
        "vip-route",
        "tier",
        "gold",
        "on line <bdi>0210000000</bdi>",
    ] {
        assert!(
            page.contains(expected),
            "{expected:?} missing from the page"
        );
    }
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("style-src 'self'"),
        "{csp}"
    );
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert_eq!(headers["x-frame-options"], "DENY");
    assert_eq!(headers["referrer-policy"], "no-referrer");
    assert!(!page.contains("<script"), "no JavaScript");

    // The call itself shows up in the recent calls once the log is written.
    eventually(
        PROPAGATION,
        "the call appears under recent calls",
        || async {
            open(&app, &link)
                .await
                .2
                .contains("<td><bdi>0210000000</bdi></td><td><bdi>Yes</bdi></td>")
        },
    )
    .await;
    let css = app
        .http
        .get(format!("{}/pop/style.css", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(css.status(), 200);
    assert!(
        css.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/css")
    );
}

#[tokio::test]
async fn unknown_callers_get_a_page_only_when_the_tenant_wants_one() {
    let app = spawn_app().await;
    let acme = app.create_tenant("acme", "RO").await;
    let answer = app.lookup_json(&acme.lookup_token, "0722000000").await;
    assert!(
        answer["backend_link"].is_null(),
        "the reference's all-null answer by default"
    );

    cli_ok(
        &app,
        &[
            "tenant",
            "set",
            "acme",
            "--popup-for-unknown",
            "true",
            "--create-url-template",
            "https://crm.example.com/contacts/new?phone={number}",
        ],
    );
    eventually(PROPAGATION, "the setting reaches the gateway", || async {
        app.lookup_json(&acme.lookup_token, "0722000000").await["backend_link"].is_string()
    })
    .await;
    let link = link_for(&app, &acme.lookup_token, "0722000000").await;
    let answer = app.lookup_json(&acme.lookup_token, "0722000000").await;
    assert!(answer["id"].is_null() && answer["name"].is_null());
    let (status, _, page) = open(&app, &link).await;

    assert_eq!(status, 200);
    assert!(page.contains("Unknown caller"));
    assert!(page.contains("0722 000 000") && page.contains("+40 722 000 000"));
    assert!(
        page.contains("href=\"https://crm.example.com/contacts/new?phone=%2B40722000000\""),
        "{page}"
    );
    eventually(
        PROPAGATION,
        "the calls appear under recent calls",
        || async { open(&app, &link).await.2.contains("<td><bdi>No</bdi></td>") },
    )
    .await;
}

#[tokio::test]
async fn changed_truncated_expired_and_foreign_links_show_no_contact_data() {
    let app = spawn_app().await;
    let acme = app.create_tenant("acme", "RO").await;
    let globex = app.create_tenant("globex", "RO").await;
    app.put_contact(&acme.sync_token, "12345", &ana()).await;
    app.put_contact(
        &globex.sync_token,
        "777",
        &json!({"name": "Globex Person", "phones": ["0733000000"]}),
    )
    .await;
    let link = link_for(&app, &acme.lookup_token, "0721234567").await;
    let globex_link = link_for(&app, &globex.lookup_token, "0733000000").await;
    let token = link.rsplit('/').next().unwrap().to_owned();
    let (header, sealed) = token.rsplit_once('.').unwrap();

    // Acme's seal under Globex's header (tenant and key of another tenant).
    let globex_token = globex_link.rsplit('/').next().unwrap();
    let (globex_header, _) = globex_token.rsplit_once('.').unwrap();
    let swapped = format!("{globex_header}.{sealed}");
    // One bit of the sealed claims changed.
    let mut bytes = base64_decode(sealed);
    bytes[30] ^= 1;
    let tampered = format!("{header}.{}", base64_url(&bytes));
    let claims = claims_of(&app, "acme", &link).await;
    let expired = expired_link(&app, "acme", claims).await;
    let base = format!("{}/pop", app.address);
    let cases = [
        ("tampered", format!("{base}/{tampered}"), 403),
        (
            "truncated",
            format!("{base}/{}", &token[..token.len() - 3]),
            403,
        ),
        ("seal cut off", format!("{base}/{header}"), 403),
        ("garbage", format!("{base}/not-a-link"), 403),
        (
            "another tenant's signature",
            format!("{base}/{swapped}"),
            403,
        ),
        ("expired", format!("{base}/{expired}"), 410),
    ];
    for (case, url, expected) in cases {
        let (status, headers, page) = open(&app, &url).await;
        assert_eq!(status, expected, "{case}");
        assert!(
            !page.contains("Ana") && !page.contains("12345") && !page.contains("Globex"),
            "{case}: {page}"
        );
        assert!(
            headers["content-security-policy"]
                .to_str()
                .unwrap()
                .contains("default-src 'none'"),
            "{case}"
        );
    }
    // The genuine link still works.
    assert_eq!(open(&app, &link).await.0, 200);
}

fn base64_url(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn base64_decode(text: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text)
        .unwrap()
}

#[tokio::test]
async fn a_contact_name_full_of_html_and_script_is_rendered_inert() {
    let app = spawn_app().await;
    let acme = app.create_tenant("acme", "RO").await;
    let hostile = "<script>alert(1)</script><img src=x onerror=alert(2)>\"'&";
    let body = json!({
        "name": hostile,
        "phones": ["0721234567"],
        "direct_line": "<b>bold</b>",
        "attributes": {"<i>key</i>": "<iframe src=//evil>"}
    });
    app.put_contact(&acme.sync_token, "x", &body).await;

    let link = link_for(&app, &acme.lookup_token, "0721234567").await;
    let (status, _, page) = open(&app, &link).await;

    assert_eq!(status, 200);
    for raw in ["<script>alert", "<img", "<b>bold", "<i>key", "<iframe"] {
        assert!(!page.contains(raw), "{raw} rendered as markup");
    }
    assert!(
        page.contains("&#60;script&#62;alert(1)&#60;/script&#62;"),
        "shown as text"
    );
}

#[tokio::test]
async fn text_from_outside_is_isolated_so_direction_controls_cannot_reorder_the_page() {
    let app = spawn_app().await;
    let acme = app.create_tenant("acme", "RO").await;
    app.put_contact(&acme.sync_token, "12345", &ana()).await;
    // A PBX's dialled line is not checked for direction controls; U+202E reverses what
    // follows it unless the text is isolated.
    let answer: Value = app
        .get_raw(&format!(
            "/api/lookup?telephone=0721234567&dnid=%E2%80%AE0210000000&token={}",
            acme.lookup_token
        ))
        .await
        .json()
        .await
        .unwrap();
    let (status, _, page) = open(&app, answer["backend_link"].as_str().unwrap()).await;
    assert_eq!(status, 200);
    assert!(page.contains("<bdi>\u{202E}0210000000</bdi>"), "{page}");
    assert!(page.contains("<h1><bdi>Ana Popescu</bdi></h1>"), "{page}");
}

#[tokio::test]
async fn a_tenant_can_send_agents_straight_to_the_crm_or_allow_framing() {
    let app = spawn_app().await;
    let acme = app.create_tenant("acme", "RO").await;
    app.put_contact(&acme.sync_token, "12345", &ana()).await;
    cli_ok(
        &app,
        &[
            "tenant",
            "set",
            "acme",
            "--frame-ancestors",
            "https://softphone.example.com",
        ],
    );
    eventually(PROPAGATION, "framing reaches the page", || async {
        let link = link_for(&app, &acme.lookup_token, "0721234567").await;
        let (_, headers, _) = open(&app, &link).await;
        headers["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("frame-ancestors https://softphone.example.com")
            && headers.get("x-frame-options").is_none()
    })
    .await;
    // An expired link's page shows in the softphone's frame too.
    let link = link_for(&app, &acme.lookup_token, "0721234567").await;
    let claims = claims_of(&app, "acme", &link).await;
    let expired = expired_link(&app, "acme", claims).await;
    let (status, headers, _) = open(&app, &format!("{}/pop/{expired}", app.address)).await;
    assert_eq!(status, 410);
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("frame-ancestors https://softphone.example.com"),
        "{csp}"
    );
    assert!(headers.get("x-frame-options").is_none());

    cli_ok(
        &app,
        &["tenant", "set", "acme", "--redirect-to-crm", "true"],
    );
    let no_redirect = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    eventually(
        PROPAGATION,
        "the page redirects to the CRM record",
        || async {
            let link = link_for(&app, &acme.lookup_token, "0721234567").await;
            let response = no_redirect.get(&link).send().await.unwrap();
            response.status() == 303
                && response.headers()["location"] == "https://crm.example.com/contacts/12345"
        },
    )
    .await;
}

#[tokio::test]
async fn links_signed_before_a_key_rotation_keep_working() {
    let app = spawn_app().await;
    let acme = app.create_tenant("acme", "RO").await;
    app.put_contact(&acme.sync_token, "12345", &ana()).await;
    let old_link = link_for(&app, &acme.lookup_token, "0721234567").await;
    let key_of = |link: &str| {
        link.rsplit('/')
            .next()
            .unwrap()
            .split('.')
            .nth(2)
            .unwrap()
            .to_owned()
    };
    assert_eq!(key_of(&old_link), "1");

    cli_ok(&app, &["popup", "rotate-key", "--tenant", "acme"]);

    eventually(PROPAGATION, "new links use the new key", || async {
        key_of(&link_for(&app, &acme.lookup_token, "0721234567").await) == "2"
    })
    .await;
    assert_eq!(open(&app, &old_link).await.0, 200);
    let new_link = link_for(&app, &acme.lookup_token, "0721234567").await;
    assert_eq!(open(&app, &new_link).await.0, 200);
}

#[tokio::test]
async fn a_retired_key_stops_its_links_at_once_and_the_newest_cannot_be_retired() {
    let app = spawn_app().await;
    let acme = app.create_tenant("acme", "RO").await;
    let other = app.create_tenant("other", "RO").await;
    app.put_contact(&acme.sync_token, "12345", &ana()).await;
    app.put_contact(&other.sync_token, "12345", &ana()).await;
    let old_link = link_for(&app, &acme.lookup_token, "0721234567").await;
    let others_link = link_for(&app, &other.lookup_token, "0721234567").await;

    let newest = app.cli(&["popup", "retire-key", "--tenant", "acme", "--key-id", "1"]);
    assert!(!newest.status.success());
    assert!(String::from_utf8_lossy(&newest.stderr).contains("rotate-key"));
    assert_eq!(open(&app, &old_link).await.0, 200, "nothing was retired");

    cli_ok(&app, &["popup", "rotate-key", "--tenant", "acme"]);
    cli_ok(
        &app,
        &["popup", "retire-key", "--tenant", "acme", "--key-id", "1"],
    );
    let (status, _, body) = open(&app, &old_link).await;
    assert_eq!(status, 403);
    assert!(!body.contains("Ana"), "no contact data on the error page");
    assert_eq!(
        open(&app, &others_link).await.0,
        200,
        "other tenants' keys stay"
    );

    let missing = app.cli(&["popup", "retire-key", "--tenant", "acme", "--key-id", "1"]);
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no key 1"));
    // A fresh link each time: one signed before the gateway heard of the rotation names
    // the retired key and never opens (`link_for` would wait on it in vain).
    eventually(PROPAGATION, "new links use the remaining key", || async {
        let answer = app.lookup_json(&acme.lookup_token, "0721234567").await;
        let link = answer["backend_link"].as_str().unwrap().to_owned();
        open(&app, &link).await.0 == 200
    })
    .await;
}

#[tokio::test]
async fn every_lookup_is_logged_with_its_outcome() {
    let app = spawn_app().await;
    let acme = app.create_tenant("acme", "RO").await;
    app.put_contact(&acme.sync_token, "12345", &ana()).await;
    app.lookup(&acme.lookup_token, "0721234567").await;
    app.lookup(&acme.lookup_token, "0799999999").await;
    app.lookup(&acme.lookup_token, "anonymous").await;

    let rows = || async {
        let client = app.pool.get().await.unwrap();
        client
            .query(
                "SELECT outcome, number, dnid, crm_id, latency_us FROM lookup_log ORDER BY at",
                &[],
            )
            .await
            .unwrap()
    };
    eventually(PROPAGATION, "the log is written", || async {
        rows().await.len() == 3
    })
    .await;
    let rows = rows().await;
    let summary: Vec<(String, Option<String>, Option<String>)> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(3)))
        .collect();
    assert_eq!(
        summary,
        [
            (
                "found".into(),
                Some("+40721234567".into()),
                Some("12345".into())
            ),
            ("unknown".into(), Some("+40799999999".into()), None),
            ("unknown".into(), None, None),
        ]
    );
    assert!(
        rows.iter()
            .all(|r| r.get::<_, Option<String>>(2).as_deref() == Some("0210000000"))
    );
    assert!(rows.iter().all(|r| r.get::<_, i32>(4) >= 0));
}

#[tokio::test]
async fn a_tenant_that_turns_its_lookup_log_off_records_nothing_while_others_still_do() {
    let app = spawn_app().await;
    let acme = app.create_tenant("acme", "RO").await;
    let beta = app.create_tenant("beta", "RO").await;
    let set = app.cli(&[
        "tenant",
        "set",
        "acme",
        "--lookup-log",
        "off",
        "--popup-for-unknown",
        "true",
    ]);
    assert!(
        set.status.success(),
        "{}",
        String::from_utf8_lossy(&set.stderr)
    );
    // Both settings changed in one transaction: once unknown callers get a link, the
    // gateway has the new settings.
    eventually(
        PROPAGATION,
        "the gateway sees acme's new settings",
        || async {
            let body: Value = app
                .lookup(&acme.lookup_token, "0700000001")
                .await
                .json()
                .await
                .unwrap();
            body["backend_link"].is_string()
        },
    )
    .await;

    app.lookup(&acme.lookup_token, "0700000002").await;
    app.lookup(&acme.lookup_token, "0700000002").await;
    app.lookup(&beta.lookup_token, "0700000003").await;

    let logged = |number: &'static str| {
        let app = &app;
        async move {
            let client = app.pool.get().await.unwrap();
            let row = client
                .query_one(
                    "SELECT count(*) FROM lookup_log WHERE number = $1",
                    &[&number],
                )
                .await
                .unwrap();
            row.get::<_, i64>(0)
        }
    };
    // The log keeps the order of lookups: once beta's (the last) is written, acme's
    // would have been too.
    eventually(PROPAGATION, "beta's lookup is logged", || async {
        logged("+40700000003").await == 1
    })
    .await;
    assert_eq!(
        logged("+40700000002").await,
        0,
        "acme's lookups are not logged"
    );
    let set = app.cli(&["tenant", "set", "acme", "--lookup-log", "maybe"]);
    assert!(!set.status.success());
    assert!(String::from_utf8_lossy(&set.stderr).contains("`maybe` is neither on nor off"));
}

#[tokio::test]
async fn a_gather_window_longer_than_a_writes_time_limit_still_writes_the_log_once() {
    // The write's time limit (10 s) once counted from the statement's start, so a longer
    // window timed out every statement and the log was never written.
    let app = spawn_app_with(|s| s.lookup_log_gather_ms = 10_500).await;
    let acme = app.create_tenant("acme", "RO").await;
    app.lookup(&acme.lookup_token, "0799999999").await;
    let logged = || async {
        let client = app.pool.get().await.unwrap();
        let row = client
            .query_one("SELECT count(*) FROM lookup_log", &[])
            .await
            .unwrap();
        row.get::<_, i64>(0)
    };
    eventually(
        std::time::Duration::from_secs(30),
        "the window's statement commits",
        || async { logged().await > 0 },
    )
    .await;
    assert_eq!(logged().await, 1);
}

#[tokio::test]
async fn a_stopping_gateway_writes_the_lookups_it_has_buffered() {
    let app = spawn_app().await;
    let acme = app.create_tenant("acme", "RO").await;
    let (mut server, base) = app
        .serve_process(|command| {
            // Nothing is written while the gateway runs: only the stop can write the entries.
            command.env("CIDGATE_LOOKUP_LOG_GATHER_MS", "60000");
        })
        .await;
    for number in ["0799000001", "0799000002"] {
        let answer = app
            .http
            .get(format!(
                "{base}/api/lookup?telephone={number}&token={}",
                acme.lookup_token
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200);
    }

    let stopped = std::process::Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    assert!(stopped.success());
    assert!(server.wait().unwrap().success(), "SIGTERM is a clean stop");

    let client = app.pool.get().await.unwrap();
    let logged: i64 = client
        .query_one("SELECT count(*) FROM lookup_log", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        logged, 2,
        "both lookups were written before the gateway exited"
    );
}
