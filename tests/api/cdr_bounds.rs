//! The CDR API's dates: bounded, readable, and a query that finds nothing reads only the
//! partitions and index range of its dates.

use chrono::{Datelike, Duration, Utc};
use cidgate::domain::CdrFilter;
use cidgate::domain::TenantSlug;
use cidgate::store;
use serde_json::{Value, json};

use crate::calls::{call_tenant, named_fields};
use crate::helpers::spawn_app;

async fn cdr_status(
    app: &crate::helpers::TestApp,
    token: &str,
    query: &[(&str, &str)],
) -> (u16, Vec<String>) {
    let response = app
        .http
        .get(format!("{}/api/v1/reportsCDRLogs", app.address))
        .bearer_auth(token)
        .query(query)
        .send()
        .await
        .expect("the gateway answers (no worker panicked)");
    let status = response.status().as_u16();
    let fields = if status == 200 {
        Vec::new()
    } else {
        named_fields(response).await
    };
    (status, fields)
}

#[tokio::test]
async fn dates_far_away_unreadable_or_a_range_over_a_year_answer_400_naming_the_parameter() {
    let app = spawn_app().await;
    let t = call_tenant(&app, "acme").await;
    let cases: [(&str, &str, &str); 6] = [
        // Once panicked a worker: the connection dropped with no answer.
        ("-262143-01-01", "2026-12-01", "startdate"),
        ("2026-11-01", "+262142-12-31", "finishdate"),
        ("1900-01-01", "1900-01-02", "startdate"),
        ("2026-13-45", "2026-12-01", "startdate"),
        ("2025-01-01", "2026-06-01", "finishdate"),
        ("2026-12-01", "2026-11-30", "finishdate"),
    ];
    for (start, finish, field) in cases {
        let (status, fields) = cdr_status(
            &app,
            &t.report,
            &[("startdate", start), ("finishdate", finish)],
        )
        .await;
        assert_eq!(status, 400, "{start}..{finish}");
        assert!(
            fields.contains(&field.to_owned()),
            "{start}..{finish}: {fields:?}"
        );
    }
    // A whole leap year is one query.
    let (status, _) = cdr_status(
        &app,
        &t.report,
        &[("startdate", "2028-01-01"), ("finishdate", "2028-12-31")],
    )
    .await;
    assert_eq!(status, 200);
    // A forged cursor may not carry what a first request may not ask.
    let forged = serde_json::to_vec(&json!({
        "position": {"ByStart": {"watermark": 0, "after": null}},
        "filter": {"from": "1800-01-01T00:00:00Z", "to": "1800-02-01T00:00:00Z",
                   "direction": null, "agent": null, "number": null, "outcome": null,
                   "agents": null}
    }))
    .unwrap();
    use base64::Engine;
    let forged = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(forged);
    let (status, fields) = cdr_status(&app, &t.report, &[("cursor", &forged)]).await;
    assert_eq!((status, fields), (400, vec!["cursor".to_owned()]));
}

#[tokio::test]
async fn a_filter_that_matches_nothing_reads_only_the_months_of_its_range() {
    let app = spawn_app().await;
    let t = call_tenant(&app, "acme").await;
    let other = call_tenant(&app, "globex").await;
    let now = Utc::now();
    let old = now - Duration::days(300);
    let call = |id: &str, at: chrono::DateTime<Utc>| -> Value {
        json!([
            {"call_id": id, "event": "pickup", "at": at.to_rfc3339(), "agent": "Ana(200)"},
            {"call_id": id, "event": "hangup", "at": (at + Duration::seconds(60)).to_rfc3339()},
        ])
    };
    for (token, id, at) in [
        (&t.pbx, "old", old),
        (&t.pbx, "new", now - Duration::minutes(5)),
        (&other.pbx, "theirs", now - Duration::minutes(5)),
    ] {
        assert_eq!(app.post_events(token, &call(id, at)).await.status(), 200);
    }
    let today = now.date_naive().to_string();
    let (status, _) = cdr_status(
        &app,
        &t.report,
        &[
            ("startdate", &today),
            ("finishdate", &today),
            ("agent", "999"),
        ],
    )
    .await;
    assert_eq!(status, 200);

    let client = app.pool.get().await.unwrap();
    let tenant = store::tenants::find_by_slug(&client, &TenantSlug::parse("acme").unwrap())
        .await
        .unwrap()
        .unwrap();
    let filter = CdrFilter {
        from: now - Duration::hours(1),
        to: now,
        agent: Some("999".into()),
        ..CdrFilter::default()
    };
    let plan = store::cdr::explain_first_page(&client, tenant.id, &filter, 100)
        .await
        .unwrap();
    let old_partition = format!("calls_y{:04}m{:02}", old.year(), old.month());
    let this_partition = format!("calls_y{:04}m{:02}", now.year(), now.month());
    assert!(!plan.contains(&old_partition), "{plan}");
    assert!(plan.contains(&this_partition), "{plan}");
}
