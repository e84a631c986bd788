//! Every template against figures computed by hand.

use chrono::NaiveDate;
use serde_json::{Value, json};

use super::{call, day, local, pairs, post_calls, request, rows, run, summary, table, tenant};
use crate::helpers::spawn_app;

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
pub fn six_calls(d: NaiveDate) -> Vec<Value> {
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

    // Over three days the same, from the daily figures.
    let (before, after) = (d - chrono::Duration::days(1), d + chrono::Duration::days(1));
    let three_days = request(
        "json",
        &format!("{before}T00:00:00-06:00"),
        &format!("{after}T23:59:59-06:00"),
        &[],
        &[],
    );
    let over_three = run(&app, "account-code-usage", "billing3", &[], &three_days).await;
    assert_eq!(rows(&over_three), rows(&codes));

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
            // The other party's number on an outbound call too (issue 27).
            "+40721000004",
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
