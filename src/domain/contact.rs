//! A contact as the CRM sends it (`ContactInput`) and as cidgate stores it (`ContactRecord`).

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use serde::Serialize;
use serde_json::{Map, Value};

use super::crm_id::CrmId;
use super::phone_number::{PhoneNumber, Region};
use super::text::{BIDI_CONTROLS, display_problem, is_bidi_control};

const MAX_NAME_CHARS: usize = 256;
const MAX_TEXT_CHARS: usize = 128;
const MAX_URL_LEN: usize = 2048;
const MAX_PHONES: usize = 32;
const MAX_ATTRIBUTES_BYTES: usize = 16 * 1024;

/// How far ahead of this server's clock a source's `updated_at` may be. Writes are
/// ordered by it, so one far in the future (a year 9999 from a broken export) would
/// make every later write of that contact stale, for good. A day is more than any
/// clock skew or time-zone slip of a sync job, and still bounds the damage.
pub const MAX_UPDATED_AT_AHEAD: TimeDelta = TimeDelta::hours(24);

/// Fields a contact body may carry; anything else is refused so typos do not vanish.
pub const CONTACT_FIELDS: &[&str] = &[
    "name",
    "phones",
    "direct_line",
    "queue_position",
    "route_identifier",
    "outbound_number",
    "language",
    "external_id",
    "crm_url",
    "attributes",
    "updated_at",
];

/// One thing wrong with an input, named by its JSON path (`phones[1]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// Position in a batch, when the error belongs to one item of it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index: Option<usize>,
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            index: None,
            field: field.into(),
            message: message.into(),
        }
    }

    pub fn at(mut self, index: usize) -> Self {
        self.index = Some(index);
        self
    }
}

/// A validated contact write: every field checked, phones normalized and deduplicated.
#[derive(Debug, Clone, PartialEq)]
pub struct ContactInput {
    pub name: String,
    pub phones: Vec<PhoneNumber>,
    pub direct_line: Option<String>,
    pub queue_position: Option<i16>,
    pub route_identifier: Option<String>,
    pub outbound_number: Option<String>,
    pub language: Option<String>,
    pub external_id: Option<String>,
    pub crm_url: Option<String>,
    pub attributes: Map<String, Value>,
    pub updated_at: Option<DateTime<Utc>>,
}

impl ContactInput {
    /// Validates a JSON object. `also_allowed` names envelope keys (`op`, `id`) that the
    /// caller handles itself. Returns every problem found, not just the first.
    pub fn from_json(
        body: &Map<String, Value>,
        region: Region,
        also_allowed: &[&str],
    ) -> Result<Self, Vec<FieldError>> {
        let mut errors = Vec::new();
        for key in body.keys() {
            if !CONTACT_FIELDS.contains(&key.as_str()) && !also_allowed.contains(&key.as_str()) {
                errors.push(FieldError::new(key, "is not a known field"));
            }
        }
        let mut check = Checker {
            body,
            errors: &mut errors,
            now: Utc::now(),
        };
        let name = check.name();
        let phones = check.phones(region);
        let direct_line = check.text("direct_line", MAX_TEXT_CHARS);
        let queue_position = check.queue_position();
        let route_identifier = check.text("route_identifier", MAX_TEXT_CHARS);
        let outbound_number = check.text("outbound_number", MAX_TEXT_CHARS);
        let language = check.text("language", 35);
        let external_id = check.text("external_id", MAX_TEXT_CHARS);
        let crm_url = check.url("crm_url");
        let attributes = check.attributes();
        let updated_at = check.timestamp("updated_at");
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Self {
            name: name.unwrap_or_default(),
            phones,
            direct_line,
            queue_position,
            route_identifier,
            outbound_number,
            language,
            external_id,
            crm_url,
            attributes,
            updated_at,
        })
    }
}

struct Checker<'a> {
    body: &'a Map<String, Value>,
    errors: &'a mut Vec<FieldError>,
    now: DateTime<Utc>,
}

impl<'a> Checker<'a> {
    fn fail(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.errors.push(FieldError::new(field, message));
    }

    /// A field that is absent or JSON null.
    fn get(&self, field: &str) -> Option<&'a Value> {
        self.body.get(field).filter(|v| !v.is_null())
    }

    fn name(&mut self) -> Option<String> {
        match self.get("name") {
            None => self.fail("name", "is required"),
            Some(Value::String(s)) => {
                let name = s.trim();
                if name.is_empty() {
                    self.fail("name", "must not be empty");
                } else if let Err(message) = plain_text(name, MAX_NAME_CHARS) {
                    self.fail("name", message);
                } else {
                    return Some(name.to_owned());
                }
            }
            Some(_) => self.fail("name", "must be a string"),
        }
        None
    }

    fn phones(&mut self, region: Region) -> Vec<PhoneNumber> {
        let items = match self.get("phones") {
            None => {
                self.fail("phones", "is required (an array of phone numbers)");
                return Vec::new();
            }
            Some(Value::Array(items)) => items,
            Some(_) => {
                self.fail("phones", "must be an array of strings");
                return Vec::new();
            }
        };
        // Repeats collapse, so the limit is on distinct numbers; the raw count is
        // bounded only to bound the work.
        if items.len() > 4 * MAX_PHONES {
            let entries = 4 * MAX_PHONES;
            self.fail("phones", format!("must hold at most {entries} entries"));
            return Vec::new();
        }
        let mut phones: Vec<PhoneNumber> = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let field = format!("phones[{i}]");
            let Value::String(raw) = item else {
                self.fail(field, "must be a string");
                continue;
            };
            match PhoneNumber::parse(raw, region) {
                Ok(number) if !phones.contains(&number) => phones.push(number),
                Ok(_) => {}
                Err(e) => self.fail(field, e.to_string()),
            }
        }
        if phones.len() > MAX_PHONES {
            self.fail("phones", format!("must hold at most {MAX_PHONES} numbers"));
        }
        phones
    }

    /// Optional text: absent, null and "" all mean "not set".
    fn text(&mut self, field: &str, max_chars: usize) -> Option<String> {
        match self.get(field) {
            None => None,
            Some(Value::String(s)) if s.trim().is_empty() => None,
            Some(Value::String(s)) => match plain_text(s.trim(), max_chars) {
                Ok(()) => Some(s.trim().to_owned()),
                Err(message) => {
                    self.fail(field, message);
                    None
                }
            },
            Some(_) => {
                self.fail(field, "must be a string or null");
                None
            }
        }
    }

    fn queue_position(&mut self) -> Option<i16> {
        let value = self.get("queue_position")?;
        // 3.0 is an integer too (JSON does not tell them apart).
        let integer = value.as_i64().or_else(|| {
            value
                .as_f64()
                .filter(|f| f.fract() == 0.0)
                .map(|f| f as i64)
        });
        match integer {
            Some(n @ 0..=100) => Some(n as i16),
            _ => {
                self.fail(
                    "queue_position",
                    "must be an integer from 0 to 100, or null",
                );
                None
            }
        }
    }

    fn url(&mut self, field: &str) -> Option<String> {
        let raw = self.text(field, MAX_URL_LEN)?;
        // The text is what pages link to, so it must say `//` itself: the URL parser
        // reads `http:alert(1)` as `http://alert(1)/`, a browser as a relative link.
        let lower = raw.get(..8).unwrap_or(&raw).to_ascii_lowercase();
        let spelled_out = lower.starts_with("http://") || lower.starts_with("https://");
        match url::Url::parse(&raw) {
            Ok(u) if spelled_out && matches!(u.scheme(), "http" | "https") && u.has_host() => {
                Some(raw)
            }
            _ => {
                self.fail(field, "must be an absolute http:// or https:// URL");
                None
            }
        }
    }

    fn attributes(&mut self) -> Map<String, Value> {
        match self.get("attributes") {
            None => Map::new(),
            Some(Value::Object(map)) => {
                let size = serde_json::to_vec(map).map_or(usize::MAX, |v| v.len());
                if size > MAX_ATTRIBUTES_BYTES {
                    self.fail(
                        "attributes",
                        format!("must be at most {MAX_ATTRIBUTES_BYTES} bytes of JSON"),
                    );
                } else if object_holds(map, |c| c == '\0') {
                    // PostgreSQL text cannot hold it, and a page would show it raw.
                    self.fail("attributes", "must not contain NUL characters (\\u0000)");
                } else if object_holds(map, is_bidi_control) {
                    // The pop page shows every key and value.
                    self.fail("attributes", BIDI_CONTROLS);
                }
                map.clone()
            }
            Some(_) => {
                self.fail("attributes", "must be a JSON object");
                Map::new()
            }
        }
    }

    fn timestamp(&mut self, field: &str) -> Option<DateTime<Utc>> {
        let value = self.get(field)?;
        parse_source_time(value, self.now)
            .map_err(|message| self.fail(field, message))
            .ok()
    }
}

/// The source's time of a change (the `updated_at` of an upsert or a delete): an RFC
/// 3339 string at most [`MAX_UPDATED_AT_AHEAD`] ahead of `now`.
pub fn parse_source_time(value: &Value, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    let Some(Ok(time)) = value.as_str().map(DateTime::parse_from_rfc3339) else {
        return Err("must be an RFC 3339 timestamp such as 2026-11-20T10:00:00Z".into());
    };
    let time = time.with_timezone(&Utc);
    if time > now + MAX_UPDATED_AT_AHEAD {
        return Err(format!(
            "must not be more than {} hours ahead of the server's clock (now {})",
            MAX_UPDATED_AT_AHEAD.num_hours(),
            now.to_rfc3339_opts(SecondsFormat::Secs, true)
        ));
    }
    Ok(time)
}

fn plain_text(s: &str, max_chars: usize) -> Result<(), String> {
    if s.chars().count() > max_chars {
        return Err(format!("must be at most {max_chars} characters"));
    }
    match display_problem(s) {
        Some(problem) => Err(problem.into()),
        None => Ok(()),
    }
}

/// A contact as stored in the mirror.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ContactRecord {
    pub id: CrmId,
    pub name: String,
    pub phones: Vec<String>,
    pub direct_line: Option<String>,
    pub queue_position: Option<i16>,
    pub route_identifier: Option<String>,
    pub outbound_number: Option<String>,
    pub language: Option<String>,
    pub external_id: Option<String>,
    pub crm_url: Option<String>,
    pub attributes: Value,
    pub updated_at: Option<DateTime<Utc>>,
}

/// True when a string anywhere in the JSON object (keys included) holds a `wanted` char.
fn object_holds(map: &Map<String, Value>, wanted: fn(char) -> bool) -> bool {
    map.iter()
        .any(|(k, v)| k.contains(wanted) || holds(v, wanted))
}

fn holds(value: &Value, wanted: fn(char) -> bool) -> bool {
    match value {
        Value::String(s) => s.contains(wanted),
        Value::Array(items) => items.iter().any(|item| holds(item, wanted)),
        Value::Object(map) => object_holds(map, wanted),
        Value::Null | Value::Bool(_) | Value::Number(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

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
        assert_eq!(c.queue_position, None);
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
        let c = validate(json!({"name": "A", "phones": [], "direct_line": "", "language": null}))
            .unwrap();
        assert_eq!(c.direct_line, None);
        assert_eq!(c.language, None);
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

        let errors =
            validate(json!({"name": "A", "phones": [], "updated_at": "9999-12-31T23:59:59Z"}))
                .unwrap_err();
        assert_eq!(fields(errors), ["updated_at"]);
    }

    #[test]
    fn updated_at_accepts_offsets_and_stores_utc() {
        let c =
            validate(json!({"name": "A", "phones": [], "updated_at": "2026-11-20T12:00:00+02:00"}))
                .unwrap();
        assert_eq!(
            c.updated_at.unwrap().to_rfc3339(),
            "2026-11-20T10:00:00+00:00"
        );
    }
}
