//! Caller trust (issue 36): verstat/attest on lookups, spam lists, screened answers.

use serde_json::{Value, json};

use crate::calls::call_tenant;
use crate::helpers::{
    PROPAGATION, TestApp, UNKNOWN_ANSWER, eventually, spawn_app, spawn_app_with, text_file,
};

const LISTED: &str = "+15550001111";

/// The raw answer to a lookup of `telephone` with extra query parameters.
async fn lookup_with(
    app: &TestApp,
    token: &str,
    telephone: &str,
    extra: &[(&str, &str)],
) -> reqwest::Response {
    let mut query = vec![
        ("telephone", telephone),
        ("dnid", "2125550100"),
        ("token", token),
    ];
    query.extend_from_slice(extra);
    app.http
        .get(format!("{}/api/lookup", app.address))
        .query(&query)
        .send()
        .await
        .expect("lookup request")
}

async fn answer(app: &TestApp, token: &str, telephone: &str, extra: &[(&str, &str)]) -> Value {
    let response = lookup_with(app, token, telephone, extra).await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

fn is_screened(answer: &Value) -> bool {
    answer["route_identifier"] == "screening" && answer["name"] == "SPAM?" && answer["id"].is_null()
}

fn cli_ok(app: &TestApp, args: &[&str]) -> String {
    let out = app.cli(args);
    assert!(
        out.status.success(),
        "cidgate {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// `cidgate spam import --tenant acme --format FORMAT --min-reports MIN FILE`'s output.
fn import(
    app: &TestApp,
    format: &str,
    min_reports: &str,
    file: &tempfile::NamedTempFile,
) -> String {
    let path = file.path().to_str().unwrap();
    let args = ["spam", "import", "--tenant", "acme", "--format", format];
    cli_ok(
        app,
        &[&args[..], &["--min-reports", min_reports, path]].concat(),
    )
}

fn screen_with_route(app: &TestApp, slug: &str) {
    cli_ok(
        app,
        &[
            "tenant",
            "set",
            slug,
            "--spam-route",
            "screening",
            "--spam-name",
            "SPAM?",
        ],
    );
}

async fn put_spam(
    app: &TestApp,
    token: &str,
    number: &str,
    body: Option<Value>,
) -> reqwest::Response {
    let request = app
        .http
        .put(format!("{}/api/v1/spam/{number}", app.address))
        .bearer_auth(token);
    let request = match body {
        Some(body) => request.json(&body),
        None => request,
    };
    request.send().await.expect("spam request")
}

async fn delete_spam(app: &TestApp, token: &str, number: &str) -> reqwest::Response {
    app.http
        .delete(format!("{}/api/v1/spam/{number}", app.address))
        .bearer_auth(token)
        .send()
        .await
        .expect("spam request")
}

#[tokio::test]
async fn a_number_flagged_through_the_sync_api_gets_the_screening_route_until_removed() {
    let app = spawn_app().await;
    let acme = app.create_tenant("acme", "US").await;
    let other = app.create_tenant("other", "US").await;
    screen_with_route(&app, "acme");
    screen_with_route(&app, "other");

    let put = put_spam(
        &app,
        &acme.sync_token,
        "(555) 000-1111",
        Some(json!({"label": "robocalls"})),
    )
    .await;
    assert_eq!(put.status(), 201);
    let listed: Value = put.json().await.unwrap();
    assert_eq!(listed["number"], LISTED);
    assert_eq!(listed["added"], true);
    assert_eq!(listed["flagged"], true);
    assert_eq!(listed["label"], "robocalls");
    // Listed already: 200, still flagged.
    assert_eq!(
        put_spam(&app, &acme.sync_token, LISTED, None)
            .await
            .status(),
        200
    );

    eventually(PROPAGATION, "the flagged number is screened", || async {
        is_screened(&answer(&app, &acme.lookup_token, "5550001111", &[]).await)
    })
    .await;
    let text = lookup_with(&app, &acme.lookup_token, LISTED, &[])
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(
        text,
        r#"{"id":null,"name":"SPAM?","queue_position":null,"direct_line":null,"backend_link":null,"route_identifier":"screening","outbound_number":null,"language":null,"external_id":null}"#
    );
    // Another number of the tenant, and the same number at another tenant: not flagged.
    let unflagged = lookup_with(&app, &acme.lookup_token, "5550002222", &[]).await;
    assert_eq!(unflagged.text().await.unwrap(), UNKNOWN_ANSWER);
    let elsewhere = lookup_with(&app, &other.lookup_token, LISTED, &[]).await;
    assert_eq!(elsewhere.text().await.unwrap(), UNKNOWN_ANSWER);

    let metrics = crate::hardening::metrics(&app, &app.address).await;
    assert!(
        metrics.contains(r#"cidgate_lookups_screened_total{reason="spam_list"} 2"#),
        "{metrics}"
    );

    let client = app.pool.get().await.unwrap();
    eventually(
        PROPAGATION,
        "screened lookups are logged with their reason",
        || async {
            let row = client
                .query_one(
                    "SELECT count(*) FROM lookup_log WHERE number = $1 AND screened = 'spam_list'
                   AND outcome = 'unknown'",
                    &[&LISTED],
                )
                .await
                .unwrap();
            row.get::<_, i64>(0) == 2
        },
    )
    .await;

    assert_eq!(
        delete_spam(&app, &acme.sync_token, LISTED).await.status(),
        204
    );
    assert_eq!(
        delete_spam(&app, &acme.sync_token, LISTED).await.status(),
        404
    );
    eventually(
        PROPAGATION,
        "the removed number is answered unknown",
        || async {
            let response = lookup_with(&app, &acme.lookup_token, LISTED, &[]).await;
            response.text().await.unwrap() == UNKNOWN_ANSWER
        },
    )
    .await;
}

#[tokio::test]
async fn the_spam_api_names_what_is_wrong_and_needs_a_sync_token() {
    let app = spawn_app().await;
    let acme = app.create_tenant("acme", "US").await;
    let bad_number = put_spam(&app, &acme.sync_token, "not-a-number", None).await;
    assert_eq!(bad_number.status(), 422);
    assert!(bad_number.text().await.unwrap().contains("number"));
    let unknown_field = put_spam(&app, &acme.sync_token, LISTED, Some(json!({"score": 3}))).await;
    assert_eq!(unknown_field.status(), 422);
    assert!(unknown_field.text().await.unwrap().contains("score"));
    let long_label = json!({"label": "x".repeat(201)});
    let too_long = put_spam(&app, &acme.sync_token, LISTED, Some(long_label)).await;
    assert_eq!(too_long.status(), 422);
    assert!(too_long.text().await.unwrap().contains("label"));
    assert_eq!(
        put_spam(&app, &acme.lookup_token, LISTED, None)
            .await
            .status(),
        401
    );
    let client = app.pool.get().await.unwrap();
    let listed: i64 = client
        .query_one("SELECT count(*) FROM spam_numbers", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(listed, 0, "nothing is written for a refused request");
}

#[tokio::test]
async fn a_contact_always_wins_over_the_spam_list() {
    // The contact is asked of the database: a busy machine must not turn its answer into
    // a degraded one (never screened either, but not the contact this test looks for).
    let app = spawn_app_with(|s| s.lookup_deadline_ms = 20_000).await;
    let acme = app.create_tenant("acme", "US").await;
    screen_with_route(&app, "acme");
    let put = app
        .put_contact(
            &acme.sync_token,
            "42",
            &json!({"name": "Ana", "phones": ["5550001111"]}),
        )
        .await;
    assert_eq!(put.status(), 201);
    cli_ok(&app, &["spam", "add", "--tenant", "acme", LISTED]);
    // Flagged, but a contact: answered as the contact, even with a failed verstat.
    cli_ok(
        &app,
        &["tenant", "set", "acme", "--screen-failed-verstat", "on"],
    );
    eventually(PROPAGATION, "the tenant screens failed verstat", || async {
        is_screened(
            &answer(
                &app,
                &acme.lookup_token,
                "5550009999",
                &[("verstat", "TN-Validation-Failed")],
            )
            .await,
        )
    })
    .await;
    let found = answer(
        &app,
        &acme.lookup_token,
        LISTED,
        &[("verstat", "TN-Validation-Failed")],
    )
    .await;
    assert_eq!(found["id"], 42);
    assert_eq!(found["name"], "Ana");
    assert!(found["route_identifier"].is_null());
}

#[tokio::test]
async fn a_failed_verstat_is_screened_only_when_the_tenant_asks_and_nothing_once_the_route_is_cleared()
 {
    let app = spawn_app().await;
    let acme = app.create_tenant("acme", "US").await;
    let failed = [("verstat", "TN-Validation-Failed"), ("attest", "C")];
    cli_ok(&app, &["spam", "add", "--tenant", "acme", LISTED]);
    screen_with_route(&app, "acme");
    eventually(PROPAGATION, "the listed number is screened", || async {
        is_screened(&answer(&app, &acme.lookup_token, LISTED, &[]).await)
    })
    .await;
    // Not asked: a failed verification alone is an unknown caller.
    let response = lookup_with(&app, &acme.lookup_token, "5550002222", &failed).await;
    assert_eq!(response.text().await.unwrap(), UNKNOWN_ANSWER);

    cli_ok(
        &app,
        &["tenant", "set", "acme", "--screen-failed-verstat", "on"],
    );
    eventually(PROPAGATION, "failed verstat is screened", || async {
        is_screened(&answer(&app, &acme.lookup_token, "5550002222", &failed).await)
    })
    .await;
    let passed = lookup_with(
        &app,
        &acme.lookup_token,
        "5550002222",
        &[("verstat", "TN-Validation-Passed")],
    )
    .await;
    assert_eq!(passed.text().await.unwrap(), UNKNOWN_ANSWER);
    // A withheld number whose verification failed is screened too.
    assert!(is_screened(
        &answer(&app, &acme.lookup_token, "anonymous", &failed).await
    ));

    cli_ok(&app, &["tenant", "set", "acme", "--spam-route", ""]);
    eventually(PROPAGATION, "screening is off", || async {
        let response = lookup_with(&app, &acme.lookup_token, LISTED, &failed).await;
        response.text().await.unwrap() == UNKNOWN_ANSWER
    })
    .await;
}

/// A sample in the column layout of the FTC's Do-Not-Call reported calls data.
const FTC_SAMPLE: &str = "\
Company_Phone_Number,Created_Date,Violation_Date,Consumer_City,Consumer_State,Consumer_Area_Code,Subject,Recorded_Message_Or_Robocall
5550001111,2026-11-30 10:01:02,2026-11-29 09:00:00,Austin,Texas,512,Reducing your debt,Y
555-000-1111,2026-11-30 10:05:00,2026-11-29 09:30:00,Dallas,Texas,214,Reducing your debt,Y
(555) 000-1111,2026-11-30 11:00:00,2026-11-29 10:00:00,Houston,Texas,713,Warranties & protection plans,N
5550002222,2026-11-30 12:00:00,2026-11-29 11:00:00,Waco,Texas,254,Medical & prescriptions,Y
5550002222,2026-11-30 12:30:00,2026-11-29 11:30:00,Waco,Texas,254,Medical & prescriptions,Y
5550003333,2026-11-30 13:00:00,2026-11-29 12:00:00,Tyler,Texas,903,Imposters,N
,2026-11-30 13:00:00,2026-11-29 12:00:00,Tyler,Texas,903,Imposters,N
";

#[tokio::test]
async fn an_ftc_complaint_import_counts_reports_and_flags_numbers_at_the_threshold() {
    let app = spawn_app().await;
    let acme = app.create_tenant("acme", "US").await;
    screen_with_route(&app, "acme");
    let file = text_file(FTC_SAMPLE);
    let imported = import(&app, "ftc-dnc", "1", &file);
    assert!(
        imported.contains("imported 3 numbers from 7 rows"),
        "{imported}"
    );
    assert!(
        imported.contains("1 rows without a usable number"),
        "{imported}"
    );

    let list = cli_ok(&app, &["spam", "list", "--tenant", "acme"]);
    let row = |number: &str| -> Vec<String> {
        list.lines()
            .find(|l| l.starts_with(number))
            .unwrap_or_else(|| panic!("{number} not listed: {list}"))
            .split_whitespace()
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(row("+15550001111")[..4], ["+15550001111", "3", "no", "yes"]);
    assert_eq!(row("+15550002222")[..4], ["+15550002222", "2", "no", "yes"]);
    assert_eq!(row("+15550003333")[..4], ["+15550003333", "1", "no", "no"]);
    assert!(list.contains("Warranties & protection plans"));

    // The default threshold is 2 reports.
    eventually(
        PROPAGATION,
        "numbers with 2 reports are screened",
        || async { is_screened(&answer(&app, &acme.lookup_token, "5550002222", &[]).await) },
    )
    .await;
    assert!(is_screened(
        &answer(&app, &acme.lookup_token, LISTED, &[]).await
    ));
    let once = lookup_with(&app, &acme.lookup_token, "5550003333", &[]).await;
    assert_eq!(once.text().await.unwrap(), UNKNOWN_ANSWER);

    // A higher threshold unflags 2222 everywhere; `spam add` flags 3333 at once.
    cli_ok(&app, &["tenant", "set", "acme", "--spam-threshold", "3"]);
    cli_ok(&app, &["spam", "add", "--tenant", "acme", "5550003333"]);
    eventually(
        PROPAGATION,
        "the threshold and the addition apply",
        || async {
            let two = lookup_with(&app, &acme.lookup_token, "5550002222", &[]).await;
            two.text().await.unwrap() == UNKNOWN_ANSWER
                && is_screened(&answer(&app, &acme.lookup_token, "5550003333", &[]).await)
        },
    )
    .await;
    assert!(is_screened(
        &answer(&app, &acme.lookup_token, LISTED, &[]).await
    ));

    // The plain format: reports per line, --min-reports leaves rare numbers out, and a
    // second import adds to the counts.
    let csv = text_file("number,reports,label\n5550004444,1,once\n5550002222,1,again\n");
    let imported = import(&app, "csv", "1", &csv);
    assert!(imported.contains("imported 2 numbers"), "{imported}");
    let list = cli_ok(&app, &["spam", "list", "--tenant", "acme"]);
    let reports = |number: &str| {
        list.lines()
            .find(|l| l.starts_with(number))
            .map(|l| l.split_whitespace().nth(1).unwrap().to_owned())
    };
    assert_eq!(reports("+15550002222").as_deref(), Some("3"));
    let rare = text_file("number,reports\n5550005555,1\n5550006666,4\n");
    import(&app, "csv", "2", &rare);
    let list = cli_ok(&app, &["spam", "list", "--tenant", "acme"]);
    assert!(!list.contains("+15550005555"), "{list}");
    assert!(list.contains("+15550006666"), "{list}");

    // A file that is not the FTC's layout is refused, naming the column it lacks.
    let wrong = app.cli(&[
        "spam",
        "import",
        "--tenant",
        "acme",
        csv.path().to_str().unwrap(),
    ]);
    assert!(!wrong.status.success());
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("Company_Phone_Number"));
}

#[tokio::test]
async fn verstat_and_attest_reach_the_log_the_call_the_pop_page_and_are_bounded() {
    let app = spawn_app().await;
    let t = call_tenant(&app, "acme").await;
    cli_ok(
        &app,
        &["tenant", "set", "acme", "--popup-for-unknown", "true"],
    );
    app.wait_for_directory().await;

    let too_long = lookup_with(&app, &t.pbx, "0721234567", &[("verstat", &"x".repeat(33))]).await;
    assert_eq!(too_long.status(), 400);
    assert!(
        too_long
            .text()
            .await
            .unwrap()
            .contains("verstat is longer than 32 characters")
    );
    let control = lookup_with(&app, &t.pbx, "0721234567", &[("attest", "A\u{7}")]).await;
    assert_eq!(control.status(), 400);
    assert!(control.text().await.unwrap().contains("attest"));

    let trust = [
        ("verstat", "<b>TN-Validation-Failed</b>"),
        ("attest", "C"),
        ("call_id", "T-1"),
    ];
    eventually(PROPAGATION, "unknown callers get a screen pop", || async {
        let answer = answer(&app, &t.pbx, "0721234567", &[]).await;
        answer["backend_link"].is_string()
    })
    .await;
    let answered = answer(&app, &t.pbx, "0721234567", &trust).await;
    let link = answered["backend_link"].as_str().unwrap().to_owned();
    let page = app
        .http
        .get(link)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("&#60;b&#62;TN-Validation-Failed")
            || page.contains("&lt;b&gt;TN-Validation-Failed"),
        "{page}"
    );
    assert!(!page.contains("<b>TN-Validation-Failed"));
    assert!(page.contains("attestation <bdi>C</bdi>"));

    eventually(PROPAGATION, "the lookup opens the call", || async {
        !app.call_by_key(&t.report, "T-1").await.is_empty()
    })
    .await;
    let call = &app.call_by_key(&t.report, "T-1").await[0];
    assert_eq!(
        call["caller_trust"],
        json!({"verstat": "<b>TN-Validation-Failed</b>", "attest": "C"})
    );

    let client = app.pool.get().await.unwrap();
    eventually(
        PROPAGATION,
        "the lookup log keeps verstat and attest",
        || async {
            client
            .query_opt(
                "SELECT 1 FROM lookup_log WHERE verstat = $1 AND attest = 'C' AND screened IS NULL",
                &[&"<b>TN-Validation-Failed</b>"],
            )
            .await
            .unwrap()
            .is_some()
        },
    )
    .await;
}
