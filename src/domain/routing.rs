//! The routing fields of a contact, listed once. The sync API's keys, the CSV columns,
//! the stored columns, the stored record's JSON and the cached lookup hit all come from
//! this list; the PBX's answer and the pop page name the fields they show.
//!
//! A new field is a line below plus a migration adding its column. Tests then ask for
//! the rest: its OpenAPI schema, and on the page a label (`popup::views::Strings`) or a
//! place in `NOT_SHOWN`. The PBX's answer keeps its nine keys unless `lookup::answer`
//! names the field.

use serde::{Serialize, Serializer};

/// How a routing field is checked (and so stored).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKind {
    /// Text shown to people: trimmed, no control or bidi characters, at most this long.
    Text { max_chars: usize },
    /// An absolute `http://` or `https://` URL that pages link to.
    Url { max_chars: usize },
    /// An integer within these bounds.
    Integer { min: i16, max: i16 },
}

/// A routing field's value, borrowed. Serializes as the JSON string or number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldValue<'a> {
    Text(&'a str),
    Integer(i16),
}

impl<'a> FieldValue<'a> {
    pub fn as_text(self) -> Option<&'a str> {
        match self {
            Self::Text(text) => Some(text),
            Self::Integer(_) => None,
        }
    }

    pub fn as_integer(self) -> Option<i16> {
        match self {
            Self::Integer(n) => Some(n),
            Self::Text(_) => None,
        }
    }
}

impl Serialize for FieldValue<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Text(text) => serializer.serialize_str(text),
            Self::Integer(n) => serializer.serialize_i16(*n),
        }
    }
}

/// The Rust type that holds a field of a [`FieldKind`].
pub trait FieldType: Sized {
    fn value(&self) -> FieldValue<'_>;
    /// `None` when the value is of another kind.
    fn from_value(value: FieldValue<'_>) -> Option<Self>;
}

impl FieldType for String {
    fn value(&self) -> FieldValue<'_> {
        FieldValue::Text(self)
    }

    fn from_value(value: FieldValue<'_>) -> Option<Self> {
        value.as_text().map(str::to_owned)
    }
}

impl FieldType for i16 {
    fn value(&self) -> FieldValue<'_> {
        FieldValue::Integer(*self)
    }

    fn from_value(value: FieldValue<'_>) -> Option<Self> {
        value.as_integer()
    }
}

/// Declares [`RoutingField`] (the names, kinds and uses) and [`RoutingFields`] (the
/// values) from one list, so the two cannot drift apart.
macro_rules! routing_fields {
    ($(
        $(#[doc = $doc:literal])*
        $variant:ident $field:ident: $ty:ty = $kind:expr, lookup: $lookup:literal;
    )*) => {
        /// One routing field. The order is the sync API's, the CSV's and the record's.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum RoutingField {
            $($(#[doc = $doc])* $variant,)*
        }

        impl RoutingField {
            pub const ALL: &[Self] = &[$(Self::$variant),*];
            pub const COUNT: usize = Self::ALL.len();
            /// Each field's kind and whether the lookup uses it, by position in [`Self::ALL`]:
            /// plain constants, so layouts computed at compile time (`LookupHit`'s) call no
            /// function (a `const fn` call there makes release builds report a query cycle).
            pub const KINDS: [FieldKind; Self::COUNT] = [$($kind),*];
            pub const IN_LOOKUP: [bool; Self::COUNT] = [$($lookup),*];

            /// The name in JSON, in the CSV header and as the `contacts` column.
            pub const fn name(self) -> &'static str {
                match self {
                    $(Self::$variant => stringify!($field),)*
                }
            }

            pub const fn kind(self) -> FieldKind {
                match self {
                    $(Self::$variant => $kind,)*
                }
            }

            /// True when the lookup uses the field (in its answer, or for the screen-pop
            /// link), so every cached hit keeps it.
            pub const fn in_lookup(self) -> bool {
                match self {
                    $(Self::$variant => $lookup,)*
                }
            }
        }

        /// The routing fields of a contact: what a PBX routes on.
        #[derive(Debug, Clone, Default, PartialEq, Serialize)]
        pub struct RoutingFields {
            $($(#[doc = $doc])* pub $field: Option<$ty>,)*
        }

        impl RoutingFields {
            pub fn get(&self, field: RoutingField) -> Option<FieldValue<'_>> {
                match field {
                    $(RoutingField::$variant => self.$field.as_ref().map(FieldType::value),)*
                }
            }

            /// The fields from `value`, asked once per field in [`RoutingField::ALL`] order.
            /// A value of the wrong kind is dropped.
            pub fn from_fn<'v>(
                mut value: impl FnMut(RoutingField) -> Option<FieldValue<'v>>,
            ) -> Self {
                Self {
                    $($field: value(RoutingField::$variant).and_then(FieldType::from_value),)*
                }
            }
        }
    };
}

const MAX_TEXT_CHARS: usize = 128;

routing_fields! {
    /// The agent or queue the call goes straight to (`SIP/ana`).
    DirectLine direct_line: String = FieldKind::Text { max_chars: MAX_TEXT_CHARS }, lookup: true;
    /// Priority in the queue: 0 is answered first, 100 last.
    QueuePosition queue_position: i16 = FieldKind::Integer { min: 0, max: 100 }, lookup: true;
    /// A special route, which sets the number shown when calling the customer back.
    RouteIdentifier route_identifier: String = FieldKind::Text { max_chars: MAX_TEXT_CHARS }, lookup: true;
    /// The number to show when calling this customer.
    OutboundNumber outbound_number: String = FieldKind::Text { max_chars: MAX_TEXT_CHARS }, lookup: true;
    /// The language the caller is served in (a BCP 47 tag fits in 35 characters).
    Language language: String = FieldKind::Text { max_chars: 35 }, lookup: true;
    /// The contact's id in another system the PBX talks to.
    ExternalId external_id: String = FieldKind::Text { max_chars: MAX_TEXT_CHARS }, lookup: true;
    /// The contact's page in the CRM.
    CrmUrl crm_url: String = FieldKind::Url { max_chars: 2048 }, lookup: true;
}

impl RoutingField {
    pub fn named(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|field| field.name() == name)
    }

    /// `before`, the field names, then `after`: a list of keys or columns.
    pub const fn names_between<const N: usize>(
        before: &[&'static str],
        after: &[&'static str],
    ) -> [&'static str; N] {
        assert!(N == before.len() + Self::COUNT + after.len());
        let mut names = [""; N];
        let mut i = 0;
        while i < before.len() {
            names[i] = before[i];
            i += 1;
        }
        let mut j = 0;
        while j < Self::COUNT {
            names[i] = Self::ALL[j].name();
            i += 1;
            j += 1;
        }
        j = 0;
        while j < after.len() {
            names[i] = after[j];
            i += 1;
            j += 1;
        }
        names
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_is_the_record_and_its_json() {
        let names: Vec<&str> = RoutingField::ALL.iter().map(|f| f.name()).collect();
        assert_eq!(
            names,
            [
                "direct_line",
                "queue_position",
                "route_identifier",
                "outbound_number",
                "language",
                "external_id",
                "crm_url"
            ]
        );
        let sample = |field: RoutingField| match field.kind() {
            FieldKind::Integer { max, .. } => FieldValue::Integer(max),
            FieldKind::Text { .. } | FieldKind::Url { .. } => FieldValue::Text(field.name()),
        };
        let fields = RoutingFields::from_fn(|f| Some(sample(f)));
        let text = serde_json::to_string(&fields).unwrap();
        let at: Vec<usize> = names
            .iter()
            .map(|n| text.find(&format!("\"{n}\"")).unwrap())
            .collect();
        assert!(at.is_sorted(), "serialized in list order: {text}");
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        for &field in RoutingField::ALL {
            assert_eq!(fields.get(field), Some(sample(field)), "{field:?}");
            assert_eq!(
                json[field.name()],
                serde_json::to_value(sample(field)).unwrap()
            );
            assert_eq!(RoutingField::named(field.name()), Some(field));
        }
        let wrong_kind = RoutingFields::from_fn(|f| match sample(f) {
            FieldValue::Text(_) => Some(FieldValue::Integer(1)),
            FieldValue::Integer(_) => Some(FieldValue::Text("1")),
        });
        assert_eq!(wrong_kind, RoutingFields::default());
    }

    #[test]
    fn name_lists_put_the_fields_between_the_others() {
        let names: [&str; RoutingField::COUNT + 2] =
            RoutingField::names_between(&["id"], &["attributes"]);
        assert_eq!(names[0], "id");
        assert_eq!(names[1], "direct_line");
        assert_eq!(names[RoutingField::COUNT], "crm_url");
        assert_eq!(names[RoutingField::COUNT + 1], "attributes");
    }
}
