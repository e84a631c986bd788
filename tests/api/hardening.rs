//! Issue 21: guessing behind a shared address, screen-pop links that hide what they name
//! and are checked before any database work, notifications that are not the gateway's,
//! and the demo's removed numbers.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use cidgate::domain::{TenantId, TokenScope};
use cidgate::popup::LinkClaims;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};

use crate::helpers::{
    PROPAGATION, TestApp, UNKNOWN_ANSWER, eventually, spawn_app, spawn_app_with, spawn_instance,
};
use crate::proxy::{DbProxy, Mode};

fn client_from(source: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(source.parse::<IpAddr>().unwrap())
        .build()
        .unwrap()
}

async fn lookup_from(client: &reqwest::Client, gateway: &str, token: &str) -> reqwest::Response {
    client
        .get(format!("{gateway}/api/lookup"))
        .query(&[("telephone", "0721234567"), ("token", token)])
        .send()
        .await
        .unwrap()
}

pub async fn metrics(app: &TestApp, gateway: &str) -> String {
    let url = format!("{gateway}/metrics");
    app.http
        .get(url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// The value of one sample (`name{labels} value`) in Prometheus text, 0 when absent.
pub fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| {
            line.strip_prefix(series)?
                .strip_prefix(' ')?
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or(0.0)
}

async fn tenant_id(app: &TestApp, slug: &str) -> i64 {
    let client = app.pool.get().await.unwrap();
    let row = client
        .query_one("SELECT id FROM tenants WHERE slug = $1", &[&slug])
        .await
        .unwrap();
    row.get(0)
}

fn ana() -> Value {
    json!({"name": "Ana Popescu", "phones": ["0721 234 567"], "direct_line": "101"})
}

#[tokio::test]
async fn guessing_from_a_shared_address_locks_out_no_valid_token_and_asks_no_database() {
    // Behind one NAT or proxy address: a PBX with a wrong token, and tenants whose
    // tokens are good.
    let db_app = spawn_app().await;
    let proxy = DbProxy::start(&db_app.db.url).await;
    let gateway = spawn_instance(&proxy.url(&db_app.db.url), |_| {}).await;
    let acme = db_app.create_tenant("acme", "RO").await;
    db_app.put_contact(&acme.sync_token, "1", &ana()).await;
    let shared = client_from("127.0.0.1");

    let mut refused = 0;
    while refused < 30 {
        let guess = format!("cgl_{refused:0>32}");
        let status = lookup_from(&shared, &gateway, &guess).await.status();
        assert_eq!(status, 401, "guess {refused}");
        refused += 1;
    }
    let over = lookup_from(&shared, &gateway, "cgl_one_more_guess").await;
    assert_eq!(over.status(), 429, "the address is blocked");

    // A token the gateway holds in memory passes the block and finds the contact
    // (waits only for the gateway to load the token and hear of the contact: until
    // then its number index answers unknown).
    eventually(PROPAGATION, "a valid token finds the contact", || async {
        let response = lookup_from(&shared, &gateway, &acme.lookup_token).await;
        response.status() == 200 && response.json::<Value>().await.unwrap()["name"] == "Ana Popescu"
    })
    .await;
    let sync = shared
        .get(format!("{gateway}/api/v1/contacts/1"))
        .bearer_auth(&acme.sync_token)
        .send()
        .await
        .unwrap();
    assert_eq!(sync.status(), 200, "the sync API too");

    // A token made while the database hangs (the gateway never hears of it): from the
    // blocked address it is refused at once, without asking; elsewhere the gateway
    // asks, and answers unverified once its deadline passes.
    proxy.set(Mode::Stalled);
    let fresh = {
        let client = db_app.pool.get().await.unwrap();
        let tenant = TenantId(tenant_id(&db_app, "acme").await);
        let (_, token) = cidgate::store::tokens::create(&client, tenant, TokenScope::Lookup, "new")
            .await
            .unwrap();
        token.expose().to_owned()
    };
    let started = Instant::now();
    let blocked = lookup_from(&shared, &gateway, &fresh).await;
    assert_eq!(blocked.status(), 429);
    assert!(blocked.headers().contains_key("retry-after"));
    assert!(
        started.elapsed() < Duration::from_millis(200),
        "no database wait: {:?}",
        started.elapsed()
    );
    let elsewhere = lookup_from(&client_from("127.0.0.2"), &gateway, &fresh).await;
    assert_eq!(elsewhere.status(), 200);
    assert_eq!(elsewhere.headers()["x-cidgate-degraded"], "unverified");
    proxy.set(Mode::Open);
}

/// A link of the first form (`1.<key>.<claims>.<HMAC>`), as gateways before sealing
/// handed them out.
async fn first_form_link(app: &TestApp, slug: &str, claims: &LinkClaims<'_>) -> String {
    let client = app.pool.get().await.unwrap();
    let tenant = TenantId(tenant_id(app, slug).await);
    let key = cidgate::store::signing_keys::newest(&client, tenant)
        .await
        .unwrap()
        .unwrap();
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap());
    let signed = format!("1.{}.{payload}", key.key_id);
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&key.secret).unwrap();
    mac.update(signed.as_bytes());
    let tag = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    format!("{}/pop/{signed}.{tag}", app.address)
}

#[tokio::test]
async fn a_link_shows_nothing_it_names_and_links_already_handed_out_keep_working() {
    let app = spawn_app().await;
    let acme = app.create_tenant("acme", "RO").await;
    app.put_contact(&acme.sync_token, "12345", &ana()).await;
    let answer = app.lookup_json(&acme.lookup_token, "0721234567").await;
    let link = answer["backend_link"].as_str().unwrap().to_owned();

    let token = link.rsplit('/').next().unwrap();
    let mut shown = token.to_owned();
    for part in token.split('.') {
        if let Ok(bytes) = URL_SAFE_NO_PAD.decode(part) {
            shown.push_str(&String::from_utf8_lossy(&bytes));
        }
    }
    for named in ["721234567", "0210000000", "12345", "Ana"] {
        assert!(!shown.contains(named), "{named} in {link}");
    }
    eventually(PROPAGATION, "the sealed link opens", || async {
        app.http.get(&link).send().await.unwrap().status() == 200
    })
    .await;

    let claims = LinkClaims {
        tenant: tenant_id(&app, "acme").await,
        crm_id: Some("12345".into()),
        number: "+40721234567".into(),
        dnid: Some("0210000000".into()),
        expires: chrono::Utc::now().timestamp() + 600,
        ..LinkClaims::default()
    };
    let old = first_form_link(&app, "acme", &claims).await;
    let page = app.http.get(&old).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("Ana Popescu"));
    let expired = LinkClaims {
        expires: chrono::Utc::now().timestamp() - 1,
        ..claims.clone()
    };
    let old_expired = first_form_link(&app, "acme", &expired).await;
    assert_eq!(
        app.http.get(&old_expired).send().await.unwrap().status(),
        410
    );
    let other = LinkClaims {
        crm_id: Some("99999".into()),
        ..claims
    };
    let edited = first_form_link(&app, "acme", &other).await;
    let (edited_head, _) = edited.rsplit_once('.').unwrap();
    let (_, genuine_tag) = old.rsplit_once('.').unwrap();
    let forged = format!("{edited_head}.{genuine_tag}");
    assert_eq!(app.http.get(&forged).send().await.unwrap().status(), 403);
}

#[tokio::test]
async fn a_forged_or_expired_link_is_refused_without_waiting_for_the_database() {
    let db_app = spawn_app().await;
    let proxy = DbProxy::start(&db_app.db.url).await;
    let gateway = spawn_instance(&proxy.url(&db_app.db.url), |s| s.write_timeout_ms = 2_000).await;
    let acme = db_app.create_tenant("acme", "RO").await;
    db_app.put_contact(&acme.sync_token, "12345", &ana()).await;
    // The second instance signs links once it has loaded the new tenant's key.
    let give_up = Instant::now() + PROPAGATION;
    let link = loop {
        let answer: Value = db_app
            .lookup_at(&gateway, &acme.lookup_token, "0721234567")
            .await
            .json()
            .await
            .unwrap();
        if let Some(found) = answer["backend_link"].as_str() {
            break found.to_owned();
        }
        assert!(
            Instant::now() < give_up,
            "the gateway never answered with a link"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    };
    let token = link.rsplit('/').next().unwrap();
    let pop = |token: String| {
        let url = format!("{gateway}/pop/{token}");
        let http = db_app.http.clone();
        async move {
            let started = Instant::now();
            let status = http.get(url).send().await.unwrap().status().as_u16();
            (status, started.elapsed())
        }
    };
    eventually(PROPAGATION, "the gateway opens its link", || async {
        pop(token.to_owned()).await.0 == 200
    })
    .await;

    proxy.set(Mode::Stalled);
    let (header, sealed) = token.rsplit_once('.').unwrap();
    let mut bytes = URL_SAFE_NO_PAD.decode(sealed).unwrap();
    bytes[40] ^= 1;
    let tampered = format!("{header}.{}", URL_SAFE_NO_PAD.encode(&bytes));
    let key = {
        let client = db_app.pool.get().await.unwrap();
        let tenant = TenantId(tenant_id(&db_app, "acme").await);
        cidgate::store::signing_keys::newest(&client, tenant)
            .await
            .unwrap()
            .unwrap()
    };
    let expired = cidgate::popup::seal(
        &key,
        &LinkClaims {
            tenant: key.tenant.0,
            crm_id: Some("12345".into()),
            number: "+40721234567".into(),
            dnid: None,
            expires: chrono::Utc::now().timestamp() - 1,
            ..LinkClaims::default()
        },
    );
    let unknown_key = format!("2.{}.77.{sealed}", key.tenant.0);
    for (case, token, expected) in [
        ("tampered", tampered, 403),
        ("expired", expired, 410),
        ("a key nobody has", unknown_key, 403),
    ] {
        let (status, took) = pop(token).await;
        assert_eq!(status, expected, "{case}");
        assert!(took < Duration::from_millis(500), "{case} took {took:?}");
    }
    proxy.set(Mode::Open);
}

#[tokio::test]
async fn screen_pops_are_rate_limited_per_source_address() {
    let app = spawn_app_with(|s| s.pop_rate = 1).await;
    let url = format!("{}/pop/2.1.1.not-a-seal", app.address);
    let responses =
        futures_util::future::join_all((0..10).map(|_| app.http.get(&url).send())).await;
    let limited: Vec<_> = responses
        .into_iter()
        .map(Result::unwrap)
        .filter(|r| r.status() == 429)
        .collect();
    assert!(
        limited.len() >= 7,
        "a burst of two passes, {}",
        limited.len()
    );
    let retry: u64 = limited[0].headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry >= 1);
    let other = client_from("127.0.0.2").get(&url).send().await.unwrap();
    assert_eq!(other.status(), 403, "another address is not affected");
    let text = metrics(&app, &app.address).await;
    let series = "cidgate_rate_limited_total{limit=\"pops\"}";
    assert_eq!(sample(&text, series), limited.len() as f64, "{text}");
}

#[tokio::test]
async fn a_notification_that_is_not_the_gateways_is_counted_and_never_indexed() {
    let app = spawn_app().await;
    app.create_tenant("acme", "RO").await;
    let acme = tenant_id(&app, "acme").await;
    let client = app.pool.get().await.unwrap();
    let notify = async |channel: &str, payload: String| {
        client
            .execute("SELECT pg_notify($1, $2)", &[&channel, &payload])
            .await
            .unwrap();
    };
    let before = metrics(&app, &app.address).await;
    let configs = "cidgate_notifications_total{channel=\"cidgate_config\"}";
    let reloads = sample(&before, configs);

    notify(
        "cidgate_contacts",
        format!("{acme} | +40722999999 <script>"),
    )
    .await;
    notify(
        "cidgate_contacts",
        format!("{acme} | +40722999998 | +40722999997"),
    )
    .await;
    notify("cidgate_contacts", format!("-{acme} | +40722999996")).await;
    notify("cidgate_config", "reload, please".to_owned()).await;
    // A genuine one after them: once it is handled, so are they (one connection, in order).
    notify("cidgate_config", String::new()).await;
    eventually(PROPAGATION, "the notifications are handled", || async {
        sample(&metrics(&app, &app.address).await, configs) >= reloads + 2.0
    })
    .await;
    let text = metrics(&app, &app.address).await;
    assert_eq!(
        sample(&text, "cidgate_notifications_ignored_total"),
        4.0,
        "{text}"
    );
    assert_eq!(sample(&text, "cidgate_known_numbers"), 0.0, "{text}");
}

#[tokio::test]
async fn the_demo_notifies_the_numbers_it_removes() {
    let app = spawn_app().await;
    let demo = app.cli(&["demo", "--listen", "127.0.0.1:9"]);
    assert!(demo.status.success(), "{demo:?}");
    let token = |scope: &str| {
        let created = app.cli(&["token", "create", "--tenant", "demo", "--scope", scope]);
        assert!(created.status.success(), "{created:?}");
        let stdout = String::from_utf8(created.stdout).unwrap();
        stdout.lines().last().unwrap().trim().to_owned()
    };
    let (sync, lookup) = (token("sync"), token("lookup"));
    let extra = json!({"name": "Not A Demo Contact", "phones": ["0733000111"]});
    assert_eq!(app.put_contact(&sync, "extra", &extra).await.status(), 201);
    eventually(PROPAGATION, "the extra contact is answered", || async {
        app.lookup_json(&lookup, "0733000111").await["name"] == "Not A Demo Contact"
    })
    .await;

    // The demo starts its tenant over: the extra contact goes, and its cached answer
    // with it.
    let again = app.cli(&["demo", "--listen", "127.0.0.1:9"]);
    assert!(again.status.success(), "{again:?}");
    eventually(PROPAGATION, "the removed number is unknown", || async {
        let response = app.lookup(&lookup, "0733000111").await;
        response.text().await.unwrap() == UNKNOWN_ANSWER
    })
    .await;
}
