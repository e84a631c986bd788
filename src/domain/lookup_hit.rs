//! The fields a PBX lookup answers with, packed into one allocation: millions of these
//! sit in the cache, so each byte counts.

use super::routing::{FieldKind, FieldValue, RoutingField};

/// Where a hit keeps a routing field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    /// The `i`th text: 0 is the id, 1 the name, then the text fields.
    Text(usize),
    /// The `i`th integer.
    Integer(usize),
    /// Not kept: the lookup does not use the field.
    None,
}

/// The slot of each routing field (by its position in [`RoutingField::ALL`]), the
/// number of texts and the number of integers.
const LAYOUT: ([Slot; RoutingField::COUNT], usize, usize) = {
    let mut slots = [Slot::None; RoutingField::COUNT];
    let (mut texts, mut integers) = (2, 0);
    let mut i = 0;
    while i < RoutingField::COUNT {
        if RoutingField::IN_LOOKUP[i] {
            if let FieldKind::Integer { .. } = RoutingField::KINDS[i] {
                slots[i] = Slot::Integer(integers);
                integers += 1;
            } else {
                slots[i] = Slot::Text(texts);
                texts += 1;
            }
        }
        i += 1;
    }
    (slots, texts, integers)
};
const SLOTS: [Slot; RoutingField::COUNT] = LAYOUT.0;
const TEXTS: usize = LAYOUT.1;
const INTEGERS: usize = LAYOUT.2;
const _: () = assert!(TEXTS + INTEGERS <= 16, "LookupHit::present has 16 bits");

/// A found contact as the lookup needs it. All text lives in one shared `Arc<str>`
/// (cloning a hit out of the cache costs a reference count, not a copy);
/// `ends[i]` is where text `i` stops; `present` has bit `i` set when text `i` is set,
/// bit `TEXTS + i` when integer `i` is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LookupHit {
    text: std::sync::Arc<str>,
    ends: [u32; TEXTS],
    present: u16,
    integers: [i16; INTEGERS],
}

impl LookupHit {
    /// Asks `routing` for the fields the lookup uses ([`RoutingField::in_lookup`]), and
    /// for no other.
    pub fn new<'v>(
        id: &'v str,
        name: &'v str,
        mut routing: impl FnMut(RoutingField) -> Option<FieldValue<'v>>,
    ) -> Self {
        let mut texts = [None; TEXTS];
        texts[0] = Some(id);
        texts[1] = Some(name);
        let mut integers = [0; INTEGERS];
        let mut present = 0u16;
        for (&field, &slot) in RoutingField::ALL.iter().zip(&SLOTS) {
            match slot {
                Slot::Text(i) => texts[i] = routing(field).and_then(FieldValue::as_text),
                Slot::Integer(i) => {
                    if let Some(n) = routing(field).and_then(FieldValue::as_integer) {
                        integers[i] = n;
                        present |= 1 << (TEXTS + i);
                    }
                }
                Slot::None => {}
            }
        }
        let mut text = String::with_capacity(texts.iter().flatten().map(|v| v.len()).sum());
        let mut ends = [0u32; TEXTS];
        for (i, value) in texts.iter().enumerate() {
            if let Some(value) = value {
                text.push_str(value);
                present |= 1 << i;
            }
            ends[i] = u32::try_from(text.len()).unwrap_or(u32::MAX);
        }
        Self {
            text: text.into(),
            ends,
            present,
            integers,
        }
    }

    fn text_at(&self, i: usize) -> Option<&str> {
        if self.present & (1 << i) == 0 {
            return None;
        }
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        self.text.get(start..self.ends[i] as usize)
    }

    /// The field's value; `None` also for a field the lookup does not use.
    pub fn get(&self, field: RoutingField) -> Option<FieldValue<'_>> {
        match SLOTS[field as usize] {
            Slot::Text(i) => self.text_at(i).map(FieldValue::Text),
            Slot::Integer(i) => (self.present & (1 << (TEXTS + i)) != 0)
                .then(|| FieldValue::Integer(self.integers[i])),
            Slot::None => None,
        }
    }

    /// A text field's value.
    pub fn text(&self, field: RoutingField) -> Option<&str> {
        self.get(field).and_then(FieldValue::as_text)
    }

    pub fn id(&self) -> &str {
        self.text_at(0).unwrap_or_default()
    }

    pub fn name(&self) -> &str {
        self.text_at(1).unwrap_or_default()
    }

    /// Heap bytes this hit holds beyond its own size (the shared text and its counts),
    /// for the cache's weigher.
    pub fn heap_bytes(&self) -> usize {
        2 * std::mem::size_of::<usize>() + self.text.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::RoutingFields;

    #[test]
    fn every_field_reads_back_and_unset_fields_stay_unset() {
        let fields = RoutingFields {
            direct_line: Some("SIP/john".into()),
            route_identifier: None,
            outbound_number: Some("".into()),
            language: Some("ro".into()),
            external_id: None,
            crm_url: Some("https://crm.example.com/c/12345".into()),
            queue_position: Some(0),
        };
        let hit = LookupHit::new("12345", "John Doe", |f| fields.get(f));
        assert_eq!(hit.id(), "12345");
        assert_eq!(hit.name(), "John Doe");
        for &field in RoutingField::ALL {
            assert_eq!(hit.get(field), fields.get(field), "{field:?}");
        }
        assert_eq!(
            hit.text(RoutingField::OutboundNumber),
            Some(""),
            "empty is not unset"
        );
        assert_eq!(
            hit.get(RoutingField::QueuePosition),
            Some(FieldValue::Integer(0))
        );
    }

    #[test]
    fn a_missing_queue_position_is_none_and_multibyte_text_survives() {
        let hit = LookupHit::new("ö-1", "Ștefan Îonescu 日本", |_| None);
        assert_eq!(hit.id(), "ö-1");
        assert_eq!(hit.name(), "Ștefan Îonescu 日本");
        assert_eq!(hit.get(RoutingField::QueuePosition), None);
    }

    #[test]
    fn a_hit_is_no_larger_than_before_the_field_list() {
        // The cache holds millions: 16 (text) + 4 per text + 2 (present) + 2 per integer.
        assert!(std::mem::size_of::<LookupHit>() <= 56);
    }
}
