//! What a real run writes to its log (issue 28 item 9, issue 27 item 9): events tokens
//! under any parameter name are redacted, and every number in a query string is masked.

use cidgate::domain::{TenantSlug, TokenScopes};
use cidgate::store;

use crate::helpers::spawn_app;

#[tokio::test]
async fn events_tokens_and_callers_numbers_never_reach_the_request_log() {
    let app = spawn_app().await;
    app.create_tenant("acme", "RO").await;
    let client = app.pool.get().await.unwrap();
    let tenant = store::tenants::find_by_slug(&client, &TenantSlug::parse("acme").unwrap())
        .await
        .unwrap()
        .unwrap();
    let (_, events) = store::tokens::create(
        &client,
        tenant.id,
        TokenScopes::parse("events").unwrap(),
        "pbx",
    )
    .await
    .unwrap();
    let events = events.expose().to_owned();
    assert!(events.starts_with("cge_"));
    let log = tempfile::NamedTempFile::new().unwrap();
    let (mut server, base) = app
        .serve_process(|command| {
            command
                .env("CIDGATE_LOG_FORMAT", "json")
                .stderr(log.reopen().unwrap());
        })
        .await;

    let wrong = "cge_WrongEventsTokenNotToBeLogged0";
    for path in [
        format!(
            "/api/v1/events?caller=%2B40721234567&call_id=c1&event=ringing&access_token={events}"
        ),
        format!(
            "/api/v1/events?caller=0721234567&dnis=%2B40312345678&external_number=0040722000111&x={wrong}"
        ),
        format!(
            "/api/v1/events/call-end?uniqueid=1733.7&ani=%2B40721234567&ivr_var=0723456789&token={events}"
        ),
        format!(
            "/api/v1/events/focalscope?CallType=API&Event=pickup&CallID=1000000087849&RequestID=513&auth_token={events}"
        ),
    ] {
        app.http.get(format!("{base}{path}")).send().await.unwrap();
    }
    let stopped = std::process::Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    assert!(stopped.success());
    assert!(server.wait().unwrap().success());

    let logged = std::fs::read_to_string(log.path()).unwrap();
    assert!(
        logged.contains("/api/v1/events/call-end"),
        "the requests were logged"
    );
    assert!(
        logged.contains("CallID=1000000087849"),
        "ids are kept: {logged}"
    );
    for secret in [events.as_str(), wrong] {
        assert!(
            !logged.contains(secret),
            "a token reached the log: {logged}"
        );
    }
    for number in [
        "0721234567",
        "40721234567",
        "0312345678",
        "0722000111",
        "0723456789",
    ] {
        assert!(
            !logged.contains(number),
            "{number} reached the log: {logged}"
        );
    }
    assert!(logged.contains("caller=***********567"), "{logged}");
}
