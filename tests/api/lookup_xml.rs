//! `type=xml` lookups (issue 35): the nine keys as elements of a root the PBX names.

use serde_json::json;

use crate::helpers::{UNKNOWN_ANSWER, spawn_app};
use crate::xml_tree::parse;

const KEYS: [&str; 9] = [
    "id",
    "name",
    "queue_position",
    "direct_line",
    "backend_link",
    "route_identifier",
    "outbound_number",
    "language",
    "external_id",
];

#[tokio::test]
async fn an_xml_lookup_answers_the_nine_keys_in_order_under_the_named_root() {
    let app = spawn_app().await;
    let acme = app.create_tenant("acme", "RO").await;
    let contact = json!({
        "name": "Tom & Jerry <\"Ltd\"> 'x'",
        "phones": ["0700000000"],
        "queue_position": 7,
        "direct_line": "SIP/ion"
    });
    assert_eq!(
        app.put_contact(&acme.sync_token, "12345", &contact)
            .await
            .status(),
        201
    );

    let response = app
        .get_raw(&format!(
            "/api/while1voice?telephone=0700000000&token={}&type=xml&root_tag=caller\
             &send_request_headers=0&ignore_response=0",
            acme.lookup_token
        ))
        .await;

    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "application/xml; charset=utf-8"
    );
    let root = parse(&response.text().await.unwrap());
    assert_eq!(root.name, "caller");
    assert_eq!(root.names(), KEYS);
    assert_eq!(root.text_of("id"), "12345");
    assert_eq!(root.text_of("name"), "Tom & Jerry <\"Ltd\"> 'x'");
    assert_eq!(root.text_of("queue_position"), "7");
    assert_eq!(root.text_of("direct_line"), "SIP/ion");
    assert!(
        root.text_of("backend_link")
            .starts_with(&format!("{}/pop/", app.address))
    );
    assert_eq!(root.text_of("language"), "");
}

#[tokio::test]
async fn an_xml_lookup_of_an_unknown_caller_is_nine_empty_elements_under_contact() {
    let app = spawn_app().await;
    let acme = app.create_tenant("acme", "RO").await;

    for root_tag in ["", "&root_tag=", "&root_tag=%20"] {
        let response = app
            .get_raw(&format!(
                "/api/lookup?telephone=0700000001&token={}&type=xml{root_tag}",
                acme.lookup_token
            ))
            .await;

        assert_eq!(response.status(), 200);
        let root = parse(&response.text().await.unwrap());
        assert_eq!(root.name, "contact", "root_tag {root_tag:?}");
        assert_eq!(root.names(), KEYS);
        assert!(
            root.children
                .iter()
                .all(|c| c.text.is_empty() && c.children.is_empty())
        );
    }
}

#[tokio::test]
async fn a_root_tag_that_is_no_xml_name_is_refused_by_name() {
    let app = spawn_app().await;
    let acme = app.create_tenant("acme", "RO").await;

    for bad in ["1contact", "a%20b", "a%3Cb", "ns:contact", "a%26b", "-x"] {
        let response = app
            .get_raw(&format!(
                "/api/lookup?telephone=0700000001&token={}&type=xml&root_tag={bad}",
                acme.lookup_token
            ))
            .await;

        assert_eq!(response.status(), 400, "root_tag={bad}");
        let body: serde_json::Value = response.json().await.unwrap();
        assert!(
            body["message"].as_str().unwrap().contains("root_tag"),
            "{body}"
        );
    }
    let other = app
        .get_raw(&format!(
            "/api/lookup?telephone=1&token={}&type=yaml",
            acme.lookup_token
        ))
        .await;
    assert_eq!(other.status(), 400);
    assert!(
        other
            .text()
            .await
            .unwrap()
            .contains("type must be json or xml")
    );
}

#[tokio::test]
async fn type_json_and_the_generic_api_parameters_leave_the_json_answer_byte_for_byte() {
    let app = spawn_app().await;
    let acme = app.create_tenant("acme", "RO").await;
    let put = json!({"name": "John Doe", "phones": ["0700000000"]});
    assert_eq!(
        app.put_contact(&acme.sync_token, "12345", &put)
            .await
            .status(),
        201
    );
    let token = &acme.lookup_token;

    let unknown = app
        .get_raw(&format!(
            "/api/lookup?telephone=0700000001&token={token}&type=json&root_tag=\
             &send_request_headers=0&ignore_response=0"
        ))
        .await;
    assert_eq!(unknown.headers()["content-type"], "application/json");
    assert_eq!(unknown.text().await.unwrap(), UNKNOWN_ANSWER);

    // A found answer: everything but the (per-call) screen-pop link is the same bytes.
    let strip = |text: String| text.split("/pop/").next().unwrap().to_owned();
    let plain = app
        .get_raw(&format!("/api/lookup?telephone=0700000000&token={token}"))
        .await
        .text()
        .await
        .unwrap();
    let typed = app
        .get_raw(&format!(
            "/api/lookup?telephone=0700000000&token={token}&type=json&root_tag=x"
        ))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        plain.starts_with(r#"{"id":12345,"name":"John Doe","#),
        "{plain}"
    );
    assert_eq!(strip(typed), strip(plain));
}
