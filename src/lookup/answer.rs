//! The answer a PBX routes on: exactly nine keys, in the reference's order.

use std::borrow::Cow;

use serde::ser::{Serialize, SerializeStruct, Serializer};

use crate::domain::{LookupHit, RoutingField, integer_id};

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
}

impl<'a> LookupAnswer<'a> {
    pub fn new(hit: Option<&'a LookupHit>, backend_link: Option<Cow<'a, str>>) -> Self {
        Self { hit, backend_link }
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
            Key::Name => answer.serialize_field("name", &self.hit.map(LookupHit::name)),
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
    use crate::domain::{FieldKind, FieldValue};

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
    fn integer_ids_are_numbers_and_other_ids_strings() {
        let numeric = LookupHit::new("12345", "A", |_| None);
        let text = LookupHit::new("012345", "B", |_| None);
        let json = |hit: &LookupHit| serde_json::to_value(LookupAnswer::found(hit)).unwrap();
        assert_eq!(json(&numeric)["id"], 12345);
        assert_eq!(json(&text)["id"], "012345");
    }
}
