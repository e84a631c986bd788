//! Desk phones' remote directories (issue 35): each vendor's documented structure, the
//! search by name or number, paging, and the `phones` scope.

use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app};
use crate::xml_tree::{Node, parse};

mod books;

/// Three contacts, one with two numbers and one whose name firmwares stumble over.
async fn seeded() -> (TestApp, String) {
    let app = spawn_app().await;
    let acme = app.create_tenant("acme", "RO").await;
    let batch = json!([
        {"op": "upsert", "id": "3", "name": "Zed", "phones": ["0721000003"]},
        {"op": "upsert", "id": "1", "name": "Ana Popescu", "phones": ["0721000001", "0731000001"]},
        {"op": "upsert", "id": "2", "name": "Bogdan & Sons <SRL>", "phones": ["0721000002"]},
        {"op": "upsert", "id": "4", "name": "Nobody Dialable", "phones": []}
    ]);
    assert_eq!(app.batch(&acme.sync_token, &batch).await.status(), 200);
    let phones = app.token("acme", "phones").await;
    (app, phones)
}

/// A phone's GET with the token in the URL; the answer's status and body.
async fn get(app: &TestApp, path: &str, token: &str, query: &[(&str, &str)]) -> (u16, String) {
    let response = app
        .http
        .get(format!("{}{path}", app.address))
        .query(&[("token", token)])
        .query(query)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

/// What a phone gets for a URL an answer gave it, parsed.
async fn follow(app: &TestApp, url: &str) -> Node {
    let response = app.http.get(url).send().await.unwrap();
    assert_eq!(response.status(), 200, "{url}");
    parse(&response.text().await.unwrap())
}

async fn directory(app: &TestApp, vendor: &str, token: &str, term: &str) -> Node {
    let path = format!("/phones/{vendor}/directory");
    let (status, body) = get(app, &path, token, &[("term", term)]).await;
    assert_eq!(status, 200, "{vendor}: {body}");
    parse(&body)
}

/// (Name, Telephone) of each `DirectoryEntry`, checking each holds exactly those two.
fn entries(root: &Node) -> Vec<(String, String)> {
    root.all("DirectoryEntry")
        .into_iter()
        .map(|e| {
            assert_eq!(e.names(), ["Name", "Telephone"], "{e:#?}");
            (
                e.text_of("Name").to_owned(),
                e.text_of("Telephone").to_owned(),
            )
        })
        .collect()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect()
}

#[tokio::test]
async fn each_vendor_lists_the_directory_by_name_in_its_documented_structure() {
    let (app, token) = seeded().await;
    let all = |bogdan: &str| {
        vec![
            ("Ana Popescu".to_owned(), "+40721000001".to_owned()),
            ("Ana Popescu".to_owned(), "+40731000001".to_owned()),
            (bogdan.to_owned(), "+40721000002".to_owned()),
            ("Zed".to_owned(), "+40721000003".to_owned()),
        ]
    };

    // Yealink, Htek and Fanvil: <Root><DirectoryEntry><Name/><Telephone/>…; Yealink and
    // Fanvil firmwares cannot show an `&`.
    for (vendor, root, bogdan) in [
        ("yealink", "YealinkIPPhoneDirectory", "Bogdan + Sons <SRL>"),
        ("htek", "PhoneDirectory", "Bogdan & Sons <SRL>"),
        ("fanvil", "PhoneBook", "Bogdan + Sons <SRL>"),
    ] {
        let doc = directory(&app, vendor, &token, "").await;
        assert_eq!(doc.name, root);
        assert!(
            doc.names().iter().all(|n| *n == "DirectoryEntry"),
            "{doc:#?}"
        );
        assert_eq!(entries(&doc), all(bogdan), "{vendor}");
    }

    // Cisco: Title, Prompt, the entries, then soft keys (no page links for one page).
    let cisco = directory(&app, "cisco", &token, "").await;
    assert_eq!(cisco.name, "CiscoIPPhoneDirectory");
    assert_eq!(&cisco.names()[..2], ["Title", "Prompt"]);
    assert_eq!(entries(&cisco), all("Bogdan & Sons <SRL>"));
    let keys: Vec<(String, String, String)> = cisco
        .all("SoftKeyItem")
        .into_iter()
        .map(|k| {
            assert_eq!(k.names(), ["Name", "URL", "Position"]);
            (
                k.text_of("Name").into(),
                k.text_of("URL").into(),
                k.text_of("Position").into(),
            )
        })
        .collect();
    assert_eq!(
        keys,
        [
            ("Dial".into(), "SoftKey:Dial".into(), "1".into()),
            ("Exit".into(), "SoftKey:Exit".into(), "2".into())
        ]
    );

    let snom = directory(&app, "snom", &token, "").await;
    assert_eq!(snom.name, "SnomIPPhoneDirectory");
    assert_eq!(snom.names()[0], "Title");
    assert_eq!(entries(&snom), all("Bogdan & Sons <SRL>"));
    assert!(snom.all("SoftKeyItem").is_empty());

    // Grandstream: one Contact per contact, one Phone (phonenumber, accountindex) per number.
    let gs = directory(&app, "grandstream", &token, "").await;
    assert_eq!(gs.name, "AddressBook");
    let contacts = gs.all("Contact");
    assert_eq!(contacts.len(), 3);
    assert_eq!(contacts[0].text_of("FirstName"), "Ana Popescu");
    let phones = contacts[0].all("Phone");
    assert_eq!(phones.len(), 2);
    assert_eq!(phones[1].names(), ["phonenumber", "accountindex"]);
    assert_eq!(phones[1].text_of("phonenumber"), "+40731000001");
    assert_eq!(phones[1].attr("type"), Some("Work"));
    assert_eq!(contacts[1].text_of("FirstName"), "Bogdan & Sons <SRL>");

    // Polycom's microbrowser: an XHTML list of tel: links.
    let polycom = directory(&app, "polycom", &token, "").await;
    assert_eq!(polycom.name, "html");
    let items = polycom.child("body").child("ol").all("li");
    let links: Vec<(&str, &str)> = items
        .iter()
        .map(|li| {
            (
                li.child("a").attr("href").unwrap(),
                li.child("a").text.as_str(),
            )
        })
        .collect();
    assert_eq!(
        links[0],
        ("tel://+40721000001", "Ana Popescu (+40721000001)")
    );
    assert_eq!(
        links[2],
        ("tel://+40721000002", "Bogdan & Sons <SRL> (+40721000002)")
    );
    assert_eq!(links.len(), 4);
}

#[tokio::test]
async fn a_search_matches_part_of_a_name_or_a_number_in_any_format() {
    let (app, token) = seeded().await;
    let names = |doc: &Node| -> Vec<String> { entries(doc).into_iter().map(|(n, _)| n).collect() };

    let popes = directory(&app, "yealink", &token, "POPES").await;
    assert_eq!(names(&popes), ["Ana Popescu", "Ana Popescu"]);
    let sons = directory(&app, "htek", &token, "& sons").await;
    assert_eq!(names(&sons), ["Bogdan & Sons <SRL>"]);
    // A LIKE wildcard is a character like any other.
    let percent = directory(&app, "htek", &token, "%").await;
    assert_eq!(names(&percent), ["No entries"]);

    for number in ["0040 721 000 002", "+40721000002", "(0721) 000-002"] {
        let found = directory(&app, "htek", &token, number).await;
        assert_eq!(names(&found), ["Bogdan & Sons <SRL>"], "{number}");
    }
    // By the other number, the contact is listed with all its numbers.
    let ana = directory(&app, "snom", &token, "0731000001").await;
    assert_eq!(
        entries(&ana),
        pairs(&[
            ("Ana Popescu", "+40721000001"),
            ("Ana Popescu", "+40731000001")
        ])
    );
    // Seven digits or more: numbers starting with them.
    let start = directory(&app, "yealink", &token, "0721 000").await;
    assert_eq!(
        names(&start),
        ["Ana Popescu", "Ana Popescu", "Bogdan + Sons <SRL>", "Zed"]
    );

    // Nobody: the "no entries" entry the phones need, or an empty list.
    let none = directory(&app, "cisco", &token, "nobody at all").await;
    assert_eq!(entries(&none), pairs(&[("No entries", "")]));
    let gs = directory(&app, "grandstream", &token, "nobody at all").await;
    assert!(gs.children.is_empty());
}

/// `count` contacts called `Contact 001`, `Contact 002`, …
async fn many(count: usize) -> (TestApp, String) {
    let app = spawn_app().await;
    let acme = app.create_tenant("acme", "RO").await;
    let batch: Vec<Value> = (1..=count)
        .map(|i| json!({"op": "upsert", "id": i, "name": format!("Contact {i:03}"), "phones": [format!("07220{i:05}")]}))
        .collect();
    assert_eq!(
        app.batch(&acme.sync_token, &Value::Array(batch))
            .await
            .status(),
        200
    );
    let phones = app.token("acme", "phones").await;
    (app, phones)
}

fn soft_key<'a>(doc: &'a Node, name: &str) -> Option<&'a str> {
    doc.all("SoftKeyItem")
        .into_iter()
        .find(|k| k.text_of("Name") == name || k.all("Label").iter().any(|l| l.text == name))
        .map(|k| k.text_of("URL"))
}

#[tokio::test]
async fn cisco_pages_hold_at_most_32_entries_and_link_to_their_neighbours() {
    let (app, token) = many(40).await;

    let first = directory(&app, "cisco", &token, "contact").await;
    let rows = entries(&first);
    assert_eq!(rows.len(), 32);
    assert_eq!(rows[31].0, "Contact 032");
    assert!(soft_key(&first, "Prev").is_none());
    let next = soft_key(&first, "Next").expect("a next page").to_owned();
    assert!(next.starts_with(&format!("{}/phones/cisco/directory?", app.address)));

    // The phone follows the link as given: it carries the token and the search.
    let second = follow(&app, &next).await;
    let rows = entries(&second);
    assert_eq!(rows.len(), 8);
    assert_eq!(rows[0].0, "Contact 033");
    assert!(soft_key(&second, "Next").is_none());
    let prev = soft_key(&second, "Prev").expect("a previous page");
    let back = follow(&app, prev).await;
    assert_eq!(entries(&back)[0].0, "Contact 001");

    // Snom pages with F2/F4 soft keys the same way.
    let (status, body) = get(&app, "/phones/snom/directory", &token, &[("limit", "30")]).await;
    assert_eq!(status, 200);
    let snom = parse(&body);
    assert_eq!(entries(&snom).len(), 30);
    let f4 = snom.all("SoftKeyItem")[0];
    assert_eq!((f4.text_of("Name"), f4.text_of("Label")), ("F4", "Next"));

    for (param, value) in [("limit", "33"), ("limit", "0"), ("offset", "x")] {
        let (status, body) = get(&app, "/phones/cisco/directory", &token, &[(param, value)]).await;
        assert_eq!(status, 400, "{param}={value}");
        assert!(body.contains(param), "{body}");
    }
}

#[tokio::test]
async fn cisco_and_snom_input_pages_lead_to_the_search() {
    let (app, token) = seeded().await;

    let (status, body) = get(&app, "/phones/cisco/input", &token, &[]).await;
    assert_eq!(status, 200);
    let cisco = parse(&body);
    assert_eq!(cisco.name, "CiscoIPPhoneInput");
    assert_eq!(cisco.names(), ["Title", "Prompt", "URL", "InputItem"]);
    let item = cisco.child("InputItem");
    assert_eq!(
        item.names(),
        [
            "DisplayName",
            "QueryStringParam",
            "DefaultValue",
            "InputFlags"
        ]
    );
    assert_eq!(item.text_of("QueryStringParam"), "term");
    // The phone adds `&term=…` to the URL.
    let url = format!("{}&term=popescu", cisco.text_of("URL"));
    let found = follow(&app, &url).await;
    assert_eq!(entries(&found).len(), 2);

    let (_, body) = get(&app, "/phones/snom/input", &token, &[]).await;
    let snom = parse(&body);
    assert_eq!(snom.name, "SnomIPPhoneInput");
    let param = snom.child("InputItem").text_of("QueryStringParam");
    // Snom adds `?<param>=…`: the token rides in the parameter.
    let url = format!("{}?{param}=zed", snom.text_of("URL"));
    let found = follow(&app, &url).await;
    assert_eq!(entries(&found), pairs(&[("Zed", "+40721000003")]));

    let (status, body) = get(&app, "/phones/yealink/input", &token, &[]).await;
    assert_eq!(status, 404, "{body}");
    let (status, body) = get(&app, "/phones/nokia/directory", &token, &[]).await;
    assert_eq!(status, 404);
    assert!(body.contains("yealink, cisco"), "{body}");
}

#[tokio::test]
async fn only_a_phones_token_opens_the_phones_routes_in_the_url_or_as_basic_password() {
    let (app, phones) = seeded().await;
    let lookup = app.token("acme", "lookup").await;
    let url = format!("{}/phones/yealink/directory", app.address);
    // (Basic password, token parameter, status)
    let cases = [
        (None, Some(&phones), 200),
        (Some(&phones), None, 200),
        (Some(&phones), Some(&phones), 200),
        (None, Some(&lookup), 401),
        (Some(&lookup), None, 401),
        (Some(&phones), Some(&lookup), 401),
        (None, None, 401),
    ];

    for (basic, token, expected) in cases {
        let mut request = app.http.get(&url);
        if let Some(password) = basic {
            request = request.basic_auth("t46u", Some(password));
        }
        if let Some(token) = token {
            request = request.query(&[("token", token)]);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        assert_eq!(status, expected, "basic {basic:?}, token {token:?}");
        let challenge = response.headers().get("www-authenticate").cloned();
        let body = response.text().await.unwrap();
        if status == 200 {
            assert_eq!(entries(&parse(&body)).len(), 4);
        } else {
            // A phone is asked for Basic credentials; the body is the API's error.
            assert!(challenge.unwrap().to_str().unwrap().starts_with("Basic"));
            crate::openapi::assert_conforms("GET", "/phones/{vendor}/directory", 401, &body);
        }
    }
    // And a phones token is no lookup token.
    let as_lookup = app.lookup(&phones, "0721000001").await;
    assert_eq!(as_lookup.status(), 401);
}

#[tokio::test]
async fn the_allowlist_holds_phones_to_the_tenants_networks_as_lookups() {
    let app = spawn_app().await;
    app.create_tenant_allowing("acme", "RO", &["10.0.0.0/8"])
        .await;
    let phones = app.token("acme", "phones").await;

    let (status, body) = get(&app, "/phones/snom/directory", &phones, &[]).await;

    assert_eq!(status, 403, "{body}");
    assert!(body.contains("allowlist"), "{body}");
    assert!(!body.contains("No entries"));
}
