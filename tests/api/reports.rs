//! Historical reports through HTTP: service users and report keys from the command line,
//! calls posted as a PBX posts them, and every report computed by hand.

mod access;
mod errors;
mod lookups;
mod summary;
mod templates;
mod timeframes;

use chrono::{DateTime, Duration, FixedOffset, NaiveDate, TimeZone, Utc};
use cidgate::domain::{TenantSlug, TokenScope, TokenScopes};
use cidgate::store;
use serde_json::{Value, json};

use crate::helpers::TestApp;

/// The tenants' time zone: UTC-06:00 all year (IANA's sign is inverted), the
/// reference's offset.
pub const ZONE: &str = "Etc/GMT+6";

pub fn minus_six() -> FixedOffset {
    FixedOffset::west_opt(6 * 3600).unwrap()
}

/// The day the calls are on: a week ago, well within retention.
pub fn day() -> NaiveDate {
    (Utc::now() - Duration::days(7))
        .with_timezone(&minus_six())
        .date_naive()
}

/// `hh:mm:ss` on `day` at -06:00.
pub fn local(day: NaiveDate, hms: &str) -> DateTime<FixedOffset> {
    let time = chrono::NaiveTime::parse_from_str(hms, "%H:%M:%S").unwrap();
    minus_six()
        .from_local_datetime(&day.and_time(time))
        .unwrap()
}

/// A tenant and its PBX token (`lookup,events`) and plain `report` token.
pub struct Tenant {
    pub pbx: String,
    pub report: String,
    pub lookup: String,
    pub sync: String,
}

pub async fn tenant(app: &TestApp, slug: &str) -> Tenant {
    let created = app.create_tenant(slug, "RO").await;
    let client = app.pool.get().await.unwrap();
    let found = store::tenants::find_by_slug(&client, &TenantSlug::parse(slug).unwrap())
        .await
        .unwrap()
        .unwrap();
    // Before the tokens the gateway will see, so none of them finds the old zone.
    store::tenants::set_setting(&client, found.id, "time_zone", &json!(ZONE))
        .await
        .unwrap();
    let (_, pbx) = store::tokens::create(
        &client,
        found.id,
        TokenScopes::parse("lookup,events").unwrap(),
        "pbx",
    )
    .await
    .unwrap();
    let (_, report) = store::tokens::create(&client, found.id, TokenScope::Report, "bi")
        .await
        .unwrap();
    for (extension, name, groups) in [("200", "Agent1", "Sales"), ("201", "Agent2", "Support")] {
        let args = ["agent", "add", "--tenant", slug, extension, "--name", name];
        cli_line(app, &[&args[..], &["--groups", groups]].concat());
    }
    Tenant {
        pbx: pbx.expose().to_owned(),
        report: report.expose().to_owned(),
        lookup: created.lookup_token,
        sync: created.sync_token,
    }
}

/// Runs the CLI, asserts success, and answers the last line of its output.
pub fn cli_line(app: &TestApp, args: &[&str]) -> String {
    let output = app.cli(args);
    assert!(
        output.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8(output.stdout).unwrap();
    stdout.lines().last().unwrap_or_default().trim().to_owned()
}

/// The events of one ended call: started (with `fields`), then pickup and hangup
/// `talk_ms` apart, or missed 20 s after the start.
pub fn call(
    id: &str,
    start: DateTime<FixedOffset>,
    talk_ms: Option<i64>,
    fields: Value,
) -> Vec<Value> {
    let at = |t: DateTime<FixedOffset>| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, false);
    let mut started = json!({"call_id": id, "event": "started", "at": at(start)});
    started
        .as_object_mut()
        .unwrap()
        .extend(fields.as_object().unwrap().clone());
    let answered = start + Duration::seconds(5);
    match talk_ms {
        Some(talk) => vec![
            started,
            json!({"call_id": id, "event": "pickup", "at": at(answered)}),
            json!({"call_id": id, "event": "hangup", "at": at(answered + Duration::milliseconds(talk))}),
        ],
        None => vec![
            started,
            json!({"call_id": id, "event": "missed", "at": at(start + Duration::seconds(20))}),
        ],
    }
}

pub async fn post_calls(app: &TestApp, pbx: &str, events: Vec<Value>) {
    for chunk in events.chunks(1_000) {
        let response = app
            .http
            .post(format!("{}/api/v1/events", app.address))
            .bearer_auth(pbx)
            .json(&chunk)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    }
}

/// The reference's request body.
pub fn request(format: &str, start: &str, end: &str, agents: &[&str], groups: &[&str]) -> Value {
    let mut parameters = vec![
        json!({"name": "Report Timeframe", "valueType": "REPORT_TIMEFRAME",
        "value": {"type": "REPORT_TIMEFRAME", "start": start, "end": end}}),
    ];
    let keys = |keys: &[&str]| keys.iter().map(|k| json!({"key": k})).collect::<Vec<_>>();
    if !agents.is_empty() {
        parameters.push(json!({"name": "Rows (Agent)", "valueType": "PBX_USERS",
            "value": {"type": "PBX_USERS", "pbxUsers": keys(agents)}}));
    }
    if !groups.is_empty() {
        parameters.push(json!({"name": "Rows (Group)", "valueType": "PBX_GROUPS",
            "value": {"type": "PBX_GROUPS", "pbxGroups": keys(groups)}}));
    }
    json!({"format": format, "parameters": parameters})
}

pub async fn post_report(
    app: &TestApp,
    key: &str,
    report: &str,
    body: &Value,
) -> reqwest::Response {
    app.http
        .post(format!(
            "{}/rest/api/v1/historic-data/{report}",
            app.address
        ))
        .bearer_auth(key)
        .json(body)
        .send()
        .await
        .unwrap()
}

/// A report's JSON, asserting a 200.
pub async fn report_json(app: &TestApp, key: &str, report: &str, body: &Value) -> Value {
    let response = post_report(app, key, report, body).await;
    let status = response.status();
    let text = response.text().await.unwrap();
    assert_eq!(status, 200, "{text}");
    serde_json::from_str(&text).unwrap()
}

/// A service user's key, and a report of `template` enabled for it.
pub fn service_user(
    app: &TestApp,
    tenant: &str,
    name: &str,
    limits: &[&str],
    template: &str,
) -> (String, String) {
    let args = ["service-user", "create", "--tenant", tenant, name];
    let key = cli_line(app, &[&args[..], limits].concat());
    let report = cli_line(
        app,
        &[
            "report",
            "enable",
            "--tenant",
            tenant,
            "--template",
            template,
            "--service-user",
            name,
        ],
    );
    (key, report)
}

/// The reference's example: 4 inbound, 6 outbound and 4 internal calls of Agent1(200),
/// 7 of them answered with 12673424 ms of talk; calls of another agent, and of 200 just
/// outside the day.
pub fn reference_calls(d: NaiveDate) -> Vec<Value> {
    let talk = [
        ("inbound", Some(1_800_000)),
        ("inbound", Some(1_800_000)),
        ("inbound", None),
        ("inbound", None),
        ("outbound", Some(1_800_000)),
        ("outbound", Some(1_800_000)),
        ("outbound", Some(1_800_000)),
        ("outbound", None),
        ("outbound", None),
        ("outbound", None),
        ("internal", Some(1_800_000)),
        ("internal", Some(1_873_424)),
        ("internal", None),
        ("internal", None),
    ];
    let mut events = Vec::new();
    for (i, (direction, talk)) in talk.into_iter().enumerate() {
        // The PBX names the agent either way.
        let agent = if i % 2 == 0 { "Agent1(200)" } else { "200" };
        let start = local(d, "09:00:00") + Duration::minutes(20 * i as i64);
        let fields = json!({"direction": direction, "agent": agent, "caller": "0721000001"});
        events.extend(call(&format!("ref-{i}"), start, talk, fields));
    }
    let other = json!({"direction": "inbound", "agent": "Agent2(201)"});
    events.extend(call("other-1", local(d, "10:00:00"), Some(600_000), other));
    let before = json!({"direction": "inbound", "agent": "200"});
    let the_day_before = local(d, "23:59:59") - Duration::days(1);
    events.extend(call("before", the_day_before, Some(1_000), before));
    let after = json!({"direction": "outbound", "agent": "200"});
    events.extend(call(
        "after",
        local(d, "00:00:00") + Duration::days(1),
        Some(1_000),
        after,
    ));
    events
}

pub fn day_bounds(d: NaiveDate) -> (String, String) {
    (
        format!("{d}T00:00:00.000-06:00"),
        format!("{d}T23:59:59.000-06:00"),
    )
}

/// Each row's values as people read them (the formatted value, else the value).
pub fn rows(report: &Value) -> Vec<Vec<String>> {
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

pub fn summary(report: &Value) -> Vec<(String, String)> {
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

pub fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect()
}

pub fn table(rows: &[&[&str]]) -> Vec<Vec<String>> {
    rows.iter()
        .map(|r| r.iter().map(|c| (*c).to_owned()).collect())
        .collect()
}

pub async fn run(
    app: &TestApp,
    template: &str,
    name: &str,
    limits: &[&str],
    body: &Value,
) -> Value {
    let (key, report) = service_user(app, "acme", name, limits, template);
    report_json(app, &key, &report, body).await
}
