//! Validation of contact input, field by field.

use serde_json::json;

use super::*;
use crate::domain::{FieldKind, RoutingField};

fn validate(body: Value) -> Result<ContactInput, Vec<FieldError>> {
    let region = Region::parse("RO").unwrap();
    ContactInput::from_json(body.as_object().unwrap(), region, &[])
}

fn fields(errors: Vec<FieldError>) -> Vec<String> {
    errors.into_iter().map(|e| e.field).collect()
}

#[test]
fn a_minimal_contact_needs_only_name_and_phones() {
    let c = validate(json!({"name": " John Doe ", "phones": ["0721 234 567", "+40721234567"]}))
        .unwrap();
    assert_eq!(c.name, "John Doe");
    assert_eq!(c.phones.len(), 1, "duplicates after normalization collapse");
    assert_eq!(c.phones[0].as_str(), "+40721234567");
    assert_eq!(c.routing, RoutingFields::default());
    assert!(c.attributes.is_empty());
}

#[test]
fn the_phone_limit_counts_distinct_numbers() {
    let repeated = vec!["0721234567"; 40];
    let c = validate(json!({"name": "A", "phones": repeated})).unwrap();
    assert_eq!(c.phones.len(), 1);

    let distinct: Vec<String> = (0..33).map(|i| format!("07212345{i:02}")).collect();
    let errors = validate(json!({"name": "A", "phones": distinct})).unwrap_err();
    assert_eq!(fields(errors), ["phones"]);
}

#[test]
fn attributes_may_not_hide_a_nul_anywhere() {
    for attributes in [
        json!({"note": "a\u{0}b"}),
        json!({"list": [1, {"deep": "\u{0}"}]}),
        json!({"key\u{0}": 1}),
    ] {
        let errors =
            validate(json!({"name": "A", "phones": [], "attributes": attributes})).unwrap_err();
        assert_eq!(fields(errors), ["attributes"]);
    }
    let fine = json!({"note": "line one\nline two", "n": [1, null, true]});
    assert!(validate(json!({"name": "A", "phones": [], "attributes": fine})).is_ok());
}

#[test]
fn display_text_refuses_bidi_controls_and_keeps_names_in_any_script() {
    for name in ["Zoë Ștefănescu", "محمد عبد الله", "דוד לוי"] {
        let c = validate(json!({"name": name, "phones": [], "external_id": name}));
        assert_eq!(c.unwrap().name, name);
    }
    let spoof = "Ana \u{202E}lasreveR";
    for field in [
        "name",
        "direct_line",
        "route_identifier",
        "outbound_number",
        "language",
        "external_id",
    ] {
        let mut body = json!({"name": "A", "phones": []});
        body[field] = json!(spoof);
        let errors = validate(body).unwrap_err();
        assert_eq!(fields(errors.clone()), [field]);
        assert!(
            errors[0].message.contains("U+202A"),
            "{}",
            errors[0].message
        );
    }
    let url = "https://crm.example.com/\u{2066}x";
    let errors = validate(json!({"name": "A", "phones": [], "crm_url": url})).unwrap_err();
    assert_eq!(fields(errors), ["crm_url"]);
    for attributes in [
        json!({"note": "a\u{2067}b"}),
        json!({"list": [{"deep": "\u{202B}"}]}),
        json!({"key\u{2069}": 1}),
    ] {
        let errors =
            validate(json!({"name": "A", "phones": [], "attributes": attributes})).unwrap_err();
        assert_eq!(fields(errors), ["attributes"]);
    }
}

#[test]
fn a_withheld_word_is_no_phone_number() {
    let errors = validate(json!({"name": "A", "phones": ["anonymous"]})).unwrap_err();
    assert_eq!(errors[0].field, "phones[0]");
    assert_eq!(errors[0].message, "is empty or withheld");
}

#[test]
fn a_crm_url_must_spell_out_its_scheme_and_host() {
    for url in [
        "http:alert(1)",
        "https:example.com/x",
        "javascript:alert(1)",
        "//example.com",
    ] {
        let body = json!({"name": "A", "phones": ["0721234567"], "crm_url": url});
        let errors = validate(body).unwrap_err();
        assert_eq!(fields(errors), ["crm_url"], "{url}");
    }
    for url in ["https://crm.example.com/c/1", "HTTP://crm.example.com"] {
        let body = json!({"name": "A", "phones": ["0721234567"], "crm_url": url});
        assert!(validate(body).is_ok(), "{url}");
    }
}

#[test]
fn every_invalid_field_is_reported_by_name() {
    let errors = validate(json!({
        "phones": ["0721234567", "call me", 7],
        "queue_position": 101,
        "crm_url": "javascript:alert(1)",
        "attributes": [1],
        "updated_at": "yesterday",
        "direct_line": 5,
        "colour": "red"
    }))
    .unwrap_err();
    let mut got = fields(errors);
    got.sort();
    assert_eq!(
        got,
        [
            "attributes",
            "colour",
            "crm_url",
            "direct_line",
            "name",
            "phones[1]",
            "phones[2]",
            "queue_position",
            "updated_at"
        ]
    );
}

#[test]
fn empty_optional_strings_mean_not_set() {
    let c =
        validate(json!({"name": "A", "phones": [], "direct_line": "", "language": null})).unwrap();
    assert_eq!(c.routing.direct_line, None);
    assert_eq!(c.routing.language, None);
}

#[test]
fn queue_position_bounds_are_inclusive() {
    for (value, ok) in [
        (json!(0), true),
        (json!(100), true),
        (json!(-1), false),
        (json!(1.5), false),
        (json!("5"), false),
    ] {
        let r = validate(json!({"name": "A", "phones": [], "queue_position": value}));
        assert_eq!(r.is_ok(), ok, "{value}");
    }
}

#[test]
fn updated_at_may_be_at_most_a_day_ahead_of_the_clock() {
    let now = DateTime::parse_from_rfc3339("2026-11-20T10:00:00Z")
        .unwrap()
        .with_timezone(&Utc);
    let at = |raw: &str| parse_source_time(&json!(raw), now);
    assert!(at("2026-11-21T10:00:00Z").is_ok(), "exactly a day ahead");
    assert!(
        at("2026-11-21T12:00:00+02:00").is_ok(),
        "the same, with an offset"
    );
    assert!(
        at("1970-01-01T00:00:00Z").is_ok(),
        "the past is not bounded"
    );
    for ahead in ["2026-11-21T10:00:01Z", "9999-12-31T23:59:59Z"] {
        let message = at(ahead).unwrap_err();
        assert_eq!(
            message,
            "must not be more than 24 hours ahead of the server's clock (now 2026-11-20T10:00:00Z)"
        );
    }
    assert!(parse_source_time(&json!(1), now).is_err());

    let errors = validate(json!({"name": "A", "phones": [], "updated_at": "9999-12-31T23:59:59Z"}))
        .unwrap_err();
    assert_eq!(fields(errors), ["updated_at"]);
}

#[test]
fn updated_at_accepts_offsets_and_stores_utc() {
    let c = validate(json!({"name": "A", "phones": [], "updated_at": "2026-11-20T12:00:00+02:00"}))
        .unwrap();
    assert_eq!(
        c.updated_at.unwrap().to_rfc3339(),
        "2026-11-20T10:00:00+00:00"
    );
}

/// A value every check of the field's kind accepts, and one of the wrong type.
fn sample(field: RoutingField) -> (Value, Value) {
    match field.kind() {
        FieldKind::Text { max_chars } => (json!("é".repeat(max_chars)), json!(1)),
        FieldKind::Url { .. } => (json!("https://crm.example.com/c/1"), json!(1)),
        FieldKind::Integer { max, .. } => (json!(max), json!(max.to_string())),
    }
}

#[test]
fn every_routing_field_is_a_known_key_and_checked_by_its_kind() {
    for &field in RoutingField::ALL {
        let name = field.name();
        assert!(CONTACT_FIELDS.contains(&name), "{name}");
        let (good, bad) = sample(field);
        let mut body = json!({"name": "A", "phones": []});
        body[name] = good.clone();
        let c = validate(body.clone()).unwrap();
        let read = serde_json::to_value(c.routing.get(field)).unwrap();
        assert_eq!(read, good, "{name}");
        body[name] = bad;
        assert_eq!(fields(validate(body.clone()).unwrap_err()), [name]);
        body[name] = Value::Null;
        assert_eq!(validate(body).unwrap().routing.get(field), None, "{name}");
    }
    assert_eq!(CONTACT_FIELDS.len(), RoutingField::COUNT + 4);
}

#[test]
fn text_past_its_length_is_refused_with_the_limit() {
    for &field in RoutingField::ALL {
        let (FieldKind::Text { max_chars } | FieldKind::Url { max_chars }) = field.kind() else {
            continue;
        };
        let mut body = json!({"name": "A", "phones": []});
        body[field.name()] = json!(format!("https://x.example/{}", "a".repeat(max_chars)));
        let errors = validate(body).unwrap_err();
        assert_eq!(errors[0].field, field.name());
        assert_eq!(
            errors[0].message,
            format!("must be at most {max_chars} characters")
        );
    }
}
