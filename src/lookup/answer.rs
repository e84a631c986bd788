//! The answer a PBX routes on: exactly nine keys, in the reference's order.

use std::borrow::Cow;

use serde::ser::{Serialize, SerializeStruct, Serializer};

use crate::domain::{FieldValue, LookupHit, RoutingField, integer_id};

/// A key of the answer.
#[derive(Debug, Clone, Copy)]
enum Key {
    Id,
    Name,
    BackendLink,
    Field(RoutingField),
}

/// The answer's keys, in order: the reference PBX's contract, kept to the byte. A
/// routing field reaches the PBX only by being named here (`crm_url` does not: the
/// backend link stands for it).
const KEYS: [Key; 9] = [
    Key::Id,
    Key::Name,
    Key::Field(RoutingField::QueuePosition),
    Key::Field(RoutingField::DirectLine),
    Key::BackendLink,
    Key::Field(RoutingField::RouteIdentifier),
    Key::Field(RoutingField::OutboundNumber),
    Key::Field(RoutingField::Language),
    Key::Field(RoutingField::ExternalId),
];

// A cached hit keeps every field the answer names.
const _: () = {
    let mut i = 0;
    while i < KEYS.len() {
        if let Key::Field(field) = KEYS[i] {
            assert!(
                field.in_lookup(),
                "an answered field must be kept in the hit"
            );
        }
        i += 1;
    }
};

/// The answer for a found contact or, without a hit, an unknown caller (every key
/// `null`). Serialized straight from the cached hit: nothing is copied or allocated.
#[derive(Debug, Clone, Default)]
pub struct LookupAnswer<'a> {
    hit: Option<&'a LookupHit>,
    /// The signed screen-pop link, set by the handler.
    pub backend_link: Option<Cow<'a, str>>,
    /// For a screened unknown caller: the tenant's screening name and route, answered
    /// as `name` and `route_identifier` (no new key in the nine).
    screened: Option<Screened<'a>>,
}

/// The `name` and `route_identifier` of a screened answer.
#[derive(Debug, Clone, Copy)]
struct Screened<'a> {
    name: Option<&'a str>,
    route: &'a str,
}

impl<'a> LookupAnswer<'a> {
    pub fn new(hit: Option<&'a LookupHit>, backend_link: Option<Cow<'a, str>>) -> Self {
        Self {
            hit,
            backend_link,
            screened: None,
        }
    }

    /// Answers an unknown caller with the tenant's screening `name` and `route` (a
    /// found contact's answer is never screened).
    pub fn screened(mut self, name: Option<&'a str>, route: &'a str) -> Self {
        if self.hit.is_none() {
            self.screened = Some(Screened { name, route });
        }
        self
    }

    fn name(&self) -> Option<&'a str> {
        match (self.hit, self.screened) {
            (Some(hit), _) => Some(hit.name()),
            (None, Some(screened)) => screened.name,
            (None, None) => None,
        }
    }

    pub fn unknown() -> Self {
        Self::default()
    }

    pub fn found(hit: &'a LookupHit) -> Self {
        Self::new(Some(hit), None)
    }
}

impl LookupAnswer<'_> {
    /// Writes one key. Inlined into each of the nine calls below with a constant `key`,
    /// each is as direct as a derived field: as fast as the derived `Serialize` was,
    /// where a loop over `KEYS` measured about 10 % slower.
    #[inline(always)]
    fn write<S: SerializeStruct>(&self, answer: &mut S, key: Key) -> Result<(), S::Error> {
        match key {
            Key::Id => answer.serialize_field("id", &CrmIdJson(self.hit.map(LookupHit::id))),
            Key::Name => answer.serialize_field("name", &self.name()),
            Key::Field(RoutingField::RouteIdentifier) if self.screened.is_some() => answer
                .serialize_field(
                    RoutingField::RouteIdentifier.name(),
                    &self.screened.map(|s| s.route),
                ),
            Key::BackendLink => answer.serialize_field("backend_link", &self.backend_link),
            Key::Field(field) => {
                answer.serialize_field(field.name(), &self.hit.and_then(|h| h.get(field)))
            }
        }
    }
}

impl Serialize for LookupAnswer<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut answer = serializer.serialize_struct("LookupAnswer", KEYS.len())?;
        let [k0, k1, k2, k3, k4, k5, k6, k7, k8] = KEYS;
        self.write(&mut answer, k0)?;
        self.write(&mut answer, k1)?;
        self.write(&mut answer, k2)?;
        self.write(&mut answer, k3)?;
        self.write(&mut answer, k4)?;
        self.write(&mut answer, k5)?;
        self.write(&mut answer, k6)?;
        self.write(&mut answer, k7)?;
        self.write(&mut answer, k8)?;
        answer.end()
    }
}

/// The flat text form (`format=text`), for PBXs that cannot read JSON `null`s safely
/// (Asterisk's `JSON_DECODE`): `found|id|name|queue_position|direct_line|backend_link|
/// route_identifier|outbound_number|language|external_id`, no line end. Every value is
/// percent-encoded (all but `A-Z a-z 0-9 - . _ ~`), so no value holds a `|` and the
/// dialplan splits with `CUT` and reads with `URIDECODE`; a null is empty; the first
/// field is `found` or `unknown`.
impl LookupAnswer<'_> {
    pub fn to_text(&self) -> String {
        let mut out = String::with_capacity(160);
        out.push_str(if self.hit.is_some() {
            "found"
        } else {
            "unknown"
        });
        for key in KEYS {
            out.push('|');
            match key {
                Key::Id => push_encoded(&mut out, self.hit.map(LookupHit::id)),
                Key::Name => push_encoded(&mut out, self.name()),
                Key::Field(RoutingField::RouteIdentifier) if self.screened.is_some() => {
                    push_encoded(&mut out, self.screened.map(|s| s.route));
                }
                Key::BackendLink => push_encoded(&mut out, self.backend_link.as_deref()),
                Key::Field(field) => match self.hit.and_then(|h| h.get(field)) {
                    Some(FieldValue::Integer(n)) => out.push_str(&n.to_string()),
                    Some(FieldValue::Text(text)) => push_encoded(&mut out, Some(text)),
                    None => {}
                },
            }
        }
        out
    }
}

/// The compact JSON form (`format=compact`): the nine keys in their order, those whose
/// value is null left out, so an unknown caller is `{}` and "key present" means "known".
impl LookupAnswer<'_> {
    pub fn to_compact_json(&self) -> String {
        let full = serde_json::to_value(self).unwrap_or_default();
        let mut out = String::from("{");
        for key in KEYS {
            let name = match key {
                Key::Id => "id",
                Key::Name => "name",
                Key::BackendLink => "backend_link",
                Key::Field(field) => field.name(),
            };
            let Some(value) = full.get(name).filter(|v| !v.is_null()) else {
                continue;
            };
            if out.len() > 1 {
                out.push(',');
            }
            out.push_str(&serde_json::Value::from(name).to_string());
            out.push(':');
            out.push_str(&value.to_string());
        }
        out.push('}');
        out
    }
}

/// The XML form (`type=xml`): the nine keys, in order, as child elements of `root`
/// (already checked to be an XML name); a null is an empty element, an unknown caller
/// nine of them.
impl LookupAnswer<'_> {
    pub fn to_xml(&self, root: &str) -> String {
        use crate::phones::xml::{DECLARATION, escape_into};
        let mut out = String::with_capacity(DECLARATION.len() + 320);
        out.push_str(DECLARATION);
        out.push('<');
        out.push_str(root);
        out.push('>');
        for key in KEYS {
            let (name, value): (&str, Option<Cow<'_, str>>) = match key {
                Key::Id => ("id", self.hit.map(|h| Cow::Borrowed(h.id()))),
                Key::Name => ("name", self.hit.map(|h| Cow::Borrowed(h.name()))),
                Key::BackendLink => (
                    "backend_link",
                    self.backend_link.as_deref().map(Cow::Borrowed),
                ),
                Key::Field(field) => (
                    field.name(),
                    match self.hit.and_then(|h| h.get(field)) {
                        Some(FieldValue::Integer(n)) => Some(Cow::Owned(n.to_string())),
                        Some(FieldValue::Text(text)) => Some(Cow::Borrowed(text)),
                        None => None,
                    },
                ),
            };
            out.push('<');
            out.push_str(name);
            match value {
                Some(value) => {
                    out.push('>');
                    escape_into(&mut out, &value);
                    out.push_str("</");
                    out.push_str(name);
                    out.push('>');
                }
                None => out.push_str("/>"),
            }
        }
        out.push_str("</");
        out.push_str(root);
        out.push('>');
        out
    }
}

/// What the text form leaves as it is: RFC 3986's unreserved characters.
const TEXT_ESCAPED: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

fn push_encoded(out: &mut String, value: Option<&str>) {
    if let Some(value) = value {
        out.extend(percent_encoding::utf8_percent_encode(value, TEXT_ESCAPED));
    }
}

/// A CRM id is a JSON number when it is an integer (as in the reference), else a string.
struct CrmIdJson<'a>(Option<&'a str>);

impl Serialize for CrmIdJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            None => serializer.serialize_none(),
            Some(id) => match integer_id(id) {
                Some(n) => serializer.serialize_i64(n),
                None => serializer.serialize_str(id),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::FieldKind;

    #[test]
    fn the_unknown_answer_has_nine_null_keys_in_reference_order() {
        let json = serde_json::to_string(&LookupAnswer::unknown()).unwrap();
        assert_eq!(
            json,
            r#"{"id":null,"name":null,"queue_position":null,"direct_line":null,"backend_link":null,"route_identifier":null,"outbound_number":null,"language":null,"external_id":null}"#
        );
    }

    #[test]
    fn a_found_answer_keeps_the_reference_order_and_leaves_crm_url_out() {
        let hit = LookupHit::new("12345", "John \"J\" Doe", |field| {
            Some(match field.kind() {
                FieldKind::Integer { .. } => FieldValue::Integer(3),
                FieldKind::Text { .. } | FieldKind::Url { .. } => FieldValue::Text(field.name()),
            })
        });
        let link = Some(Cow::Borrowed("https://gw.example.com/pop/1.2.3.4"));
        let json = serde_json::to_string(&LookupAnswer::new(Some(&hit), link)).unwrap();
        assert_eq!(
            json,
            r#"{"id":12345,"name":"John \"J\" Doe","queue_position":3,"direct_line":"direct_line","backend_link":"https://gw.example.com/pop/1.2.3.4","route_identifier":"route_identifier","outbound_number":"outbound_number","language":"language","external_id":"external_id"}"#
        );
    }

    #[test]
    fn a_screened_answer_sets_name_and_route_only_for_an_unknown_caller() {
        let screened = LookupAnswer::unknown().screened(Some("SPAM?"), "screening");
        assert_eq!(
            serde_json::to_string(&screened).unwrap(),
            r#"{"id":null,"name":"SPAM?","queue_position":null,"direct_line":null,"backend_link":null,"route_identifier":"screening","outbound_number":null,"language":null,"external_id":null}"#
        );
        assert_eq!(screened.to_text(), "unknown||SPAM%3F||||screening|||");
        assert_eq!(
            screened.to_compact_json(),
            r#"{"name":"SPAM?","route_identifier":"screening"}"#
        );
        let hit = LookupHit::new("1", "Ana", |_| None);
        let json = serde_json::to_value(LookupAnswer::found(&hit).screened(None, "x")).unwrap();
        assert_eq!(json["name"], "Ana");
        assert!(json["route_identifier"].is_null());
    }

    #[test]
    fn integer_ids_are_numbers_and_other_ids_strings() {
        let numeric = LookupHit::new("12345", "A", |_| None);
        let text = LookupHit::new("012345", "B", |_| None);
        let json = |hit: &LookupHit| serde_json::to_value(LookupAnswer::found(hit)).unwrap();
        assert_eq!(json(&numeric)["id"], 12345);
        assert_eq!(json(&text)["id"], "012345");
    }

    #[test]
    fn the_text_form_encodes_every_value_and_writes_nulls_as_nothing() {
        assert_eq!(LookupAnswer::unknown().to_text(), "unknown|||||||||");
        let hit = LookupHit::new("4294967296", "Ana \"A\" B|C\\", |field| {
            Some(match field.kind() {
                FieldKind::Integer { .. } => FieldValue::Integer(3),
                FieldKind::Text { .. } | FieldKind::Url { .. } => FieldValue::Text("sales-queue"),
            })
        });
        assert_eq!(
            LookupAnswer::found(&hit).to_text(),
            "found|4294967296|Ana%20%22A%22%20B%7CC%5C|3|sales-queue||sales-queue|sales-queue|sales-queue|sales-queue"
        );
    }

    #[test]
    fn the_xml_form_names_the_nine_keys_in_order_and_escapes_values() {
        let unknown = LookupAnswer::unknown().to_xml("contact");
        assert!(unknown.ends_with(
            "<contact><id/><name/><queue_position/><direct_line/><backend_link/>\
             <route_identifier/><outbound_number/><language/><external_id/></contact>"
        ));
        let hit = LookupHit::new("12345", "Ana & <Bob>", |_| None);
        let xml = LookupAnswer::found(&hit).to_xml("r");
        assert!(
            xml.contains("<r><id>12345</id><name>Ana &amp; &lt;Bob&gt;</name><queue_position/>")
        );
    }

    #[test]
    fn the_compact_form_leaves_null_keys_out() {
        assert_eq!(LookupAnswer::unknown().to_compact_json(), "{}");
        let hit = LookupHit::new("12345", "Ana \"A\"", |_| None);
        let link = Some(Cow::Borrowed("https://gw.example.com/pop/1.2"));
        assert_eq!(
            LookupAnswer::new(Some(&hit), link).to_compact_json(),
            r#"{"id":12345,"name":"Ana \"A\"","backend_link":"https://gw.example.com/pop/1.2"}"#
        );
    }
}
