//! The lookup path under change and failure: cache invalidation across instances,
//! the deadline, a database outage and recovery, and the metrics that show it.

use cidgate::jobs::Supervisor;
use serde_json::{Value, json};

use crate::helpers::{
    PROPAGATION, TestApp, UNKNOWN_ANSWER, WITHIN_A_SECOND, eventually, spawn_app, spawn_app_with,
    spawn_instance, text_file,
};
use crate::proxy::{DbProxy, Mode};

const DEGRADED: &str = "x-cidgate-degraded";
const CONTACT_NOTIFICATIONS: &str = "cidgate_notifications_total{channel=\"cidgate_contacts\"}";

fn contact(name: &str, phone: &str) -> Value {
    json!({"name": name, "phones": [phone]})
}

#[tokio::test]
async fn a_write_through_one_instance_is_seen_by_a_lookup_on_the_other_within_a_second() {
    let app = spawn_app().await;
    let other = spawn_instance(&app.db.url, |_| {}).await;
    let acme = app.create_tenant("acme", "RO").await;
    let before = app
        .lookup_at(&other, &acme.lookup_token, "0721000001")
        .await;
    assert_eq!(before.text().await.unwrap(), UNKNOWN_ANSWER);

    let put = app
        .put_contact(&acme.sync_token, "1", &contact("Ana", "0721000001"))
        .await;
    assert_eq!(put.status(), 201);

    eventually(
        WITHIN_A_SECOND,
        "the other instance finds the new contact",
        || async {
            let answer: Value = app
                .lookup_at(&other, &acme.lookup_token, "0721000001")
                .await
                .json()
                .await
                .unwrap();
            answer["name"] == "Ana"
        },
    )
    .await;
}

#[tokio::test]
async fn an_unknown_number_that_becomes_known_is_found_at_once_on_the_writing_instance() {
    let app = spawn_app().await;
    let acme = app.create_tenant("acme", "RO").await;
    for _ in 0..2 {
        let answer = app.lookup(&acme.lookup_token, "0721000001").await;
        assert_eq!(answer.text().await.unwrap(), UNKNOWN_ANSWER);
    }

    app.put_contact(&acme.sync_token, "1", &contact("Ana", "0721000001"))
        .await;

    assert_eq!(
        app.lookup_json(&acme.lookup_token, "0721000001").await["name"],
        "Ana"
    );
}

#[tokio::test]
async fn a_changed_number_stops_resolving_under_the_old_one_on_every_instance() {
    let app = spawn_app().await;
    let other = spawn_instance(&app.db.url, |_| {}).await;
    let acme = app.create_tenant("acme", "RO").await;
    app.put_contact(&acme.sync_token, "1", &contact("Mover", "0721000001"))
        .await;
    eventually(
        PROPAGATION,
        "both instances cache the old number",
        || async {
            let here = app.lookup_json(&acme.lookup_token, "0721000001").await;
            let there: Value = app
                .lookup_at(&other, &acme.lookup_token, "0721000001")
                .await
                .json()
                .await
                .unwrap();
            here["name"] == "Mover" && there["name"] == "Mover"
        },
    )
    .await;

    app.put_contact(&acme.sync_token, "1", &contact("Mover", "0721000002"))
        .await;

    let here = app.lookup(&acme.lookup_token, "0721000001").await;
    assert_eq!(
        here.text().await.unwrap(),
        UNKNOWN_ANSWER,
        "at once on the writing instance"
    );
    assert_eq!(
        app.lookup_json(&acme.lookup_token, "0721000002").await["name"],
        "Mover"
    );
    eventually(
        PROPAGATION,
        "the other instance forgets the old number",
        || async {
            let there = app
                .lookup_at(&other, &acme.lookup_token, "0721000001")
                .await;
            there.text().await.unwrap() == UNKNOWN_ANSWER
        },
    )
    .await;
}

#[tokio::test]
async fn an_import_makes_a_running_gateway_forget_and_learn_what_a_write_through_it_would() {
    let app = spawn_app().await;
    let acme = app.create_tenant("acme", "RO").await;
    app.put_contact(&acme.sync_token, "1", &contact("Mover", "0721000001"))
        .await;
    // The gateway holds an answer for each number: the contact, cached, and unknown.
    assert_eq!(
        app.lookup_json(&acme.lookup_token, "0721000001").await["name"],
        "Mover"
    );
    let unknown = app.lookup(&acme.lookup_token, "0721000002").await;
    assert_eq!(unknown.text().await.unwrap(), UNKNOWN_ANSWER);

    // Another process moves the contact to the other number; only NOTIFY tells the gateway.
    let file = text_file("id,name,phones\n1,Mover,0721000002\n");
    let import = app.cli(&["import", "--tenant", "acme", file.path().to_str().unwrap()]);
    assert!(import.status.success());

    eventually(
        PROPAGATION,
        "the gateway forgets the old number and finds the new one",
        || async {
            let old = app.lookup(&acme.lookup_token, "0721000001").await;
            let new = app.lookup_json(&acme.lookup_token, "0721000002").await;
            old.text().await.unwrap() == UNKNOWN_ANSWER && new["name"] == "Mover"
        },
    )
    .await;
}

#[tokio::test]
async fn lookups_keep_answering_while_the_database_is_down_and_everything_recovers() {
    let db_app = spawn_app().await;
    let proxy = DbProxy::start(&db_app.db.url).await;
    let gateway = spawn_instance(&proxy.url(&db_app.db.url), |_| {}).await;
    let acme = db_app.create_tenant("acme", "RO").await;
    db_app
        .put_contact(&acme.sync_token, "1", &contact("Cached", "0721000001"))
        .await;
    db_app
        .put_contact(&acme.sync_token, "2", &contact("Never Asked", "0721000002"))
        .await;
    eventually(PROPAGATION, "the gateway caches a known caller", || async {
        let answer: Value = db_app
            .lookup_at(&gateway, &acme.lookup_token, "0721000001")
            .await
            .json()
            .await
            .unwrap();
        answer["name"] == "Cached"
    })
    .await;
    // The second number is never looked up: only the index knows it.
    index_holds(&db_app, &gateway, 2).await;
    let revoked = db_app.revoked_lookup_token("acme");
    eventually(
        PROPAGATION,
        "the gateway refuses the revoked token",
        || async {
            let answer = db_app.lookup_at(&gateway, &revoked, "0721000001").await;
            answer.status() == 401
        },
    )
    .await;

    proxy.set(Mode::Down);
    let http = &db_app.http;
    eventually(PROPAGATION, "readiness reports the outage", || async {
        let ready = http.get(format!("{gateway}/readyz")).send().await.unwrap();
        let status = ready.status();
        let body: Value = ready.json().await.unwrap();
        status == 503 && body["listener"] == "disconnected"
    })
    .await;

    let cached = db_app
        .lookup_at(&gateway, &acme.lookup_token, "0721000001")
        .await;
    assert_eq!(cached.status(), 200);
    assert_eq!(cached.headers()[DEGRADED], "stale");
    assert_eq!(cached.json::<Value>().await.unwrap()["name"], "Cached");

    let uncached = db_app
        .lookup_at(&gateway, &acme.lookup_token, "0721000002")
        .await;
    assert_eq!(uncached.status(), 200);
    assert_eq!(uncached.headers()[DEGRADED], "unknown");
    assert_eq!(uncached.text().await.unwrap(), UNKNOWN_ANSWER);

    let stranger = db_app
        .lookup_at(&gateway, &acme.lookup_token, "0729999999")
        .await;
    assert_eq!(stranger.status(), 200);
    assert!(
        stranger.headers().get(DEGRADED).is_none(),
        "the index knows it is unknown"
    );
    assert_eq!(stranger.text().await.unwrap(), UNKNOWN_ANSWER);

    // Tokens known to be no good stay refused without the database.
    for token in [revoked.as_str(), "garbage", "cgl_short"] {
        let refused = db_app.lookup_at(&gateway, token, "0721000001").await;
        assert_eq!(refused.status(), 401, "token {token:?}");
    }

    // A token created meanwhile cannot be checked: no data, but the call is routed.
    let globex = db_app.create_tenant("globex", "RO").await;
    let unverified = db_app
        .lookup_at(&gateway, &globex.lookup_token, "0721000001")
        .await;
    assert_eq!(unverified.status(), 200);
    assert_eq!(unverified.headers()[DEGRADED], "unverified");
    assert_eq!(unverified.text().await.unwrap(), UNKNOWN_ANSWER);
    let unverified_count = metric(
        http,
        &gateway,
        "cidgate_lookups_total{outcome=\"degraded_unverified\"}",
    )
    .await;
    assert_eq!(unverified_count, Some(1.0));

    let write = http
        .put(format!("{gateway}/api/v1/contacts/3"))
        .bearer_auth(&acme.sync_token)
        .json(&contact("During Outage", "0721000003"))
        .send()
        .await
        .unwrap();
    assert_eq!(write.status(), 503);
    assert!(write.headers().contains_key("retry-after"));
    eventually(PROPAGATION, "the lookup log's write fails", || async {
        metric(http, &gateway, "cidgate_lookup_log_write_failures_total")
            .await
            .is_some_and(|failures| failures >= 1.0)
    })
    .await;
    assert_eq!(
        http.get(format!("{gateway}/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    proxy.set(Mode::Open);
    eventually(
        std::time::Duration::from_secs(10),
        "readiness recovers",
        || async {
            http.get(format!("{gateway}/readyz"))
                .send()
                .await
                .unwrap()
                .status()
                == 200
        },
    )
    .await;
    let recovered = db_app
        .lookup_at(&gateway, &acme.lookup_token, "0721000002")
        .await;
    assert!(recovered.headers().get(DEGRADED).is_none());
    assert_eq!(
        recovered.json::<Value>().await.unwrap()["name"],
        "Never Asked"
    );
    // The calls answered during the outage reach the lookup log once it can be written.
    eventually(
        std::time::Duration::from_secs(10),
        "the outage's lookups are logged",
        || async { degraded_log_entries(&db_app).await == 2 },
    )
    .await;
    let dropped = metric(http, &gateway, "cidgate_lookup_log_dropped_total").await;
    assert_eq!(dropped, Some(0.0));
}

#[tokio::test]
async fn serve_waits_for_a_database_that_is_not_up_yet() {
    let app = spawn_app().await;
    let proxy = std::sync::Arc::new(DbProxy::start(&app.db.url).await);
    proxy.set(Mode::Down);
    let log = tempfile::NamedTempFile::new().unwrap();
    let opener = {
        let (proxy, log) = (proxy.clone(), log.path().to_owned());
        tokio::spawn(async move {
            eventually(PROPAGATION, "serve says it waits", || async {
                std::fs::read_to_string(&log)
                    .is_ok_and(|text| text.contains("waiting for the database"))
            })
            .await;
            proxy.set(Mode::Open);
        })
    };
    let (mut server, base) = app
        .serve_process(|command| {
            command
                .env("DATABASE_URL", proxy.url(&app.db.url))
                .stderr(log.reopen().unwrap());
        })
        .await;
    opener.await.unwrap();
    assert_eq!(
        app.http
            .get(format!("{base}/readyz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    server.kill().unwrap();
    server.wait().unwrap();
}

#[tokio::test]
async fn while_the_listener_is_cut_off_lookups_ask_the_database_not_the_cache() {
    let app = spawn_app().await;
    let proxy = DbProxy::start(&app.db.url).await;
    // The primary (and so the listener) goes through the proxy; lookups read directly.
    let replica_url = app.db.url.clone();
    let gateway = spawn_instance(&proxy.url(&app.db.url), |s| {
        s.database_read_url = Some(replica_url.into());
    })
    .await;
    let acme = app.create_tenant("acme", "RO").await;
    app.put_contact(&acme.sync_token, "1", &contact("Ana", "0721000001"))
        .await;
    index_holds(&app, &gateway, 1).await;

    proxy.set(Mode::Down);
    eventually(PROPAGATION, "the listener is cut off", || async {
        let ready = app
            .http
            .get(format!("{gateway}/readyz"))
            .send()
            .await
            .unwrap();
        ready.json::<Value>().await.unwrap()["listener"] == "disconnected"
    })
    .await;
    let name = || async {
        let answer = app
            .lookup_at(&gateway, &acme.lookup_token, "0721000001")
            .await;
        answer.json::<Value>().await.unwrap()["name"].clone()
    };
    assert_eq!(name().await, "Ana");
    // Written elsewhere: this gateway hears nothing of it, so only asking the
    // database again finds the change.
    app.put_contact(&acme.sync_token, "1", &contact("Bea", "0721000001"))
        .await;
    assert_eq!(name().await, "Bea");
    proxy.set(Mode::Open);
}

/// Far more than a lookup's answer may take, even on a loaded machine, yet far less than
/// the database timeout the tests below set: an answer within it came by the deadline.
const BY_THE_DEADLINE: std::time::Duration = std::time::Duration::from_millis(1_500);

#[tokio::test]
async fn a_hanging_database_still_gets_an_answer_by_the_deadline() {
    let db_app = spawn_app().await;
    let proxy = DbProxy::start(&db_app.db.url).await;
    let gateway = spawn_instance(&proxy.url(&db_app.db.url), |s| {
        s.lookup_deadline_ms = 100;
        // Only the deadline can answer in time.
        s.db_timeout_ms = 30_000;
    })
    .await;
    let acme = db_app.create_tenant("acme", "RO").await;
    db_app
        .put_contact(&acme.sync_token, "1", &contact("Ana", "0721000001"))
        .await;
    // The gateway learns of the number without ever looking it up, so nothing is cached.
    index_holds(&db_app, &gateway, 1).await;

    proxy.set(Mode::Stalled);

    let asked = std::time::Instant::now();
    let answer = db_app
        .lookup_at(&gateway, &acme.lookup_token, "0721000001")
        .await;
    let took = asked.elapsed();
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.headers()[DEGRADED], "unknown");
    assert_eq!(answer.text().await.unwrap(), UNKNOWN_ANSWER);
    assert!(took < BY_THE_DEADLINE, "answered after {took:?}");
    proxy.set(Mode::Open);
}

#[tokio::test]
async fn a_slow_query_is_answered_by_the_deadline_and_its_late_answer_fills_the_cache() {
    let app = spawn_app_with(|s| {
        s.lookup_deadline_ms = 100;
        s.db_timeout_ms = 30_000;
    })
    .await;
    let acme = app.create_tenant("acme", "RO").await;
    app.put_contact(&acme.sync_token, "1", &contact("Ana", "0721000001"))
        .await;
    index_holds(&app, &app.address, 1).await;
    let queries = "cidgate_db_query_duration_seconds_count{query=\"lookup\"}";
    assert_eq!(metric(&app.http, &app.address, queries).await, Some(0.0));

    // The contacts are locked: the lookup's query waits for the lock.
    let mut blocker = app.pool.get().await.unwrap();
    let lock = blocker.transaction().await.unwrap();
    lock.batch_execute("LOCK TABLE contacts IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    let asked = std::time::Instant::now();
    let answer = app.lookup(&acme.lookup_token, "0721000001").await;
    let took = asked.elapsed();
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.headers()[DEGRADED], "unknown");
    assert!(took < BY_THE_DEADLINE, "answered after {took:?}");
    // Still waiting for the lock when the answer went out.
    let waiting = lock_waiters(&app).await;
    assert_eq!(waiting, 1, "the lookup's query waits for the lock");
    lock.rollback().await.unwrap();

    // The late answer lands in the cache: the next lookup finds Ana without a query.
    eventually(PROPAGATION, "the late query finishes", || async {
        metric(&app.http, &app.address, queries).await == Some(1.0)
    })
    .await;
    let answer = app.lookup(&acme.lookup_token, "0721000001").await;
    assert!(answer.headers().get(DEGRADED).is_none());
    let answer: Value = answer.json().await.unwrap();
    assert_eq!(answer["name"], "Ana");
    assert_eq!(metric(&app.http, &app.address, queries).await, Some(1.0));
}

#[tokio::test]
async fn sync_requests_to_a_hanging_database_get_503_by_the_write_timeout_and_recover() {
    let db_app = spawn_app().await;
    let proxy = DbProxy::start(&db_app.db.url).await;
    // Long enough for a new connection (TLS through the proxy, statements prepared) on a
    // busy machine: after the hang every request needs one, and one that takes longer
    // than the timeout is given up with its request.
    let gateway = spawn_instance(&proxy.url(&db_app.db.url), |s| s.write_timeout_ms = 1_000).await;
    let acme = db_app.create_tenant("acme", "RO").await;
    let put = |id: &'static str| {
        db_app
            .http
            .put(format!("{gateway}/api/v1/contacts/{id}"))
            .bearer_auth(&acme.sync_token)
            .json(&contact("Ana", "0721000001"))
            .send()
    };
    // The pool now holds an open connection, which is what a hang catches mid-request.
    assert_eq!(put("1").await.unwrap().status(), 201);

    proxy.set(Mode::Stalled);
    let get = db_app
        .http
        .get(format!("{gateway}/api/v1/contacts/1"))
        .bearer_auth(&acme.sync_token)
        .send();
    for response in [put("2").await.unwrap(), get.await.unwrap()] {
        assert_eq!(response.status(), 503);
        assert!(response.headers().contains_key("retry-after"));
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "unavailable", "{body}");
    }

    proxy.set(Mode::Open);
    // Every pooled connection that hung is given up when a request next takes it and
    // times out, so recovery may take a few seconds on a busy machine.
    eventually(
        std::time::Duration::from_secs(20),
        "writes succeed again",
        || async { put("3").await.unwrap().status() == 201 },
    )
    .await;
}

#[tokio::test]
async fn concurrent_misses_on_one_number_make_one_database_query() {
    // A deadline no lookup here reaches: every miss waits for the one query.
    let app = spawn_app_with(|s| {
        s.lookup_deadline_ms = 20_000;
        s.db_timeout_ms = 30_000;
    })
    .await;
    let acme = app.create_tenant("acme", "RO").await;
    app.put_contact(&acme.sync_token, "1", &contact("Ana", "0721000001"))
        .await;
    // The write's own notification comes back and drops the entry again; let it pass
    // first so the counts below are exact.
    eventually(
        PROPAGATION,
        "the write's notification is handled",
        || async { metric(&app.http, &app.address, CONTACT_NOTIFICATIONS).await == Some(1.0) },
    )
    .await;
    let metrics = || async {
        app.http
            .get(format!("{}/metrics", app.address))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    assert_eq!(
        sample(
            &metrics().await,
            "cidgate_db_query_duration_seconds_count{query=\"lookup\"}"
        ),
        // Exported from start, at zero (issue 27 item 11).
        Some(0.0)
    );

    // The contacts are locked, so the first miss's query waits; the others arrive while
    // it does: the misses overlap for sure.
    let mut blocker = app.pool.get().await.unwrap();
    let lock = blocker.transaction().await.unwrap();
    lock.batch_execute("LOCK TABLE contacts IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    let lookups = (0..20).map(|_| app.lookup_json(&acme.lookup_token, "0721000001"));
    let answers = futures_util::future::join_all(lookups);
    let overlapped = async {
        eventually(PROPAGATION, "all 20 misses are waiting", || async {
            sample(&metrics().await, "cidgate_cache_misses_total") == Some(20.0)
        })
        .await;
        // A miss is counted before its batch's query is sent: wait for the query to
        // reach the lock, then check that it is the only one.
        eventually(
            PROPAGATION,
            "the misses' query waits for the lock",
            || async { lock_waiters(&app).await >= 1 },
        )
        .await;
        let waiting = lock_waiters(&app).await;
        assert_eq!(waiting, 1, "one query waits for the 20 misses");
        lock.rollback().await.unwrap();
    };
    let (answers, ()) = tokio::join!(answers, overlapped);

    assert!(answers.iter().all(|a| a["name"] == "Ana"));
    let text = metrics().await;
    assert_eq!(
        sample(
            &text,
            "cidgate_db_query_duration_seconds_count{query=\"lookup\"}"
        ),
        Some(1.0)
    );
    // One number asked in all: the misses waited for one load, not for one statement.
    assert_eq!(sample(&text, "cidgate_lookup_batch_numbers_sum"), Some(1.0));
    assert_eq!(
        sample(&text, "cidgate_lookups_total{outcome=\"database\"}").unwrap_or(0.0)
            + sample(&text, "cidgate_lookups_total{outcome=\"cache\"}").unwrap_or(0.0),
        20.0
    );
}

#[tokio::test]
async fn metrics_count_requests_cache_hits_and_index_answers() {
    let app = spawn_app_with(|s| s.workers = Some(1)).await;
    let acme = app.create_tenant("acme", "RO").await;
    app.put_contact(&acme.sync_token, "1", &contact("Ana", "0721000001"))
        .await;
    // The write's own notification comes back and drops the entry again; let it pass
    // first so the counts below are exact.
    eventually(
        PROPAGATION,
        "the write's notification is handled",
        || async { metric(&app.http, &app.address, CONTACT_NOTIFICATIONS).await == Some(1.0) },
    )
    .await;
    for _ in 0..3 {
        app.lookup(&acme.lookup_token, "0721000001").await;
    }
    app.lookup(&acme.lookup_token, "0729999999").await;

    let response = app
        .http
        .get(format!("{}/metrics", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();

    assert_eq!(sample(&text, "cidgate_cache_hits_total"), Some(2.0));
    assert_eq!(sample(&text, "cidgate_cache_misses_total"), Some(1.0));
    assert_eq!(
        sample(&text, "cidgate_lookups_total{outcome=\"index_unknown\"}"),
        Some(1.0)
    );
    assert_eq!(sample(&text, "cidgate_known_numbers"), Some(1.0));
    assert_eq!(sample(&text, "cidgate_cache_entries"), Some(1.0));
    assert!(
        text.contains(
            "cidgate_http_requests_total{route=\"/api/lookup\",method=\"GET\",status=\"200\"} 4"
        ),
        "{text}"
    );
    assert!(
        text.contains("cidgate_http_request_duration_seconds_bucket{le="),
        "{text}"
    );
    assert!(text.contains("cidgate_db_pool_size "), "{text}");
    assert!(text.contains("cidgate_degraded_answers_total 0"), "{text}");
}

/// Waits until the gateway's number index holds `count` numbers: it learned of them
/// through notifications, without a lookup that would have cached them.
async fn index_holds(app: &TestApp, gateway: &str, count: u32) {
    eventually(
        PROPAGATION,
        "the gateway's index holds the numbers",
        || async {
            metric(&app.http, gateway, "cidgate_known_numbers").await == Some(f64::from(count))
        },
    )
    .await;
}

/// One sample of a gateway's metrics.
async fn metric(http: &reqwest::Client, address: &str, series: &str) -> Option<f64> {
    let text = http
        .get(format!("{address}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    sample(&text, series)
}

/// The value of one sample line (`name{labels} value`) in Prometheus text, if present.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        line.strip_prefix(series)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

#[tokio::test]
async fn lookups_read_from_the_replica_and_a_hanging_one_still_answers_and_is_logged() {
    let app = spawn_app().await;
    let proxy = DbProxy::start(&app.db.url).await;
    let replica_url = proxy.url(&app.db.url);
    let gateway = spawn_instance(&app.db.url, |s| {
        s.database_read_url = Some(replica_url.into());
        s.lookup_deadline_ms = 100;
    })
    .await;
    let acme = app.create_tenant("acme", "RO").await;
    app.put_contact(&acme.sync_token, "1", &contact("Ana", "0721000001"))
        .await;
    index_holds(&app, &gateway, 1).await;

    // Only the replica hangs: the primary (writes, the lookup log) is fine.
    proxy.set(Mode::Stalled);
    let answer = app
        .lookup_at(&gateway, &acme.lookup_token, "0721000001")
        .await;

    assert_eq!(answer.status(), 200);
    assert_eq!(answer.headers()[DEGRADED], "unknown");
    // Lookups cannot identify anyone: not ready, and the replica named as the cause.
    let ready = app
        .http
        .get(format!("{gateway}/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 503);
    let body: Value = ready.json().await.unwrap();
    assert_eq!(body["replica"], "unreachable", "{body}");
    assert_eq!(body["database"], "up", "{body}");
    eventually(PROPAGATION, "the degraded lookup is logged", || async {
        degraded_log_entries(&app).await == 1
    })
    .await;
    proxy.set(Mode::Open);
    eventually(PROPAGATION, "the replica answers again", || async {
        let answer: Value = app
            .lookup_at(&gateway, &acme.lookup_token, "0721000001")
            .await
            .json()
            .await
            .unwrap();
        answer["name"] == "Ana"
    })
    .await;
    let read_pool = metric(&app.http, &gateway, "cidgate_db_read_pool_size").await;
    assert!(read_pool.is_some_and(|open| open >= 1.0), "{read_pool:?}");
}

/// Romanian mobile number `i` (0721000000 + i), normalized.
fn ro_number(i: u32) -> cidgate::domain::PhoneNumber {
    let ro = cidgate::domain::Region::parse("RO").unwrap();
    cidgate::domain::PhoneNumber::parse(&format!("0721{i:06}"), ro).unwrap()
}

async fn degraded_log_entries(app: &TestApp) -> i64 {
    let client = app.pool.get().await.unwrap();
    let row = client
        .query_one(
            "SELECT count(*) FROM lookup_log WHERE outcome = 'degraded'",
            &[],
        )
        .await
        .unwrap();
    row.get(0)
}

async fn tenant_id(app: &TestApp, slug: &str) -> cidgate::domain::TenantId {
    let client = app.pool.get().await.unwrap();
    let row = client
        .query_one("SELECT id FROM tenants WHERE slug = $1", &[&slug])
        .await
        .unwrap();
    cidgate::domain::TenantId(row.get(0))
}

#[tokio::test]
async fn misses_waiting_at_once_share_one_statement_and_each_get_their_own_answer() {
    use cidgate::domain::PhoneNumber;
    use cidgate::lookup::batcher::LookupBatcher;

    let app = spawn_app().await;
    let acme = app.create_tenant("acme", "RO").await;
    let globex = app.create_tenant("globex", "RO").await;
    let items: Vec<Value> = (0..40)
        .map(|i| json!({"op": "upsert", "id": i.to_string(), "name": format!("A{i}"), "phones": [format!("0721{i:06}")]}))
        .collect();
    assert_eq!(
        app.batch(&acme.sync_token, &Value::Array(items))
            .await
            .status(),
        200
    );
    // The same number at another tenant, and a newer contact sharing one of acme's.
    app.put_contact(&globex.sync_token, "g", &contact("G", "0721000007"))
        .await;
    // Newer than the batch's writes (an hour ahead: the gateway takes up to a day).
    let soon = (chrono::Utc::now() + chrono::TimeDelta::hours(1)).to_rfc3339();
    let newer = json!({"name": "Newer", "phones": ["0721000003"], "updated_at": soon});
    app.put_contact(&acme.sync_token, "n", &newer).await;
    let (acme_id, globex_id) = (
        tenant_id(&app, "acme").await,
        tenant_id(&app, "globex").await,
    );

    // One statement slot: in this single-threaded test runtime every miss below is
    // queued before the batcher first runs, so all of them go out together.
    let metrics = cidgate::metrics::Metrics::new();
    let batcher = LookupBatcher::spawn(
        &Supervisor::new(metrics.clone()),
        app.pool.clone(),
        1,
        std::time::Duration::from_secs(5),
        metrics.clone(),
    );
    let mut asked: Vec<(cidgate::domain::TenantId, PhoneNumber)> =
        (0..40).map(|i| (acme_id, ro_number(i))).collect();
    asked.push((globex_id, ro_number(7)));
    asked.push((globex_id, ro_number(8)));
    asked.push((acme_id, ro_number(999)));
    let answers =
        futures_util::future::join_all(asked.iter().map(|(t, n)| batcher.find(*t, n))).await;

    let names: Vec<Option<String>> = answers
        .into_iter()
        .map(|a| a.unwrap().map(|hit| hit.name().to_owned()))
        .collect();
    for (i, name) in names.iter().take(40).enumerate() {
        let expected = if i == 3 {
            "Newer".to_owned()
        } else {
            format!("A{i}")
        };
        assert_eq!(name.as_deref(), Some(expected.as_str()), "number {i}");
    }
    assert_eq!(names[40].as_deref(), Some("G"), "globex's own contact");
    assert_eq!(names[41], None, "acme's number is not globex's");
    assert_eq!(names[42], None, "nobody has this number");
    let text = metrics.render();
    assert_eq!(
        sample(
            &text,
            "cidgate_db_query_duration_seconds_count{query=\"lookup\"}"
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(&text, "cidgate_lookup_batch_numbers_sum"),
        Some(43.0)
    );
}

#[tokio::test]
async fn a_batch_the_database_cannot_answer_fails_every_miss_in_it() {
    use cidgate::domain::PhoneNumber;
    use cidgate::lookup::batcher::LookupBatcher;

    let app = spawn_app().await;
    let proxy = DbProxy::start(&app.db.url).await;
    let pool = cidgate::store::connect_pool(
        &proxy.url(&app.db.url),
        2,
        std::time::Duration::from_secs(1),
    )
    .expect("pool through the proxy");
    proxy.set(Mode::Down);
    let metrics = cidgate::metrics::Metrics::new();
    let batcher = LookupBatcher::spawn(
        &Supervisor::new(metrics.clone()),
        pool,
        1,
        std::time::Duration::from_secs(1),
        metrics,
    );
    let numbers: Vec<PhoneNumber> = (0..3).map(ro_number).collect();
    let tenant = cidgate::domain::TenantId(1);

    let answers =
        futures_util::future::join_all(numbers.iter().map(|n| batcher.find(tenant, n))).await;

    assert!(answers.iter().all(Result::is_err), "{answers:?}");
}

#[tokio::test]
async fn misses_are_shed_when_the_queue_is_full_or_they_waited_too_long() {
    use cidgate::domain::PhoneNumber;
    use cidgate::lookup::batcher::LookupBatcher;

    let app = spawn_app().await;
    // A statement timeout of zero: by the time the batcher takes a miss, every miss has
    // waited longer than a statement may take.
    let metrics = cidgate::metrics::Metrics::new();
    let batcher = LookupBatcher::spawn(
        &Supervisor::new(metrics.clone()),
        app.pool.clone(),
        1,
        std::time::Duration::ZERO,
        metrics.clone(),
    );
    // One more than the queue holds, all queued before the batcher first runs (this
    // test's runtime has one thread).
    let numbers: Vec<PhoneNumber> = (0..1025).map(ro_number).collect();
    let tenant = cidgate::domain::TenantId(1);

    let answers =
        futures_util::future::join_all(numbers.iter().map(|n| batcher.find(tenant, n))).await;

    let errors: Vec<String> = answers
        .into_iter()
        .map(|a| format!("{:#}", a.unwrap_err()))
        .collect();
    assert!(errors[..1024].iter().all(|e| e.contains("waited too long")));
    assert!(errors[1024].contains("queue is full"), "{}", errors[1024]);
    assert_eq!(
        sample(
            &metrics.render(),
            "cidgate_db_query_duration_seconds_count{query=\"lookup\"}"
        ),
        Some(0.0),
        "nothing was asked of the database"
    );
}

#[tokio::test]
async fn one_tenants_waiting_writes_do_not_take_the_connections_other_tenants_need() {
    let app = crate::helpers::spawn_app_with(|s| {
        s.db_pool_size = 4;
        s.sync_rate = 10_000;
    })
    .await;
    let busy = app.create_tenant("busy", "RO").await;
    let other = app.create_tenant("other", "RO").await;
    // Someone holds the busy tenant's row (as a long import does): its writes must wait.
    let holder = hold_tenant_row(&app, "busy").await;
    let waiting: Vec<_> = (0..12)
        .map(|i| {
            app.http
                .put(format!("{}/api/v1/contacts/w-{i}", app.address))
                .bearer_auth(&busy.sync_token)
                .json(&contact("Wait", &format!("0721{i:06}")))
                .send()
        })
        .collect();
    let waiting = tokio::spawn(futures_util::future::join_all(waiting));
    // The busy tenant's first write is in the database, waiting on the row.
    a_write_waits_on_a_row(&app).await;
    let put = app
        .put_contact(&other.sync_token, "1", &contact("Free", "0731000001"))
        .await;
    assert_eq!(put.status(), 201, "another tenant's write is not starved");
    let ready = app
        .http
        .get(format!("{}/readyz", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
    holder.batch_execute("ROLLBACK").await.unwrap();
    for response in waiting.await.unwrap() {
        assert_eq!(response.unwrap().status(), 201);
    }
}

/// Holds `slug`'s tenant row, as a long import does, on a connection of the test's own
/// until `ROLLBACK` is sent on it: that tenant's writes wait.
async fn hold_tenant_row(app: &TestApp, slug: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(&app.db.url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client.batch_execute("BEGIN").await.unwrap();
    client
        .execute(
            "SELECT 1 FROM tenants WHERE slug = $1 FOR NO KEY UPDATE",
            &[&slug],
        )
        .await
        .unwrap();
    client
}

/// Returns once a gateway write is in the database, waiting on a held row.
async fn a_write_waits_on_a_row(app: &TestApp) {
    eventually(PROPAGATION, "a write waits on the row", || async {
        let client = app.pool.get().await.unwrap();
        let row = client
            .query_one(
                "SELECT count(*) FROM pg_stat_activity
                 WHERE wait_event_type = 'Lock' AND datname = current_database()",
                &[],
            )
            .await
            .unwrap();
        row.get::<_, i64>(0) >= 1
    })
    .await;
}

#[tokio::test]
async fn readiness_and_the_listener_do_not_need_a_pool_that_writes_hold() {
    let app = spawn_app_with(|s| s.db_pool_size = 1).await;
    let busy = app.create_tenant("busy", "RO").await;
    let other = app.create_tenant("other", "RO").await;
    let holder = hold_tenant_row(&app, "busy").await;
    // The pool's only connection goes to a write that waits on the held row.
    let waiting = app
        .http
        .put(format!("{}/api/v1/contacts/1", app.address))
        .bearer_auth(&busy.sync_token)
        .json(&contact("Wait", "0721000001"))
        .send();
    let waiting = tokio::spawn(waiting);
    a_write_waits_on_a_row(&app).await;

    let ready = app.get_raw("/readyz").await;
    assert_eq!(ready.status(), 200);
    let ready: Value = ready.json().await.unwrap();
    assert_eq!(ready["database"], "up", "{ready}");

    // A revoked token stops working: the listener reloads on its own connection.
    let revoke = app.cli(&["token", "revoke", &app.token_id("other", "lookup")]);
    assert!(revoke.status.success(), "{revoke:?}");
    eventually(PROPAGATION, "the revoked token is refused", || async {
        app.lookup(&other.lookup_token, "0731000001").await.status() == 401
    })
    .await;

    holder.batch_execute("ROLLBACK").await.unwrap();
    assert_eq!(waiting.await.unwrap().unwrap().status(), 201);
}

/// Sessions of the test's database waiting for a lock (a query the test holds back).
async fn lock_waiters(app: &TestApp) -> i64 {
    let client = app.pool.get().await.unwrap();
    client
        .query_one(
            "SELECT count(*) FROM pg_stat_activity
              WHERE datname = current_database() AND wait_event_type = 'Lock'",
            &[],
        )
        .await
        .unwrap()
        .get(0)
}
