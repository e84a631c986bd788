//! The OpenAPI description stays true: every documented operation is served, and real
//! answers (successes and errors) match the documented status codes and schemas.

use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app, spawn_app_with};

fn spec() -> Value {
    serde_json::from_str(cidgate::http::OPENAPI).unwrap()
}

/// Escapes a JSON-pointer token for use in a URI fragment.
fn escape(token: &str) -> String {
    token
        .replace('~', "~0")
        .replace('/', "~1")
        .replace('{', "%7B")
        .replace('}', "%7D")
}

/// Checks that `status` is documented for the operation and that `body` matches its
/// schema (resolving `$ref`s against the whole description).
pub fn assert_conforms(method: &str, path: &str, status: u16, body: &str) {
    let spec = spec();
    let operation = &spec["paths"][path][method.to_lowercase()];
    assert!(operation.is_object(), "{method} {path} is not documented");
    let mut response = &operation["responses"][status.to_string()];
    assert!(
        response.is_object(),
        "{method} {path} answered {status}, which is not documented: {body}"
    );
    let mut pointer = format!(
        "#/paths/{}/{}/responses/{status}",
        escape(path),
        method.to_lowercase()
    );
    if let Some(reference) = response["$ref"].as_str() {
        pointer = reference.to_owned();
        let name = reference.rsplit('/').next().unwrap();
        response = &spec["components"]["responses"][name];
    }
    let Some((media, _)) = response["content"]
        .as_object()
        .and_then(|c| c.iter().next())
    else {
        assert!(
            body.is_empty(),
            "{method} {path} {status} documents no body: {body}"
        );
        return;
    };
    if !media.ends_with("json") {
        return;
    }
    let mut root = spec.clone();
    root["$schema"] = json!("https://json-schema.org/draft/2020-12/schema");
    root["$ref"] = json!(format!("{pointer}/content/{}/schema", escape(media)));
    let validator =
        jsonschema::validator_for(&root).expect("the description compiles as JSON Schema");
    let instance: Value = serde_json::from_str(body)
        .unwrap_or_else(|e| panic!("{method} {path} {status}: not JSON ({e}): {body}"));
    let errors: Vec<String> = validator
        .iter_errors(&instance)
        .map(|e| e.to_string())
        .collect();
    assert!(
        errors.is_empty(),
        "{method} {path} {status} contradicts the schema: {errors:?}\n{body}"
    );
}

async fn check(app: &TestApp, method: &str, path: &str, request: reqwest::RequestBuilder) -> u16 {
    let _ = app;
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let body = response.text().await.unwrap();
    assert_conforms(method, path, status, &body);
    status
}

#[tokio::test]
async fn every_documented_operation_is_served() {
    let app = spawn_app().await;
    for (method, path) in cidgate::http::OPERATIONS {
        let url = format!("{}{}", app.address, path.replace("{id}", "1"));
        let request = app.http.request(method.parse().unwrap(), url);
        let response = request.send().await.unwrap();
        let body = response.text().await.unwrap();
        assert!(
            !body.contains("no such endpoint") && !body.contains("method not allowed"),
            "{method} {path}"
        );
    }
    let served: Value = app
        .http
        .get(format!("{}/openapi.json", app.address))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(served, spec());
}

#[tokio::test]
async fn real_answers_match_the_description() {
    let app = spawn_app_with(|s| s.lookup_rate = 1_000).await;
    let acme = app.create_tenant("acme", "RO").await;
    let base = &app.address;
    let lookup = "/api/lookup";
    let contact = "/api/v1/contacts/{id}";
    let batch = "/api/v1/contacts/batch";
    let body = json!({"name": "John Doe", "phones": ["0700000000"], "queue_position": 3, "attributes": {"vip": true}, "updated_at": "2026-11-20T10:00:00Z"});
    let h = &app.http;
    let sync = |r: reqwest::RequestBuilder| r.bearer_auth(&acme.sync_token);

    let cases: Vec<(&str, &str, reqwest::RequestBuilder, u16)> = vec![
        ("PUT", contact, sync(h.put(format!("{base}/api/v1/contacts/12345")).json(&body)), 201),
        ("PUT", contact, sync(h.put(format!("{base}/api/v1/contacts/12345")).json(&body)), 200),
        ("PUT", contact, sync(h.put(format!("{base}/api/v1/contacts/12345")).json(&json!({"name": "Old", "phones": [], "updated_at": "2020-01-01T00:00:00Z"}))), 200),
        ("PUT", contact, sync(h.put(format!("{base}/api/v1/contacts/1")).header("content-type", "application/json").body("{")), 400),
        ("PUT", contact, sync(h.put(format!("{base}/api/v1/contacts/1")).header("content-type", "text/plain").body("{}")), 415),
        ("PUT", contact, sync(h.put(format!("{base}/api/v1/contacts/1")).json(&json!({"phones": ["x"]}))), 422),
        ("PUT", contact, sync(h.put(format!("{base}/api/v1/contacts/1")).json(&json!({"name": "A", "phones": [], "attributes": {"x": "y".repeat(70_000)}}))), 413),
        ("PUT", contact, h.put(format!("{base}/api/v1/contacts/1")).json(&body), 401),
        ("GET", contact, sync(h.get(format!("{base}/api/v1/contacts/12345"))), 200),
        ("GET", contact, sync(h.get(format!("{base}/api/v1/contacts/nobody"))), 404),
        ("DELETE", contact, sync(h.delete(format!("{base}/api/v1/contacts/nobody"))), 204),
        ("POST", batch, sync(h.post(format!("{base}/api/v1/contacts/batch")).json(&json!([{"op": "upsert", "id": 7, "name": "B", "phones": ["0721000007"]}, {"op": "delete", "id": "x"}]))), 200),
        ("POST", batch, sync(h.post(format!("{base}/api/v1/contacts/batch")).json(&json!([{"op": "upsert", "id": 7}]))), 422),
        ("POST", batch, sync(h.post(format!("{base}/api/v1/contacts/batch")).body("[]")), 415),
        ("GET", lookup, h.get(format!("{base}{lookup}?telephone=0700000000&token={}", acme.lookup_token)), 200),
        ("GET", lookup, h.get(format!("{base}{lookup}?telephone=0799999999&token={}", acme.lookup_token)), 200),
        ("GET", lookup, h.get(format!("{base}{lookup}?telephone={}&token={}", "1".repeat(70), acme.lookup_token)), 400),
        ("GET", lookup, h.get(format!("{base}{lookup}?telephone=0700000000&token=wrong")), 401),
        ("GET", lookup, h.get(format!("{base}{lookup}?telephone={}", "1".repeat(9_000))), 414),
        ("GET", "/api/while1voice", h.get(format!("{base}/api/while1voice?telephone=0700000000&token={}", acme.lookup_token)), 200),
        ("GET", "/healthz", h.get(format!("{base}/healthz")), 200),
        ("GET", "/readyz", h.get(format!("{base}/readyz")), 200),
        ("GET", "/metrics", h.get(format!("{base}/metrics")), 200),
        ("GET", "/openapi.json", h.get(format!("{base}/openapi.json")), 200),
    ];
    for (method, path, request, expected) in cases {
        assert_eq!(
            check(&app, method, path, request).await,
            expected,
            "{method} {path}"
        );
    }
}

#[tokio::test]
async fn report_answers_match_the_description() {
    use crate::reports::{call, day, local, post_calls, request, service_user, tenant};
    let app = spawn_app().await;
    let t = tenant(&app, "acme").await;
    let d = day();
    let fields = json!({"direction": "inbound", "agent": "Agent1(200)", "group": "Sales", "account_codes": ["A1"]});
    post_calls(
        &app,
        &t.pbx,
        call("c1", local(d, "09:00:00"), Some(60_000), fields),
    )
    .await;
    let path = "/rest/api/v1/historic-data/{historicDataKey}";
    let (start, end) = (format!("{d}T00:00:00-06:00"), format!("{d}T23:59:59-06:00"));
    for template in [
        "agent-talking-summary",
        "calls-by-dnis",
        "missed-calls-by-group",
        "account-code-usage",
        "call-detail",
        "caller-identification",
    ] {
        let (key, report) = service_user(&app, "acme", template, &[], template);
        let url = format!("{}/rest/api/v1/historic-data/{report}", app.address);
        let post = |body: Value| app.http.post(&url).bearer_auth(&key).json(&body);
        let good = request("json", &start, &end, &[], &[]);
        assert_eq!(
            check(&app, "POST", path, post(good.clone())).await,
            200,
            "{template}"
        );
        let backwards = request("json", &end, &start, &[], &[]);
        assert_eq!(
            check(&app, "POST", path, post(backwards)).await,
            400,
            "{template}"
        );
        let other = format!(
            "{}/rest/api/v1/historic-data/{}",
            app.address,
            uuid::Uuid::new_v4()
        );
        let unknown = app.http.post(other).bearer_auth(&key).json(&good);
        assert_eq!(check(&app, "POST", path, unknown).await, 404, "{template}");
    }
    let (limited, report) = service_user(
        &app,
        "acme",
        "limited",
        &["--agents", "200"],
        "agent-talking-summary",
    );
    let url = format!("{}/rest/api/v1/historic-data/{report}", app.address);
    let outside = request("json", &start, &end, &["201"], &[]);
    let refused = app.http.post(&url).bearer_auth(&limited).json(&outside);
    assert_eq!(check(&app, "POST", path, refused).await, 403);
    let anonymous = app.http.post(&url).json(&outside);
    assert_eq!(check(&app, "POST", path, anonymous).await, 401);
}

#[test]
#[should_panic(expected = "contradicts the schema")]
fn the_conformance_check_catches_a_body_that_contradicts_the_schema() {
    assert_conforms("GET", "/api/lookup", 200, r#"{"id":null,"name":7}"#);
}

#[test]
#[should_panic(expected = "not documented")]
fn the_conformance_check_catches_an_undocumented_status() {
    assert_conforms("GET", "/healthz", 500, "{}");
}
