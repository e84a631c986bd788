//! Service users: what their keys see, in reports and in the CDR API, and how they
//! are managed from the command line.

use serde_json::{Value, json};

use super::{
    call, cli_line, day, day_bounds, local, post_calls, post_report, reference_calls, report_json,
    request, service_user, tenant,
};
use crate::helpers::{PROPAGATION, eventually, spawn_app};

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
    let walk_as = async |token: &str, first: Value| {
        let mut agents = agents_of(&first);
        let mut cursor = first["cursor"].as_str().unwrap().to_owned();
        loop {
            let next = cdr(token, vec![("cursor", cursor.clone())]).await;
            if next["CallList"].as_array().unwrap().is_empty() {
                return agents;
            }
            agents.extend(agents_of(&next));
            cursor = next["cursor"].as_str().unwrap().to_owned();
        }
    };
    let walk = async |first: Value| walk_as(&key, first).await;
    let own = walk(cdr(&key, range.clone()).await).await;
    assert_eq!(own.len(), 14, "{own:?}");
    assert!(
        own.iter().all(|a| a == "200" || a == "Agent1(200)"),
        "{own:?}"
    );
    // From a cursor the tenant's own report token was given: still only agent 200,
    // although another agent's call lies past that cursor (it comes after the page).
    let everyone = cdr(&t.report, range).await;
    assert_eq!(everyone["CallList"].as_array().unwrap().len(), 5);
    let later = call(
        "other-2",
        local(d, "11:00:00"),
        Some(60_000),
        json!({"direction": "inbound", "agent": "201"}),
    );
    post_calls(&app, &t.pbx, later).await;
    let from_cursor = || json!({"CallList": [], "cursor": everyone["cursor"]});
    let tenant_wide = walk_as(&t.report, from_cursor()).await;
    assert!(
        tenant_wide.iter().any(|a| a == "Agent2(201)" || a == "201"),
        "the tenant's token reaches it: {tenant_wide:?}"
    );
    let rest = walk(from_cursor()).await;
    assert!(
        !rest.is_empty() && rest.iter().all(|a| a != "Agent2(201)" && a != "201"),
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
    // So is a key `token rotate` makes of it: it stays the service user's.
    let tokens = String::from_utf8(app.cli(&["token", "list", "--tenant", "acme"]).stdout).unwrap();
    let id = tokens
        .lines()
        .filter(|l| l.ends_with("service-user:payroll") && l.contains(" active "))
        .find_map(|l| l.split_whitespace().next())
        .unwrap()
        .to_owned();
    let by_token_rotate = cli_line(&app, &["token", "rotate", &id, "--grace", "1h"]);
    assert_eq!(
        post_report(&app, &by_token_rotate, &report, &other)
            .await
            .status(),
        403
    );
    assert_eq!(
        post_report(&app, &by_token_rotate, &report, &body)
            .await
            .status(),
        200
    );
    // Revoke: every key stops.
    cli_line(
        &app,
        &["service-user", "revoke", "--tenant", "acme", "payroll"],
    );
    for k in [&key, &rotated, &by_token_rotate] {
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
