use std::fmt;

use serde::{Serialize, Serializer};

use super::text::{BIDI_CONTROLS, is_bidi_control};

const MAX_LEN: usize = 128;

/// The CRM's own id for a contact. Answered as a JSON number when it is an integer
/// (as in the PBX reference), else as a string.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CrmId(String);

impl CrmId {
    pub fn parse(raw: &str) -> Result<Self, String> {
        if raw.is_empty() {
            return Err("must not be empty".into());
        }
        if raw.chars().count() > MAX_LEN {
            return Err(format!("must be at most {MAX_LEN} characters"));
        }
        if raw.chars().any(char::is_control) {
            return Err("must not contain control characters".into());
        }
        Ok(Self(raw.to_owned()))
    }

    /// The id of a contact being created or replaced: shown on the pop page and
    /// answered to PBXs, so no bidi controls either. Reads and deletes use [`parse`]
    /// alone, so a contact stored before this rule can still be read and removed.
    ///
    /// [`parse`]: Self::parse
    pub fn parse_for_upsert(raw: &str) -> Result<Self, String> {
        if raw.chars().any(is_bidi_control) {
            return Err(BIDI_CONTROLS.into());
        }
        Self::parse(raw)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id as an integer when it is written canonically (`12345`, not `012345`),
    /// so that turning it into a JSON number loses nothing.
    pub fn as_integer(&self) -> Option<i64> {
        integer_id(&self.0)
    }
}

/// A CRM id as an integer when it is written canonically (`12345`, not `012345`).
pub fn integer_id(id: &str) -> Option<i64> {
    let value: i64 = id.parse().ok()?;
    (value.to_string() == id).then_some(value)
}

impl fmt::Display for CrmId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for CrmId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.as_integer() {
            Some(value) => serializer.serialize_i64(value),
            None => serializer.serialize_str(&self.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(raw: &str) -> String {
        serde_json::to_string(&CrmId::parse(raw).unwrap()).unwrap()
    }

    #[test]
    fn integer_ids_serialize_as_numbers_and_others_as_strings() {
        assert_eq!(json("12345"), "12345");
        assert_eq!(json("-7"), "-7");
        assert_eq!(json("012345"), "\"012345\"");
        assert_eq!(json("+1"), "\"+1\"");
        assert_eq!(json("99999999999999999999"), "\"99999999999999999999\"");
        assert_eq!(json("0031f00000AbCdE"), "\"0031f00000AbCdE\"");
    }

    #[test]
    fn ids_must_be_printable_and_bounded() {
        assert!(CrmId::parse("").is_err());
        assert!(CrmId::parse("a\nb").is_err());
        assert!(CrmId::parse(&"x".repeat(129)).is_err());
        assert!(CrmId::parse(&"x".repeat(128)).is_ok());
    }

    #[test]
    fn an_upserted_id_has_no_bidi_controls_but_an_old_one_can_still_be_addressed() {
        assert!(CrmId::parse_for_upsert("12\u{202E}34").is_err());
        assert!(CrmId::parse_for_upsert("a\nb").is_err());
        assert!(CrmId::parse_for_upsert("רשומה-7").is_ok());
        assert!(CrmId::parse("12\u{202E}34").is_ok());
    }
}
