//! The reference's error codes, each with a message that says what was wrong.

use serde_json::{Value, json};

use super::{day, day_bounds, post_report, request, service_user, tenant};
use crate::helpers::spawn_app;

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
