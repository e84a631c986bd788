//! The command line as an operator uses it: tenants, tokens, allowlists, imports, demo.

use serde_json::Value;

use crate::helpers::{PROPAGATION, UNKNOWN_ANSWER, eventually, spawn_app, text_file};

fn stdout(output: &std::process::Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8(output.stderr.clone()).unwrap()
}

#[tokio::test]
async fn an_operator_creates_a_tenant_and_a_token_that_answers_lookups() {
    let app = spawn_app().await;

    let created = app.cli(&[
        "tenant", "create", "acme", "--region", "RO", "--name", "Acme Ltd",
    ]);
    assert!(created.status.success(), "{}", stderr(&created));
    let token = app.cli(&[
        "token", "create", "--tenant", "acme", "--scope", "lookup", "--label", "pbx",
    ]);
    assert!(token.status.success(), "{}", stderr(&token));
    let token = stdout(&token);
    let token_line = token.trim_end();
    assert!(
        token_line.starts_with("cgl_") && !token_line.contains(char::is_whitespace),
        "{token:?}"
    );
    assert_eq!(token.lines().count(), 1, "the token alone on stdout");

    let response = app.lookup(token_line, "0700000000").await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), UNKNOWN_ANSWER);

    let list = stdout(&app.cli(&["tenant", "list"]));
    assert!(list.contains("acme") && list.contains("Acme Ltd"), "{list}");
    let tokens = stdout(&app.cli(&["token", "list", "--tenant", "acme"]));
    assert!(
        tokens.contains("pbx") && !tokens.contains(token_line),
        "{tokens}"
    );
}

#[tokio::test]
async fn cli_errors_are_one_clear_line_and_a_failure_status() {
    let app = spawn_app().await;
    app.create_tenant("acme", "RO").await;
    let cases: [(&[&str], &str); 6] = [
        (
            &["tenant", "create", "acme", "--region", "RO"],
            "already exists",
        ),
        (
            &["tenant", "create", "Bad Slug", "--region", "RO"],
            "not a tenant slug",
        ),
        (
            &["tenant", "create", "zed", "--region", "Romania"],
            "--region",
        ),
        (
            &["token", "create", "--tenant", "nobody", "--scope", "lookup"],
            "no tenant `nobody`",
        ),
        (
            &["token", "create", "--tenant", "acme", "--scope", "root"],
            "--scope",
        ),
        (
            &["allow", "add", "--tenant", "acme", "10.0.0.0/33"],
            "not an IP address",
        ),
    ];
    for (args, needle) in cases {
        let output = app.cli(args);
        assert_eq!(output.status.code(), Some(1), "{args:?}");
        let err = stderr(&output);
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
    // A usage error too: 2 is what a partial import exits with.
    let usage = app.cli(&["token", "revoke", "abc"]);
    assert_eq!(usage.status.code(), Some(1));
    assert!(stderr(&usage).contains("invalid value 'abc'"));
}

#[tokio::test]
async fn a_token_is_revoked_or_rotated_only_under_its_own_tenant() {
    let app = spawn_app().await;
    let acme = app.create_tenant("acme", "RO").await;
    app.create_tenant("globex", "RO").await;
    let id = app.token_id("acme", "lookup");

    let verbs: [&[&str]; 2] = [
        &["token", "revoke", &id, "--tenant", "globex"],
        &["token", "rotate", &id, "--tenant", "globex"],
    ];
    for args in verbs {
        let output = app.cli(args);
        assert_eq!(output.status.code(), Some(1), "{args:?}");
        let err = stderr(&output);
        assert!(
            err.contains(&format!("no active token with id {id} for `globex`")),
            "{args:?}: {err}"
        );
    }
    let unknown = app.cli(&["token", "revoke", "999999"]);
    assert!(stderr(&unknown).contains("no active token with id 999999"));
    let listed = stdout(&app.cli(&["token", "list", "--tenant", "acme"]));
    assert!(
        !listed.contains("revoked") && !listed.contains("expiring"),
        "{listed}"
    );
    assert_eq!(
        app.lookup(&acme.lookup_token, "0700000000").await.status(),
        200
    );

    // Named with its own tenant, or with none, the token is the operator's to end.
    let revoked = app.cli(&["token", "revoke", &id, "--tenant", "acme"]);
    assert!(revoked.status.success(), "{}", stderr(&revoked));
    eventually(PROPAGATION, "the revoked token is refused", || async {
        app.lookup(&acme.lookup_token, "0700000000").await.status() == 401
    })
    .await;
}

#[tokio::test]
async fn token_list_shows_when_a_token_was_last_used() {
    let app = spawn_app().await;
    // Another tenant first, so that no id of acme's equals another of its ids.
    app.create_tenant("globex", "RO").await;
    let acme = app.create_tenant("acme", "RO").await;
    let last_used = || {
        let listed = stdout(&app.cli(&["token", "list", "--tenant", "acme"]));
        let row = listed.lines().find(|l| l.contains(" lookup ")).unwrap();
        row.split_whitespace().nth(3).unwrap().to_owned()
    };
    assert_eq!(last_used(), "-");
    eventually(PROPAGATION, "the token's use is recorded", || async {
        assert_eq!(
            app.lookup(&acme.lookup_token, "0700000000").await.status(),
            200
        );
        // A configuration change reloads the directory, which writes the uses it saw.
        app.cli(&["tenant", "set", "acme", "--lookup-rate", "default"]);
        last_used() != "-"
    })
    .await;
}

#[tokio::test]
async fn allowlist_entries_are_added_listed_and_removed() {
    let app = spawn_app().await;
    app.create_tenant("acme", "RO").await;

    assert!(
        app.cli(&["allow", "add", "--tenant", "acme", "10.1.2.3/8"])
            .status
            .success()
    );
    assert!(
        app.cli(&["allow", "add", "--tenant", "acme", "2001:db8::/32"])
            .status
            .success()
    );
    let listed = stdout(&app.cli(&["allow", "list", "--tenant", "acme"]));
    assert_eq!(listed, "10.0.0.0/8\n2001:db8::/32\n");

    assert!(
        app.cli(&["allow", "remove", "--tenant", "acme", "10.0.0.0/8"])
            .status
            .success()
    );
    let again = app.cli(&["allow", "remove", "--tenant", "acme", "10.0.0.0/8"]);
    assert!(!again.status.success());
    assert_eq!(
        stdout(&app.cli(&["allow", "list", "--tenant", "acme"])),
        "2001:db8::/32\n"
    );
}

#[tokio::test]
async fn importing_a_good_csv_makes_every_row_answer_lookups() {
    let app = spawn_app().await;
    let acme = app.create_tenant("acme", "RO").await;
    let file = text_file(
        "id,name,phones,direct_line,queue_position,route_identifier,outbound_number,language,external_id,crm_url\n\
         12345,John Doe,0700000000;+40 721 234 567,SIP/john,5,,,en,X1,https://crm.example.com/c/12345\n\
         A-7,\"Popescu, Ion\",0722 000 007,,,vip,,,,\n",
    );

    let output = app.cli(&["import", "--tenant", "acme", file.path().to_str().unwrap()]);

    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stdout(&output).contains("imported 2 rows"),
        "{}",
        stdout(&output)
    );
    eventually(PROPAGATION, "the import reaches the gateway", || async {
        app.lookup_json(&acme.lookup_token, "0722000007").await["id"] == "A-7"
    })
    .await;
    let john = app.lookup_json(&acme.lookup_token, "+40721234567").await;
    assert_eq!(john["id"], 12345);
    assert_eq!(john["direct_line"], "SIP/john");
    assert_eq!(john["queue_position"], 5);
    let link = john["backend_link"].as_str().unwrap();
    assert!(link.starts_with(&format!("{}/pop/", app.address)), "{link}");
    let ion: Value = app.lookup_json(&acme.lookup_token, "0722000007").await;
    assert_eq!(ion["name"], "Popescu, Ion");
    assert_eq!(ion["route_identifier"], "vip");
}

#[tokio::test]
async fn an_import_reports_rejected_rows_by_line_and_imports_the_rest() {
    let app = spawn_app().await;
    let acme = app.create_tenant("acme", "RO").await;
    let file = text_file(
        "id,name,phones,queue_position\n\
         1,Good,0721000001,\n\
         2,,0721000002,\n\
         3,Bad Queue,0721000003,200\n",
    );

    let output = app.cli(&["import", "--tenant", "acme", file.path().to_str().unwrap()]);

    assert_eq!(
        output.status.code(),
        Some(2),
        "partial import has its own status"
    );
    assert!(
        stdout(&output).contains("imported 1 rows"),
        "{}",
        stdout(&output)
    );
    assert!(
        stdout(&output).contains("rejected 2 rows"),
        "{}",
        stdout(&output)
    );
    let err = stderr(&output);
    assert!(err.contains("line 3") && err.contains("name"), "{err}");
    assert!(
        err.contains("line 4") && err.contains("queue_position"),
        "{err}"
    );
    eventually(PROPAGATION, "the imported row answers lookups", || async {
        app.lookup_json(&acme.lookup_token, "0721000001").await["name"] == "Good"
    })
    .await;
}

#[tokio::test]
async fn a_malformed_csv_is_refused_and_nothing_is_written() {
    let app = spawn_app().await;
    let acme = app.create_tenant("acme", "RO").await;
    let file = text_file(
        "id,name,phones\n\
         1,Good,0721000001\n\
         2,\"Unclosed,0721000002\n\
         3,Short\n",
    );

    let output = app.cli(&["import", "--tenant", "acme", file.path().to_str().unwrap()]);

    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    assert!(
        err.contains("malformed") && err.contains("nothing was imported"),
        "{err}"
    );
    assert_eq!(
        app.contacts_with_number("acme", "+40721000001").await,
        0,
        "not even the good first row"
    );
    let lookup = app.lookup(&acme.lookup_token, "0721000001").await;
    assert_eq!(lookup.text().await.unwrap(), UNKNOWN_ANSWER);
}

#[tokio::test]
async fn the_demo_prints_a_curl_line_that_finds_a_contact() {
    let app = spawn_app().await;

    let output = app.cli(&["demo", "--listen", "127.0.0.1:9"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    let curl = text
        .lines()
        .find(|l| l.starts_with("try: curl "))
        .expect("a curl line");
    let url = curl.trim_start_matches("try: curl ").trim_matches('\'');
    let url = url.replace("http://127.0.0.1:9", &app.address);

    let lookup = || async {
        let answer: Value = app
            .http
            .get(&url)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        answer
    };
    eventually(
        PROPAGATION,
        "the demo contacts reach the gateway",
        || async { lookup().await["name"].is_string() },
    )
    .await;
    assert!(lookup().await["id"].is_number());

    // Running it again refreshes the tenant and revokes the previous demo token.
    let again = app.cli(&["demo", "--listen", "127.0.0.1:9"]);
    assert!(again.status.success());
    eventually(PROPAGATION, "the old demo token is refused", || async {
        app.http.get(&url).send().await.unwrap().status() == 401
    })
    .await;
    let tenants = stdout(&app.cli(&["tenant", "list"]));
    assert!(tenants.contains("1000"), "{tenants}");
}

#[tokio::test]
async fn a_large_import_is_written_in_pieces_but_counted_and_ordered_as_one() {
    let app = spawn_app().await;
    let acme = app.create_tenant("acme", "RO").await;
    // 12,000 rows, more than two pieces: ids 1..=10000, then ids 1..=2000 again with new
    // numbers (updates in a later piece), one bad row among them.
    let mut text = String::from("id,name,phones,queue_position\n");
    for i in 1..=10_000 {
        text.push_str(&format!("{i},First {i},0721{i:06},\n"));
    }
    for i in 1..=2_000 {
        let queue = if i == 1_500 { "200" } else { "" };
        text.push_str(&format!("{i},Second {i},0722{i:06},{queue}\n"));
    }
    let file = text_file(&text);

    let output = app.cli(&["import", "--tenant", "acme", file.path().to_str().unwrap()]);

    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert_eq!(
        stdout(&output).trim(),
        "imported 11999 rows (10000 created, 1999 updated, 0 stale), rejected 1 rows"
    );
    let err = stderr(&output);
    assert!(
        err.contains("line 11501") && err.contains("queue_position"),
        "{err}"
    );
    eventually(PROPAGATION, "the import reaches the gateway", || async {
        app.lookup_json(&acme.lookup_token, "0722000002").await["name"] == "Second 2"
    })
    .await;
    let moved = app.lookup(&acme.lookup_token, "0721000002").await;
    assert_eq!(moved.text().await.unwrap(), UNKNOWN_ANSWER);
    assert_eq!(
        app.lookup_json(&acme.lookup_token, "0721001500").await["name"],
        "First 1500",
        "the rejected row changed nothing"
    );
    assert_eq!(
        app.lookup_json(&acme.lookup_token, "0721010000").await["name"],
        "First 10000"
    );
}

#[tokio::test]
async fn a_file_malformed_after_its_first_pieces_writes_nothing() {
    let app = spawn_app().await;
    let acme = app.create_tenant("acme", "RO").await;
    let mut text = String::from("id,name,phones\n");
    for i in 1..=12_000 {
        text.push_str(&format!("{i},C {i},0721{i:06}\n"));
    }
    text.push_str("12001,Short\n");
    let file = text_file(&text);

    let output = app.cli(&["import", "--tenant", "acme", file.path().to_str().unwrap()]);

    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    assert!(
        err.contains("line 12002") && err.contains("nothing was imported"),
        "{err}"
    );
    let lookup = app.lookup(&acme.lookup_token, "0721000001").await;
    assert_eq!(lookup.text().await.unwrap(), UNKNOWN_ANSWER);
    let client = app.pool.get().await.unwrap();
    let stored: i64 = client
        .query_one("SELECT count(*) FROM contacts", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(stored, 0);
}
