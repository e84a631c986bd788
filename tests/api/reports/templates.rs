//! Every template against figures computed by hand, and the edges of a timeframe.

use chrono::{Duration, NaiveDate};
use cidgate::store;
use serde_json::{Value, json};

use super::{
    call, day, local, post_calls, post_report, report_json, request, service_user, tenant,
};
use crate::helpers::{PROPAGATION, TestApp, eventually, spawn_app, spawn_app_with};

/// Six calls on `d` (times at -06:00):
///
/// | call | start | direction | DNIS | agent | group | codes | outcome |
/// | c1 | 09:00 | Inbound | 0210000001 | Agent1(200) | Sales | ACME | talk 60 s |
/// | c2 | 09:10 | Inbound | 0210000001 | 201 | Sales | | missed |
/// | c3 | 09:20 | Inbound | 0210000002 | Agent2(201) | Support | ACME, BETA | talk 120 s |
/// | c4 | 09:30 | Outbound | 0210000009 | Agent1(200) | Sales | BETA | talk 30 s |
/// | c5 | 09:40 | Inbound | 0210000002 | | Support | | missed |
/// | c6 | 09:50 | Internal | | 200 | | | talk 10 s |
///
/// Answered calls ring 5 s (duration = talk + 5 s); missed ones end after 20 s.
fn six_calls(d: NaiveDate) -> Vec<Value> {
    let calls = [
        (
            "c1",
            "09:00:00",
            Some(60_000),
            json!({"direction": "inbound", "dnis": "0210000001", "agent": "Agent1(200)", "group": "Sales", "account_codes": ["ACME"]}),
        ),
        (
            "c2",
            "09:10:00",
            None,
            json!({"direction": "inbound", "dnis": "0210000001", "agent": "201", "group": "Sales"}),
        ),
        (
            "c3",
            "09:20:00",
            Some(120_000),
            json!({"direction": "inbound", "dnis": "0210000002", "agent": "Agent2(201)", "group": "Support", "account_codes": "ACME,BETA"}),
        ),
        (
            "c4",
            "09:30:00",
            Some(30_000),
            json!({"direction": "outbound", "dnis": "0210000009", "agent": "Agent1(200)", "group": "Sales", "account_codes": ["BETA"], "external_number": "0721000004"}),
        ),
        (
            "c5",
            "09:40:00",
            None,
            json!({"direction": "inbound", "dnis": "0210000002", "group": "Support"}),
        ),
        (
            "c6",
            "09:50:00",
            Some(10_000),
            json!({"direction": "internal", "agent": "200"}),
        ),
    ];
    calls
        .into_iter()
        .flat_map(|(id, at, talk, fields)| call(id, local(d, at), talk, fields))
        .collect()
}

/// Each row's values as people read them (the formatted value, else the value).
fn rows(report: &Value) -> Vec<Vec<String>> {
    report["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            let values = row["values"].as_object().unwrap();
            (0..values.len())
                .map(|k| {
                    let cell = &values[&k.to_string()];
                    match (&cell["formattedValue"], &cell["value"]) {
                        (Value::String(f), _) => f.clone(),
                        (_, Value::String(v)) => v.clone(),
                        (_, v) => v.to_string(),
                    }
                })
                .collect()
        })
        .collect()
}

fn summary(report: &Value) -> Vec<(String, String)> {
    report["summaryItems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["title"].as_str().unwrap().to_owned(),
                i["formattedValue"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect()
}

fn table(rows: &[&[&str]]) -> Vec<Vec<String>> {
    rows.iter()
        .map(|r| r.iter().map(|c| (*c).to_owned()).collect())
        .collect()
}

async fn run(app: &TestApp, template: &str, name: &str, limits: &[&str], body: &Value) -> Value {
    let (key, report) = service_user(app, "acme", name, limits, template);
    report_json(app, &key, &report, body).await
}

#[tokio::test]
async fn every_template_counts_the_calls_as_computed_by_hand() {
    let app = spawn_app().await;
    let t = tenant(&app, "acme").await;
    let d = day();
    post_calls(&app, &t.pbx, six_calls(d)).await;
    let whole_day = request(
        "json",
        &format!("{d}T00:00:00-06:00"),
        &format!("{d}T23:59:59-06:00"),
        &[],
        &[],
    );

    let dnis = run(&app, "calls-by-dnis", "dnis", &[], &whole_day).await;
    assert_eq!(dnis["title"], "Calls by DNIS");
    assert_eq!(
        rows(&dnis),
        table(&[
            &["0210000001", "2", "1", "1", "0:01:00", "0:01:00"],
            &["0210000002", "2", "1", "1", "0:02:00", "0:02:00"],
        ])
    );
    assert_eq!(
        summary(&dnis),
        pairs(&[
            ("DNIS", "2"),
            ("Total Inbound Calls", "4"),
            ("Total Answered Calls", "2"),
            ("Total Missed Calls", "2"),
            ("Total Talking", "0:03:00"),
            ("Avg Talking", "0:01:30")
        ])
    );

    let groups = run(&app, "missed-calls-by-group", "groups", &[], &whole_day).await;
    assert_eq!(
        rows(&groups),
        table(&[
            &["Sales", "3", "2", "1", "33.3%"],
            &["Support", "2", "1", "1", "50.0%"],
        ])
    );
    assert_eq!(groups["rows"][0]["values"]["4"]["value"], json!(0.3333));
    assert_eq!(
        summary(&groups),
        pairs(&[
            ("Groups", "2"),
            ("Total Calls", "5"),
            ("Total Missed Calls", "2"),
            ("Missed Share", "40.0%")
        ])
    );

    let codes = run(&app, "account-code-usage", "billing", &[], &whole_day).await;
    assert_eq!(
        rows(&codes),
        table(&[
            &["ACME", "2", "2", "0:03:10", "0:03:00", "0:01:30"],
            &["BETA", "2", "2", "0:02:40", "0:02:30", "0:01:15"],
        ])
    );
    assert_eq!(
        summary(&codes),
        pairs(&[
            ("Account Codes", "2"),
            ("Total Calls", "4"),
            ("Total Duration", "0:05:50"),
            ("Total Talking", "0:05:30")
        ])
    );

    let detail = run(&app, "call-detail", "ledger", &[], &whole_day).await;
    let lines = rows(&detail);
    assert_eq!(lines.len(), 6);
    // Start times in the tenant's zone; the value itself in UTC.
    assert_eq!(lines[0][2], format!("{d} 09:00:00"));
    assert_eq!(
        detail["rows"][0]["values"]["2"]["value"],
        local(d, "09:00:00")
            .to_utc()
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    );
    assert_eq!(
        &lines[3][3..],
        [
            "Outbound",
            "Agent1(200)",
            "Sales",
            "",
            "",
            "0210000009",
            "0721000004",
            "BETA",
            "answered",
            "0:00:35",
            "0:00:30"
        ]
    );
    assert_eq!(&lines[1][11..], ["missed", "0:00:20", "0:00:00"]);
    assert_eq!(lines[2][10], "ACME,BETA");
    assert_eq!(
        summary(&detail),
        pairs(&[
            ("Calls", "6"),
            ("Answered Calls", "4"),
            ("Missed Calls", "2"),
            ("Total Duration", "0:04:40"),
            ("Total Talking", "0:03:40")
        ])
    );

    let agents = run(&app, "agent-talking-summary", "agents", &[], &whole_day).await;
    assert_eq!(
        rows(&agents),
        table(&[
            &["Agent1(200)", "1", "1", "1", "3", "0:01:40", "0:00:33"],
            &["Agent2(201)", "2", "0", "0", "2", "0:02:00", "0:02:00"],
        ])
    );

    // Limited to agent 200: only its calls count; rows narrow further.
    let own = run(
        &app,
        "calls-by-dnis",
        "own",
        &["--agents", "200"],
        &whole_day,
    )
    .await;
    assert_eq!(
        rows(&own),
        table(&[&["0210000001", "1", "1", "0", "0:01:00", "0:01:00"]])
    );
    let support = request(
        "json",
        &format!("{d}T00:00:00-06:00"),
        &format!("{d}T23:59:59-06:00"),
        &[],
        &["Support", "Nobody"],
    );
    let groups = run(&app, "missed-calls-by-group", "support", &[], &support).await;
    assert_eq!(
        rows(&groups),
        table(&[
            &["Nobody", "0", "0", "0", "0.0%"],
            &["Support", "2", "1", "1", "50.0%"]
        ])
    );
}

#[tokio::test]
async fn timeframes_are_read_with_their_offsets_to_the_second() {
    let app = spawn_app().await;
    let t = tenant(&app, "acme").await;
    let d = day();
    let next = d + Duration::days(1);
    let mut events = six_calls(d);
    // At the very end of the local day, and the first second of the next.
    events.extend(call(
        "late",
        local(d, "23:59:59"),
        Some(1_000),
        json!({"direction": "inbound", "agent": "200"}),
    ));
    events.extend(call(
        "early",
        local(next, "00:00:00"),
        Some(1_000),
        json!({"direction": "outbound", "agent": "200"}),
    ));
    post_calls(&app, &t.pbx, events).await;
    let (key, report) = service_user(&app, "acme", "bi", &[], "agent-talking-summary");
    let agent_200 = async |start: String, end: String| {
        let answer = report_json(
            &app,
            &key,
            &report,
            &request("json", &start, &end, &["200"], &[]),
        )
        .await;
        rows(&answer)[0][1..5].to_vec()
    };
    // in, out, internal, total
    let counts = |a: &str, b: &str, c: &str, t: &str| {
        vec![a.to_owned(), b.to_owned(), c.to_owned(), t.to_owned()]
    };
    // The local day: its last second counts, the next day's first does not.
    assert_eq!(
        agent_200(
            format!("{d}T00:00:00.000-06:00"),
            format!("{d}T23:59:59.000-06:00")
        )
        .await,
        counts("2", "1", "1", "4")
    );
    assert_eq!(
        agent_200(
            format!("{next}T00:00:00-06:00"),
            format!("{next}T23:59:59-06:00")
        )
        .await,
        counts("0", "1", "0", "1")
    );
    // The same instants written in another offset.
    assert_eq!(
        agent_200(
            format!("{d}T11:30:00+05:30"),
            format!("{next}T11:29:59+05:30")
        )
        .await,
        counts("2", "1", "1", "4")
    );
    // The UTC day of `d` ends at 18:00 local: the late call is on the next UTC day.
    assert_eq!(
        agent_200(format!("{d}T00:00:00Z"), format!("{d}T23:59:59Z")).await,
        counts("1", "1", "1", "3")
    );
    // Partial hours at both ends (read from the calls, not the hourly figures).
    assert_eq!(
        agent_200(
            format!("{d}T23:30:00-06:00"),
            format!("{next}T00:30:00-06:00")
        )
        .await,
        counts("1", "1", "0", "2")
    );
    assert_eq!(
        agent_200(format!("{d}T08:59:59-06:00"), format!("{d}T09:49:59-06:00")).await,
        counts("1", "1", "0", "2")
    );
    assert_eq!(
        agent_200(
            format!("{d}T09:00:01-06:00"),
            format!("{next}T00:30:00-06:00")
        )
        .await,
        counts("1", "2", "1", "4")
    );
    // One second, exactly.
    assert_eq!(
        agent_200(format!("{d}T23:59:59-06:00"), format!("{d}T23:59:59-06:00")).await,
        counts("1", "0", "0", "1")
    );
}

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
    for (at, outcome) in [
        (local(d, "23:59:59"), "degraded"),
        (local(d, "00:00:00"), "found"),
        (local(d, "00:00:00") - Duration::seconds(1), "unknown"),
    ] {
        client
            .execute(
                "INSERT INTO lookup_log (tenant_id, at, number, outcome, latency_us) VALUES ($1, $2, '+40700000009', $3, 1000)",
                &[&acme.id.0, &at, &outcome],
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
        summary(&answer)[1].1 == "5"
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
            "2".into(),
            "1".into(),
            "0".into(),
            "1".into(),
            "50.0%".into()
        ]
    );
    assert_eq!(days[1][1], "0");
    assert_eq!(days.last().unwrap()[1..], ["3", "1", "2", "0", "33.3%"]);
    assert_eq!(
        summary(&answer),
        pairs(&[
            ("Days", &days.len().to_string()),
            ("Total Lookups", "5"),
            ("Total Identified", "2"),
            ("Total Unknown", "2"),
            ("Total Degraded", "1"),
            ("Identified Share", "40.0%")
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
