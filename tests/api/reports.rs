//! Historical reports through HTTP: service users and report keys from the command line,
//! calls posted as a PBX posts them, and the reference's report computed by hand.

mod templates;

use chrono::{DateTime, Duration, FixedOffset, NaiveDate, TimeZone, Utc};
use cidgate::domain::{TenantSlug, TokenScope, TokenScopes};
use cidgate::store;
use serde_json::{Value, json};

use crate::helpers::{PROPAGATION, TestApp, eventually, spawn_app};

/// The tenants' time zone: UTC-06:00 all year (IANA's sign is inverted), the
/// reference's offset.
const ZONE: &str = "Etc/GMT+6";

fn minus_six() -> FixedOffset {
    FixedOffset::west_opt(6 * 3600).unwrap()
}

/// The day the calls are on: a week ago, well within retention.
fn day() -> NaiveDate {
    (Utc::now() - Duration::days(7))
        .with_timezone(&minus_six())
        .date_naive()
}

/// `hh:mm:ss` on `day` at -06:00.
fn local(day: NaiveDate, hms: &str) -> DateTime<FixedOffset> {
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
fn reference_calls(d: NaiveDate) -> Vec<Value> {
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

fn day_bounds(d: NaiveDate) -> (String, String) {
    (
        format!("{d}T00:00:00.000-06:00"),
        format!("{d}T23:59:59.000-06:00"),
    )
}

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

#[tokio::test]
async fn a_service_user_sees_only_its_agents_in_reports_and_in_the_cdr_api() {
    let app = spawn_app().await;
    let t = tenant(&app, "acme").await;
    let d = day();
    post_calls(&app, &t.pbx, reference_calls(d)).await;
    let (key, report) = service_user(
        &app,
        "acme",
        "payroll",
        &["--agents", "200"],
        "agent-talking-summary",
    );
    let (start, end) = day_bounds(d);

    let refused = post_report(
        &app,
        &key,
        &report,
        &request("json", &start, &end, &["Agent2(201)"], &[]),
    )
    .await;
    assert_eq!(refused.status(), 403);
    let error: Value = refused.json().await.unwrap();
    assert!(
        error["message"].as_str().unwrap().contains("Agent2(201)"),
        "{error}"
    );
    let refused = post_report(
        &app,
        &key,
        &report,
        &request("json", &start, &end, &[], &["Support"]),
    )
    .await;
    assert_eq!(refused.status(), 403);
    // Without rows: its agents only.
    let own = report_json(
        &app,
        &key,
        &report,
        &request("json", &start, &end, &[], &[]),
    )
    .await;
    assert_eq!(own["rows"].as_array().unwrap().len(), 1);
    assert_eq!(own["rows"][0]["values"]["0"]["value"], "Agent1(200)");

    // The CDR API: a service user's key sees its agents' calls, also through a cursor
    // another key was given, and no other agent's call by its key.
    let cdr = |token: &str, query: Vec<(&'static str, String)>| {
        let request = app
            .http
            .get(format!("{}/api/v1/reportsCDRLogs", app.address))
            .bearer_auth(token)
            .query(&query);
        async move {
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), 200);
            response.json::<Value>().await.unwrap()
        }
    };
    let range = vec![
        ("startdate", d.to_string()),
        ("finishdate", d.to_string()),
        ("limit", "5".to_owned()),
    ];
    let agents_of = |page: &Value| -> Vec<String> {
        let calls = page["CallList"].as_array().unwrap();
        calls
            .iter()
            .map(|c| c["agent"].as_str().unwrap().to_owned())
            .collect()
    };
    let walk = async |first: Value| {
        let mut agents = agents_of(&first);
        let mut cursor = first["cursor"].as_str().unwrap().to_owned();
        loop {
            let next = cdr(&key, vec![("cursor", cursor.clone())]).await;
            if next["CallList"].as_array().unwrap().is_empty() {
                return agents;
            }
            agents.extend(agents_of(&next));
            cursor = next["cursor"].as_str().unwrap().to_owned();
        }
    };
    let own = walk(cdr(&key, range.clone()).await).await;
    assert_eq!(own.len(), 14, "{own:?}");
    assert!(
        own.iter().all(|a| a == "200" || a == "Agent1(200)"),
        "{own:?}"
    );
    // From a cursor the tenant's own report token was given: still only agent 200.
    let everyone = cdr(&t.report, range).await;
    assert_eq!(everyone["CallList"].as_array().unwrap().len(), 5);
    let rest = walk(json!({"CallList": [], "cursor": everyone["cursor"]})).await;
    assert!(
        !rest.is_empty() && rest.iter().all(|a| a != "Agent2(201)"),
        "{rest:?}"
    );
    assert!(
        cdr(&key, vec![("activecallkey", "other-1".to_owned())]).await["CallList"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        cdr(&key, vec![("activecallkey", "ref-0".to_owned())]).await["CallList"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        cdr(&t.report, vec![("activecallkey", "other-1".to_owned())]).await["CallList"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // By group: Sales is Agent1's.
    let (sales, sales_report) = service_user(
        &app,
        "acme",
        "sales",
        &["--groups", "Sales"],
        "agent-talking-summary",
    );
    let own = report_json(
        &app,
        &sales,
        &sales_report,
        &request("json", &start, &end, &[], &["Sales"]),
    )
    .await;
    assert_eq!(own["rows"][0]["values"]["0"]["value"], "Agent1(200)");
    assert_eq!(own["rows"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn bad_requests_are_refused_with_the_reference_status_codes() {
    let app = spawn_app().await;
    let t = tenant(&app, "acme").await;
    let other = tenant(&app, "beta").await;
    let (key, report) = service_user(
        &app,
        "acme",
        "payroll",
        &["--agents", "200"],
        "agent-talking-summary",
    );
    let (beta_key, beta_report) =
        service_user(&app, "beta", "payroll", &[], "agent-talking-summary");
    let (start, end) = day_bounds(day());
    let good = request("json", &start, &end, &["200"], &[]);
    assert_eq!(post_report(&app, &key, &report, &good).await.status(), 200);

    let message = |response: reqwest::Response| async move {
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap();
        (status, body["message"].as_str().unwrap().to_owned())
    };
    let malformed = app
        .http
        .post(format!(
            "{}/rest/api/v1/historic-data/{report}",
            app.address
        ))
        .bearer_auth(&key)
        .header("content-type", "application/json")
        .body(r#"{"format": "json", "parameters": ["#)
        .send()
        .await
        .unwrap();
    let (status, text) = message(malformed).await;
    assert_eq!(
        (status, text.contains("not valid JSON")),
        (400, true),
        "{text}"
    );
    let mut cases: Vec<(Value, &str)> = Vec::new();
    let mut unknown = good.clone();
    unknown["parameters"][0]["name"] = json!("Period");
    cases.push((unknown, "unknown parameter `Period`"));
    let mut value_type = good.clone();
    value_type["parameters"][1]["valueType"] = json!("PBX_AGENTS");
    cases.push((value_type, "unknown value type `PBX_AGENTS`"));
    cases.push((request("json", &end, &start, &[], &[]), "is before start"));
    let long_ago = "2025-01-01T00:00:00.000-06:00";
    cases.push((
        request("json", long_ago, &end, &[], &[]),
        "more than 366 days",
    ));
    for (body, expected) in cases {
        let (status, text) = message(post_report(&app, &key, &report, &body).await).await;
        assert_eq!(status, 400, "{text}");
        assert!(text.contains(expected), "{expected}: {text}");
    }

    // 401: no key, a key of another scope, a wrong one.
    let url = format!("{}/rest/api/v1/historic-data/{report}", app.address);
    assert_eq!(
        app.http
            .post(&url)
            .json(&good)
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    assert_eq!(
        post_report(&app, &t.pbx, &report, &good).await.status(),
        401
    );
    assert_eq!(
        post_report(&app, "cgr_nope", &report, &good).await.status(),
        401
    );
    // 403: an agent outside the service user's access, named.
    let (status, text) = message(
        post_report(
            &app,
            &key,
            &report,
            &request("json", &start, &end, &["201"], &[]),
        )
        .await,
    )
    .await;
    assert_eq!((status, text.contains("`201`")), (403, true), "{text}");
    // 404: no such key, not a key, another tenant's report (with that tenant's key too).
    let random = uuid::Uuid::new_v4().to_string();
    for (k, r) in [
        (&key, random.as_str()),
        (&key, "nope"),
        (&key, &beta_report),
        (&beta_key, &report),
    ] {
        assert_eq!(post_report(&app, k, r, &good).await.status(), 404, "{r}");
    }
    assert_eq!(
        post_report(&app, &other.report, &beta_report, &good)
            .await
            .status(),
        200
    );
    // A report of another service user of the tenant.
    let (_, audit_report) = service_user(&app, "acme", "audit", &[], "agent-talking-summary");
    assert_eq!(
        post_report(&app, &key, &audit_report, &good).await.status(),
        403
    );
}

#[tokio::test]
async fn service_users_and_reports_are_managed_from_the_command_line() {
    let app = spawn_app().await;
    let t = tenant(&app, "acme").await;
    let d = day();
    post_calls(&app, &t.pbx, reference_calls(d)).await;
    let (key, report) = service_user(
        &app,
        "acme",
        "payroll",
        &["--agents", "Agent1(200)"],
        "agent-talking-summary",
    );
    let listed = String::from_utf8(
        app.cli(&["service-user", "list", "--tenant", "acme"])
            .stdout,
    )
    .unwrap();
    assert!(
        listed.contains("payroll") && listed.contains("agents 200"),
        "{listed}"
    );
    let listed =
        String::from_utf8(app.cli(&["report", "list", "--tenant", "acme"]).stdout).unwrap();
    assert!(
        listed.contains(&report) && listed.contains("agent-talking-summary"),
        "{listed}"
    );
    let agents = String::from_utf8(app.cli(&["agent", "list", "--tenant", "acme"]).stdout).unwrap();
    assert!(
        agents.contains("Agent2(201)") && agents.contains("Support"),
        "{agents}"
    );

    // `report details` prints a request that runs as printed.
    let (start, _) = day_bounds(d);
    let shown = app.cli(&[
        "report",
        "details",
        &report,
        "--public-url",
        "https://gw.example.com",
        "--start",
        &start[..10],
    ]);
    let shown = String::from_utf8(shown.stdout).unwrap();
    let curl = shown.lines().find(|l| l.starts_with("curl ")).unwrap();
    assert!(
        curl.contains(&format!(
            "'https://gw.example.com/rest/api/v1/historic-data/{report}'"
        )),
        "{curl}"
    );
    let body: Value =
        serde_json::from_str(curl.split(" -d '").nth(1).unwrap().trim_end_matches('\'')).unwrap();
    assert_eq!(
        body["parameters"][1]["value"]["pbxUsers"],
        json!([{"key": "Agent1(200)"}])
    );
    let answer = report_json(&app, &key, &report, &body).await;
    assert_eq!(
        answer["rows"][0]["values"]["5"]["formattedValue"],
        "3:31:13"
    );

    // Rotate: the new key works, and so does the old one for the grace period.
    let rotated = cli_line(
        &app,
        &[
            "service-user",
            "rotate",
            "--tenant",
            "acme",
            "payroll",
            "--grace",
            "1h",
        ],
    );
    assert_eq!(
        post_report(&app, &rotated, &report, &body).await.status(),
        200
    );
    assert_eq!(post_report(&app, &key, &report, &body).await.status(), 200);
    // The rotated key is still limited to agent 200.
    let other = request("json", &start, &day_bounds(d).1, &["201"], &[]);
    assert_eq!(
        post_report(&app, &rotated, &report, &other).await.status(),
        403
    );
    // Revoke: both keys stop.
    cli_line(
        &app,
        &["service-user", "revoke", "--tenant", "acme", "payroll"],
    );
    for k in [&key, &rotated] {
        eventually(PROPAGATION, "a revoked key is refused", || async {
            post_report(&app, k, &report, &body).await.status() == 401
        })
        .await;
    }
    // A limited service user cannot have the tenant-wide caller identification.
    cli_line(
        &app,
        &[
            "service-user",
            "create",
            "--tenant",
            "acme",
            "sales",
            "--groups",
            "Sales",
        ],
    );
    let refused = app.cli(&[
        "report",
        "enable",
        "--tenant",
        "acme",
        "--template",
        "caller-identification",
        "--service-user",
        "sales",
    ]);
    assert!(!refused.status.success());
}
