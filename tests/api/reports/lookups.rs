//! Caller identification: lookups per day in the tenant's time zone.

use chrono::Duration;
use cidgate::store;
use serde_json::json;

use super::{
    day, local, pairs, post_report, report_json, request, rows, service_user, summary, tenant,
};
use crate::helpers::{PROPAGATION, eventually, spawn_app_with};

#[tokio::test]
async fn caller_identification_counts_lookups_per_local_day() {
    // A deadline no busy machine misses: each lookup is found or unknown, never degraded.
    let app = spawn_app_with(|s| s.lookup_deadline_ms = 10_000).await;
    let t = tenant(&app, "acme").await;
    let put = app
        .put_contact(
            &t.sync,
            "42",
            &json!({"name": "Ion Popescu", "phones": ["+40721234567"]}),
        )
        .await;
    assert!(put.status().is_success());
    // Today: one identified, two unknown, through the PBX lookup.
    for number in ["0721234567", "0700000001", "anonymous"] {
        assert_eq!(app.lookup(&t.lookup, number).await.status(), 200);
    }
    // Earlier days: degraded answers and the edge of a local day, written as the
    // lookup log's writer would.
    let d = day();
    let client = app.pool.get().await.unwrap();
    let acme = store::tenants::list(&client)
        .await
        .unwrap()
        .into_iter()
        .find(|t| t.slug == "acme")
        .unwrap();
    // One of them screened (a flagged number: docs/trust.md).
    for (at, outcome, screened) in [
        (local(d, "23:59:59"), "degraded", None),
        (local(d, "00:00:00"), "found", None),
        (local(d, "12:00:00"), "unknown", Some("spam_list")),
        (local(d, "00:00:00") - Duration::seconds(1), "unknown", None),
    ] {
        client
            .execute(
                "INSERT INTO lookup_log (tenant_id, at, number, outcome, latency_us, screened)
                 VALUES ($1, $2, '+40700000009', $3, 1000, $4)",
                &[&acme.id.0, &at, &outcome, &screened],
            )
            .await
            .unwrap();
    }
    let (key, report) = service_user(&app, "acme", "quality", &[], "caller-identification");
    let today = chrono::Utc::now()
        .with_timezone(&super::minus_six())
        .date_naive();
    let whole = request(
        "json",
        &format!("{d}T00:00:00-06:00"),
        &format!("{today}T23:59:59-06:00"),
        &[],
        &[],
    );
    eventually(PROPAGATION, "today's lookups are logged", || async {
        let answer = report_json(&app, &key, &report, &whole).await;
        summary(&answer)[1].1 == "6"
    })
    .await;
    let answer = report_json(&app, &key, &report, &whole).await;
    let days = rows(&answer);
    assert_eq!(
        days.len() as i64,
        (today - d).num_days() + 1,
        "every day has a row"
    );
    assert_eq!(
        days[0],
        [
            d.to_string(),
            "3".into(),
            "1".into(),
            "1".into(),
            "1".into(),
            "33.3%".into(),
            "1".into()
        ]
    );
    assert_eq!(days[1][1], "0");
    assert_eq!(
        days.last().unwrap()[1..],
        ["3", "1", "2", "0", "33.3%", "0"]
    );
    assert_eq!(
        summary(&answer),
        pairs(&[
            ("Days", &days.len().to_string()),
            ("Total Lookups", "6"),
            ("Total Identified", "2"),
            ("Total Unknown", "3"),
            ("Total Degraded", "1"),
            ("Identified Share", "33.3%"),
            ("Total Screened", "1")
        ])
    );
    // It has a row per day, so it takes no rows.
    let with_rows = request(
        "json",
        &format!("{d}T00:00:00-06:00"),
        &format!("{d}T23:59:59-06:00"),
        &["200"],
        &[],
    );
    assert_eq!(
        post_report(&app, &key, &report, &with_rows).await.status(),
        400
    );
}
