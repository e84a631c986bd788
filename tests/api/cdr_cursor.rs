//! The CDR cursor: every ended call exactly once while event writes commit out of order.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use cidgate::domain::TenantSlug;
use cidgate::store;
use uuid::Uuid;

use crate::calls::{call_tenant, ended_calls};
use crate::helpers::{TestApp, spawn_app};

/// One page of a walk: its calls' keys and the cursor to the next page.
async fn page(app: &TestApp, token: &str, query: &[(&str, &str)]) -> (Vec<String>, String) {
    let page = app.cdr(token, query).await;
    let calls = page["CallList"].as_array().unwrap();
    assert!(calls.len() <= 100);
    let keys = calls
        .iter()
        .map(|c| c["activecallkey"].as_str().unwrap().to_owned())
        .collect();
    let cursor = page["cursor"].as_str().expect("a cursor on every page");
    (keys, cursor.to_owned())
}

const RANGE: [(&str, &str); 3] = [
    ("startdate", "2025-06-01"),
    ("finishdate", "2026-06-01"),
    ("limit", "100"),
];

fn keys(range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| format!("p-{i}")).collect()
}

fn assert_exactly_once(seen: &[String], expected: usize) {
    let unique: HashSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "a call came twice: {seen:?}");
    assert_eq!(seen.len(), expected, "every call exactly once: {seen:?}");
}

#[tokio::test]
async fn paging_returns_every_call_exactly_once_oldest_first_while_calls_keep_arriving() {
    let app = spawn_app().await;
    let t = call_tenant(&app, "acme").await;
    assert_eq!(
        app.post_events(&t.pbx, &ended_calls(0, 250)).await.status(),
        200
    );

    // Another PBX keeps reporting calls (of the same range) while the CRM pages.
    let mut writer = Some({
        let (http, address, token) = (app.http.clone(), app.address.clone(), t.pbx.clone());
        tokio::spawn(async move {
            for batch in 0..20 {
                let response = http
                    .post(format!("{address}/api/v1/events"))
                    .bearer_auth(&token)
                    .json(&ended_calls(1_000 + batch * 10, 10))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), 200);
            }
        })
    });
    let mut seen: Vec<String> = Vec::new();
    let (calls, mut cursor) = page(&app, &t.report, &RANGE).await;
    seen.extend(calls);
    for pages in 1.. {
        let (calls, next) = page(&app, &t.report, &[("cursor", &cursor)]).await;
        cursor = next;
        // Caught up: let the writer finish, then page on through what it wrote last.
        if calls.is_empty() {
            match writer.take() {
                Some(writer) => writer.await.unwrap(),
                None => break,
            }
        }
        seen.extend(calls);
        assert!(
            pages < 100,
            "paging does not end: {} calls seen",
            seen.len()
        );
    }
    assert_exactly_once(&seen, 450);
    // The calls there before the walk began come first, oldest first.
    assert_eq!(&seen[..250], &keys(0..250)[..]);
}

/// Waits (polling the database, not for a set time) until a session is blocked by `pid`.
async fn wait_until_blocked_by(app: &TestApp, pid: i32) {
    let client = app.pool.get().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let blocked: i64 = client
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))",
                &[&pid],
            )
            .await
            .unwrap()
            .get(0);
        if blocked > 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the writer never reached the lock"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Two of the gateway's writers commit out of order: the first is held mid-transaction
/// (on a call key the test's own connection holds) while the second commits later
/// changes and the CRM pages past them; the first then commits. A cursor over numbers
/// taken when a write began (a plain sequence) passes the held write's number and
/// never returns its call.
#[tokio::test]
async fn paging_returns_a_call_whose_write_commits_after_a_later_write_was_paged() {
    let app = spawn_app().await;
    let t = call_tenant(&app, "acme").await;
    assert_eq!(
        app.post_events(&t.pbx, &ended_calls(0, 50)).await.status(),
        200
    );
    // The whole range on one page: the walk is past the calls there when it began.
    let (mut seen, cursor) = page(&app, &t.report, &RANGE).await;
    assert_eq!(seen, keys(0..50));

    // The test holds, uncommitted, the key the held write's call needs.
    let tenant = {
        let client = app.pool.get().await.unwrap();
        store::tenants::find_by_slug(&client, &TenantSlug::parse("acme").unwrap())
            .await
            .unwrap()
            .unwrap()
            .id
    };
    let held = ended_calls(200, 1);
    let at = chrono::DateTime::from_timestamp_millis(held[0]["at"].as_i64().unwrap()).unwrap();
    let mut blocker = app.pool.get().await.unwrap();
    let lock = blocker.transaction().await.unwrap();
    let pid: i32 = lock
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0);
    lock.execute(
        "INSERT INTO call_keys (tenant_id, key, call_id, month) VALUES ($1, 'c:p-200', $2, $3)",
        &[&tenant.0, &Uuid::new_v4(), &store::calls::month_of(at)],
    )
    .await
    .unwrap();

    // First writer: its transaction is open, waiting on the test's key.
    let first = {
        let (http, address, token) = (app.http.clone(), app.address.clone(), t.pbx.clone());
        tokio::spawn(async move {
            http.post(format!("{address}/api/v1/events"))
                .bearer_auth(&token)
                .json(&held)
                .send()
                .await
                .unwrap()
                .status()
        })
    };
    wait_until_blocked_by(&app, pid).await;

    // Second writer: later calls, committed while the first is still open.
    assert_eq!(
        app.post_events(&t.pbx, &ended_calls(100, 10))
            .await
            .status(),
        200,
        "a tenant's writes run side by side: the second commits while the first is open"
    );
    let (calls, cursor) = page(&app, &t.report, &[("cursor", &cursor)]).await;
    // One change: its calls come in id order, not start order.
    let mut sorted = calls.clone();
    sorted.sort_by_key(|k| k[2..].parse::<u32>().unwrap());
    assert_eq!(sorted, keys(100..110), "the committed later write's calls");
    seen.extend(calls);
    assert!(!first.is_finished(), "the first write is still open");

    // Released: the first write commits after the page that passed the second.
    lock.rollback().await.unwrap();
    assert_eq!(first.await.unwrap(), 200);
    let (calls, cursor) = page(&app, &t.report, &[("cursor", &cursor)]).await;
    seen.extend(calls);
    let (calls, _) = page(&app, &t.report, &[("cursor", &cursor)]).await;
    assert_eq!(calls, Vec::<String>::new(), "the walk has caught up");
    assert_exactly_once(&seen, 61);
    assert_eq!(seen.last().unwrap(), "p-200");
}
