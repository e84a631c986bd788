//! The reference's example, Agent Talking Summary, by hand, in JSON, CSV and HTML.

use serde_json::{Value, json};

use super::{
    day, day_bounds, post_calls, post_report, reference_calls, report_json, request, service_user,
    tenant,
};
use crate::helpers::spawn_app;

#[tokio::test]
async fn the_agent_talking_summary_answers_the_reference_example_in_all_three_formats() {
    let app = spawn_app().await;
    let t = tenant(&app, "acme").await;
    let d = day();
    post_calls(&app, &t.pbx, reference_calls(d)).await;
    let (key, report) = service_user(&app, "acme", "payroll", &[], "agent-talking-summary");
    let (start, end) = day_bounds(d);
    let body = request("json", &start, &end, &["Agent1(200)"], &[]);

    let mut answer = report_json(&app, &key, &report, &body).await;
    let again = report_json(&app, &key, &report, &body).await;
    let execution = answer["executionId"].as_str().unwrap().to_owned();
    assert!(uuid::Uuid::parse_str(&execution).is_ok());
    assert_ne!(
        again["executionId"], answer["executionId"],
        "a new id each run"
    );
    answer["executionId"] = Value::Null;
    let n = |v: i64| json!({"value": v, "formattedValue": v.to_string()});
    let item = |title: &str, value: Value, formatted: &str| json!({"title": title, "value": value, "formattedValue": formatted, "format": "NUMBER"});
    let column = |key: &str, title: &str, format: &str| json!({"key": key, "title": title, "format": format});
    let expected = json!({
        "reportId": 1,
        "executionId": null,
        "title": "Agent Talking Summary",
        "timeframe": {"type": "REPORT_TIMEFRAME",
                      "start": format!("{d}T00:00:00-06:00"), "end": format!("{d}T23:59:59-06:00")},
        "skin": "cidgate",
        "columns": [column("0", "Agent", "STRING"), column("1", "Inbound Calls", "NUMBER"),
                    column("2", "Outbound Calls", "NUMBER"), column("3", "Internal Calls", "NUMBER"),
                    column("4", "Total Calls", "NUMBER"), column("5", "Total Talking", "DURATION"),
                    column("6", "Avg Talking", "DURATION")],
        "dataFlag": "INCLUDED",
        "summaryItems": [
            item("Agents", json!(1), "1"),
            item("Total Inbound Calls", json!(4), "4"),
            item("Total Outbound Calls", json!(6), "6"),
            item("Total Internal Calls", json!(4), "4"),
            item("Total Calls", json!(14), "14"),
            item("Avg Total Calls", json!(14.0), "14.0"),
            item("Total Talking", json!(12_673_424), "3:31:13"),
            item("Avg Talking", json!(1_810_489), "0:30:10"),
        ],
        "rows": [{"values": {
            "0": {"value": "Agent1(200)"}, "1": n(4), "2": n(6), "3": n(4), "4": n(14),
            "5": {"value": 12_673_424, "formattedValue": "3:31:13"},
            "6": {"value": 1_810_489, "formattedValue": "0:30:10"}}}],
        "charts": {"type": "CHARTS", "rows": []}
    });
    assert_eq!(answer, expected);

    // The same report without rows: every agent, by extension, named from `agent add`.
    let all = report_json(
        &app,
        &key,
        &report,
        &request("json", &start, &end, &[], &[]),
    )
    .await;
    let agents: Vec<&Value> = all["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| &r["values"]["0"]["value"])
        .collect();
    assert_eq!(agents, [&json!("Agent1(200)"), &json!("Agent2(201)")]);
    assert_eq!(all["rows"][1]["values"]["5"]["formattedValue"], "0:10:00");
    assert_eq!(all["summaryItems"][4]["value"], 15);
    assert_eq!(all["summaryItems"][5]["formattedValue"], "7.5");

    let csv = post_report(
        &app,
        &key,
        &report,
        &request("csv", &start, &end, &["200"], &[]),
    )
    .await;
    assert_eq!(csv.status(), 200);
    assert_eq!(csv.headers()["content-type"], "text/csv; charset=utf-8");
    assert_eq!(
        csv.text().await.unwrap(),
        "Agent,Inbound Calls,Outbound Calls,Internal Calls,Total Calls,Total Talking,Avg Talking\n\
         Agent1(200),4,6,4,14,3:31:13,0:30:10\n\
         \n\
         Agents,1\nTotal Inbound Calls,4\nTotal Outbound Calls,6\nTotal Internal Calls,4\n\
         Total Calls,14\nAvg Total Calls,14.0\nTotal Talking,3:31:13\nAvg Talking,0:30:10\n"
    );

    let html = post_report(
        &app,
        &key,
        &report,
        &request("html", &start, &end, &["Agent1(200)"], &[]),
    )
    .await;
    assert_eq!(html.status(), 200);
    assert_eq!(html.headers()["content-type"], "text/html; charset=utf-8");
    let csp = html.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.starts_with("default-src 'none'; style-src 'self'"),
        "{csp}"
    );
    assert!(csp.ends_with("frame-ancestors 'none'"), "{csp}");
    assert_eq!(html.headers()["x-frame-options"], "DENY");
    let page = html.text().await.unwrap();
    for shown in [
        "Agent Talking Summary",
        "Agent1(200)",
        "3:31:13",
        "0:30:10",
        "14.0",
    ] {
        assert!(page.contains(shown), "{shown} in {page}");
    }
    assert!(!page.contains("<script"));
}
