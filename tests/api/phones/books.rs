//! Downloadable phone books, Gigaset's caller names, the CLI, metrics and log lines of
//! the desk phones' routes (issue 35).

use serde_json::json;

use super::{get, seeded};
use crate::helpers::{PROPAGATION, eventually, spawn_app};
use crate::xml_tree::parse;

#[tokio::test]
async fn phone_books_hold_the_first_contacts_by_name_up_to_the_tenants_maximum() {
    let (app, token) = seeded().await;

    let (status, body) = get(&app, "/phones/yealink/phonebook.xml", &token, &[]).await;
    assert_eq!(status, 200);
    let book = parse(&body);
    assert_eq!(book.name, "YealinkIPPhoneBook");
    assert_eq!(book.names(), ["Title", "Menu"]);
    let menu = book.child("Menu");
    assert_eq!(menu.attr("Name"), Some("Contacts"));
    let units = menu.all("Unit");
    let attrs: Vec<&str> = units[0].attrs.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        attrs,
        ["Name", "Phone1", "Phone2", "Phone3", "default_photo"]
    );
    let shown: Vec<(&str, &str, &str)> = units
        .iter()
        .map(|u| {
            (
                u.attr("Name").unwrap(),
                u.attr("Phone1").unwrap(),
                u.attr("Phone2").unwrap(),
            )
        })
        .collect();
    // A contact without a number has nothing to dial: it is left out.
    assert_eq!(
        shown,
        [
            ("Ana Popescu", "+40721000001", "+40731000001"),
            ("Bogdan + Sons <SRL>", "+40721000002", ""),
            ("Zed", "+40721000003", "")
        ]
    );

    let set = app.cli(&["tenant", "set", "acme", "--phonebook-max", "2"]);
    assert!(
        set.status.success(),
        "{}",
        String::from_utf8_lossy(&set.stderr)
    );
    let units = || async {
        let (_, body) = get(&app, "/phones/yealink/phonebook.xml", &token, &[]).await;
        parse(&body).child("Menu").all("Unit").len()
    };
    eventually(PROPAGATION, "the phone book shrinks to 2", || async {
        units().await == 2
    })
    .await;

    let (status, body) = get(&app, "/phones/grandstream/phonebook.xml", &token, &[]).await;
    assert_eq!(status, 200);
    let book = parse(&body);
    assert_eq!(book.name, "AddressBook");
    let names: Vec<&str> = book
        .all("Contact")
        .iter()
        .map(|c| c.text_of("FirstName"))
        .collect();
    assert_eq!(names, ["Ana Popescu", "Bogdan & Sons <SRL>"]);

    for bad in ["0", "100001", "many"] {
        let refused = app.cli(&["tenant", "set", "acme", "--phonebook-max", bad]);
        assert!(!refused.status.success(), "--phonebook-max {bad}");
        assert!(String::from_utf8_lossy(&refused.stderr).contains("--phonebook-max"));
    }
}

#[tokio::test]
async fn gigaset_reverse_search_answers_the_callers_name_or_not_found() {
    let (app, token) = seeded().await;

    let (status, body) = get(
        &app,
        "/phones/gigaset/lookup",
        &token,
        &[("hm", "0040731000001")],
    )
    .await;
    assert_eq!(status, 200);
    let list = parse(&body);
    assert_eq!(list.name, "list");
    for (attr, value) in [("response", "get_list"), ("type", "pb"), ("total", "1")] {
        assert_eq!(list.attr(attr), Some(value), "{body}");
    }
    let entry = list.child("entry");
    assert_eq!(entry.names(), ["ln", "fn", "hm"]);
    assert_eq!(entry.text_of("ln"), "Ana Popescu");
    assert_eq!(entry.text_of("hm"), "0040731000001");

    let (status, body) = get(
        &app,
        "/phones/gigaset/lookup",
        &token,
        &[("hm", "0799999999")],
    )
    .await;
    assert_eq!(status, 200);
    let miss = parse(&body);
    assert_eq!(miss.name, "list");
    assert_eq!(miss.attr("notfound"), Some("hm"));
    assert_eq!(miss.attr("total"), Some("0"));
    assert!(miss.children.is_empty());

    let (status, body) = get(&app, "/phones/gigaset/lookup", &token, &[]).await;
    assert_eq!(status, 400);
    assert!(body.contains("hm"), "{body}");
}

#[tokio::test]
async fn phone_answers_are_counted_by_vendor_and_logged_with_numbers_masked() {
    let (app, token) = seeded().await;
    get(&app, "/phones/cisco/directory", &token, &[]).await;
    get(&app, "/phones/cisco/directory", &token, &[]).await;
    get(
        &app,
        "/phones/gigaset/lookup",
        &token,
        &[("hm", "0721000001")],
    )
    .await;

    let metrics = crate::hardening::metrics(&app, &app.address).await;
    let count = |labels: &str| {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(&format!("cidgate_phone_requests_total{{{labels}}} ")))
            .map(|v| v.trim().to_owned())
    };
    assert_eq!(
        count("vendor=\"cisco\",request=\"directory\"").as_deref(),
        Some("2")
    );
    assert_eq!(
        count("vendor=\"gigaset\",request=\"lookup\"").as_deref(),
        Some("1")
    );

    let line = cidgate::telemetry::redact_query(&format!(
        "hm=0721000001&term=0721%20000%20001&token={token}"
    ));
    assert!(
        !line.contains("0721000") && !line.contains("0721%20000"),
        "{line}"
    );
    assert!(!line.contains(&token[4..]), "{line}");
}

#[tokio::test]
async fn the_cli_creates_phones_tokens() {
    let app = spawn_app().await;
    let acme = app.create_tenant("acme", "RO").await;
    let contact = json!({"name": "Ana", "phones": ["0721000001"]});
    assert_eq!(
        app.put_contact(&acme.sync_token, "1", &contact)
            .await
            .status(),
        201
    );

    let out = app.cli(&["token", "create", "--tenant", "acme", "--scope", "phones"]);

    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let token = stdout.lines().last().unwrap().trim().to_owned();
    assert!(token.starts_with("cgp_"), "{stdout}");
    let (status, body) = get(&app, "/phones/htek/directory", &token, &[]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(parse(&body).child("DirectoryEntry").text_of("Name"), "Ana");
}
