//! The routing fields are listed once (`cidgate::domain::RoutingField`): every field on
//! the list reaches the sync API, the CSV import, the store, the OpenAPI description and
//! the lookup answer's keys (which stay the reference's nine).

use cidgate::domain::{FieldKind, FieldValue, Region, RoutingField, WriteOp};
use serde_json::{Value, json};

use crate::helpers::{PROPAGATION, UNKNOWN_ANSWER, eventually, spawn_app, text_file};

/// A value of the field that every check of its kind accepts, as JSON.
fn sample(field: RoutingField) -> Value {
    match field.kind() {
        FieldKind::Text { .. } => json!(format!("{}-1", field.name())),
        FieldKind::Url { .. } => json!(format!("https://crm.example.com/{}", field.name())),
        FieldKind::Integer { max, .. } => json!(max),
    }
}

fn as_json(value: Option<FieldValue<'_>>) -> Value {
    serde_json::to_value(value).unwrap()
}

fn csv_with_every_field(id: &str, phone: &str) -> String {
    let names: Vec<&str> = RoutingField::ALL.iter().map(|f| f.name()).collect();
    let values: Vec<String> = RoutingField::ALL
        .iter()
        .map(|&f| match sample(f) {
            Value::String(s) => s,
            other => other.to_string(),
        })
        .collect();
    format!(
        "id,name,phones,{}\n{id},Ana,{phone},{}\n",
        names.join(","),
        values.join(",")
    )
}

#[test]
fn every_routing_field_is_a_csv_column_that_reaches_the_contact() {
    let text = csv_with_every_field("1", "0721234567");
    let region = Region::parse("RO").unwrap();
    let parsed = cidgate::contacts::import::parse_csv(text.as_bytes(), region).unwrap();
    assert!(parsed.rejected.is_empty(), "{:?}", parsed.rejected);
    let WriteOp::Upsert(_, contact) = &parsed.ops[0] else {
        panic!("expected an upsert");
    };
    for &field in RoutingField::ALL {
        assert!(cidgate::contacts::import::COLUMNS.contains(&field.name()));
        assert_eq!(
            as_json(contact.routing.get(field)),
            sample(field),
            "{field:?}"
        );
    }
}

#[test]
fn every_routing_field_is_documented_in_the_openapi_description() {
    let spec: Value = serde_json::from_str(cidgate::http::OPENAPI).unwrap();
    let schemas = &spec["components"]["schemas"];
    for &field in RoutingField::ALL {
        let name = field.name();
        for schema in ["ContactInput", "Contact"] {
            let property = &schemas[schema]["properties"][name];
            let wanted = match field.kind() {
                FieldKind::Integer { .. } => "integer",
                FieldKind::Text { .. } | FieldKind::Url { .. } => "string",
            };
            assert_eq!(property["type"], json!([wanted, "null"]), "{schema}.{name}");
        }
        let input = &schemas["ContactInput"]["properties"][name];
        match field.kind() {
            FieldKind::Text { max_chars } | FieldKind::Url { max_chars } => {
                assert_eq!(input["maxLength"], max_chars, "{name}")
            }
            FieldKind::Integer { min, max } => {
                assert_eq!(
                    (&input["minimum"], &input["maximum"]),
                    (&json!(min), &json!(max))
                )
            }
        }
        let required = schemas["Contact"]["required"].as_array().unwrap();
        assert!(required.contains(&json!(name)), "Contact always has {name}");
    }
}

#[tokio::test]
async fn every_routing_field_is_stored_read_back_imported_and_looked_up() {
    let app = spawn_app().await;
    let acme = app.create_tenant("acme", "RO").await;
    let mut body = json!({"name": "Ana", "phones": ["0721234567"]});
    for &field in RoutingField::ALL {
        body[field.name()] = sample(field);
    }
    assert_eq!(
        app.put_contact(&acme.sync_token, "1", &body).await.status(),
        201
    );

    let file = text_file(&csv_with_every_field("2", "0721234568"));
    let output = app.cli(&["import", "--tenant", "acme", file.path().to_str().unwrap()]);
    assert!(output.status.success(), "{output:?}");

    for id in ["1", "2"] {
        let read: Value = app
            .get_contact(&acme.sync_token, id)
            .await
            .json()
            .await
            .unwrap();
        for &field in RoutingField::ALL {
            assert_eq!(read[field.name()], sample(field), "contact {id}: {field:?}");
        }
    }
    eventually(PROPAGATION, "the import reaches the gateway", || async {
        app.lookup_json(&acme.lookup_token, "0721234568").await["id"] == 2
    })
    .await;
    let unknown: Value = serde_json::from_str(UNKNOWN_ANSWER).unwrap();
    let answer = app.lookup_json(&acme.lookup_token, "0721234567").await;
    let keys: Vec<&String> = answer.as_object().unwrap().keys().collect();
    let reference: Vec<&String> = unknown.as_object().unwrap().keys().collect();
    assert_eq!(keys, reference, "the answer keeps the reference's keys");
    for &field in RoutingField::ALL {
        if let Some(value) = answer.get(field.name()) {
            assert_eq!(value, &sample(field), "{field:?}");
        }
    }
}
