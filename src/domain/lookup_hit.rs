//! The fields a PBX lookup answers with, packed into one allocation: millions of these
//! sit in the cache, so each byte counts.

/// The text fields of a hit, in storage order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HitField {
    Id = 0,
    Name,
    DirectLine,
    RouteIdentifier,
    OutboundNumber,
    Language,
    ExternalId,
    CrmUrl,
}

const FIELDS: usize = 8;

/// A found contact as the lookup needs it. All text lives in one shared `Arc<str>`
/// (cloning a hit out of the cache costs a reference count, not a copy);
/// `ends[i]` is where field `i` stops, `present` has bit `i` set when field `i` is set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LookupHit {
    text: std::sync::Arc<str>,
    ends: [u32; FIELDS],
    present: u8,
    queue_position: i16,
}

/// The optional text fields, in `HitField` order after id and name.
#[derive(Default)]
pub struct OptionalFields<'a> {
    pub direct_line: Option<&'a str>,
    pub route_identifier: Option<&'a str>,
    pub outbound_number: Option<&'a str>,
    pub language: Option<&'a str>,
    pub external_id: Option<&'a str>,
    pub crm_url: Option<&'a str>,
}

impl LookupHit {
    pub fn new(
        id: &str,
        name: &str,
        optional: OptionalFields<'_>,
        queue_position: Option<i16>,
    ) -> Self {
        let values = [
            Some(id),
            Some(name),
            optional.direct_line,
            optional.route_identifier,
            optional.outbound_number,
            optional.language,
            optional.external_id,
            optional.crm_url,
        ];
        let mut text = String::with_capacity(values.iter().flatten().map(|v| v.len()).sum());
        let mut ends = [0u32; FIELDS];
        let mut present = 0u8;
        for (i, value) in values.iter().enumerate() {
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
            queue_position: queue_position.unwrap_or(-1),
        }
    }

    pub fn get(&self, field: HitField) -> Option<&str> {
        let i = field as usize;
        if self.present & (1 << i) == 0 {
            return None;
        }
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        self.text.get(start..self.ends[i] as usize)
    }

    pub fn id(&self) -> &str {
        self.get(HitField::Id).unwrap_or_default()
    }

    pub fn name(&self) -> &str {
        self.get(HitField::Name).unwrap_or_default()
    }

    pub fn queue_position(&self) -> Option<i16> {
        (self.queue_position >= 0).then_some(self.queue_position)
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

    #[test]
    fn every_field_reads_back_and_unset_fields_stay_unset() {
        let hit = LookupHit::new(
            "12345",
            "John Doe",
            OptionalFields {
                direct_line: Some("SIP/john"),
                route_identifier: None,
                outbound_number: Some(""),
                language: Some("ro"),
                external_id: None,
                crm_url: Some("https://crm.example.com/c/12345"),
            },
            Some(0),
        );
        assert_eq!(hit.id(), "12345");
        assert_eq!(hit.name(), "John Doe");
        assert_eq!(hit.get(HitField::DirectLine), Some("SIP/john"));
        assert_eq!(hit.get(HitField::RouteIdentifier), None);
        assert_eq!(
            hit.get(HitField::OutboundNumber),
            Some(""),
            "empty is not unset"
        );
        assert_eq!(hit.get(HitField::Language), Some("ro"));
        assert_eq!(hit.get(HitField::ExternalId), None);
        assert_eq!(
            hit.get(HitField::CrmUrl),
            Some("https://crm.example.com/c/12345")
        );
        assert_eq!(hit.queue_position(), Some(0));
    }

    #[test]
    fn a_missing_queue_position_is_none_and_multibyte_text_survives() {
        let none = OptionalFields::default();
        let hit = LookupHit::new("ö-1", "Ștefan Îonescu 日本", none, None);
        assert_eq!(hit.id(), "ö-1");
        assert_eq!(hit.name(), "Ștefan Îonescu 日本");
        assert_eq!(hit.queue_position(), None);
    }
}
