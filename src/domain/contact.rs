//! A contact as the CRM sends it (`ContactInput`) and as cidgate stores it (`ContactRecord`).

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use serde::Serialize;
use serde_json::{Map, Value};

use super::crm_id::CrmId;
use super::phone_number::{PhoneNumber, Region};
use super::routing::{FieldKind, FieldValue, RoutingField, RoutingFields};
use super::text::{BIDI_CONTROLS, display_problem, is_bidi_control};

const MAX_NAME_CHARS: usize = 256;
const MAX_PHONES: usize = 32;
/// Entries a `phones` array may hold: repeats collapse, so the limit is on distinct
/// numbers; the raw count is bounded only to bound the work.
pub const MAX_PHONE_ENTRIES: usize = 4 * MAX_PHONES;
const MAX_ATTRIBUTES_BYTES: usize = 16 * 1024;

/// How far ahead of this server's clock a source's `updated_at` may be. Writes are
/// ordered by it, so one far in the future (a year 9999 from a broken export) would
/// make every later write of that contact stale, for good. A day is more than any
/// clock skew or time-zone slip of a sync job, and still bounds the damage.
pub const MAX_UPDATED_AT_AHEAD: TimeDelta = TimeDelta::hours(24);

/// Fields a contact body may carry; anything else is refused so typos do not vanish.
pub const CONTACT_FIELDS: [&str; RoutingField::COUNT + 4] =
    RoutingField::names_between(&["name", "phones"], &["attributes", "updated_at"]);

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
    pub routing: RoutingFields,
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
        let routing = RoutingFields::from_fn(|field| check.routing(field));
        let attributes = check.attributes();
        let updated_at = check.timestamp("updated_at");
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Self {
            name: name.unwrap_or_default(),
            phones,
            routing,
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
        if items.len() > MAX_PHONE_ENTRIES {
            self.fail(
                "phones",
                format!("must hold at most {MAX_PHONE_ENTRIES} entries"),
            );
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

    fn routing(&mut self, field: RoutingField) -> Option<FieldValue<'a>> {
        let name = field.name();
        match field.kind() {
            FieldKind::Text { max_chars } => self.text(name, max_chars).map(FieldValue::Text),
            FieldKind::Url { max_chars } => self.url(name, max_chars).map(FieldValue::Text),
            FieldKind::Integer { min, max } => {
                self.integer(name, min, max).map(FieldValue::Integer)
            }
        }
    }

    /// Optional text: absent, null and "" all mean "not set".
    fn text(&mut self, field: &str, max_chars: usize) -> Option<&'a str> {
        match self.get(field) {
            None => None,
            Some(Value::String(s)) if s.trim().is_empty() => None,
            Some(Value::String(s)) => match plain_text(s.trim(), max_chars) {
                Ok(()) => Some(s.trim()),
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

    fn integer(&mut self, field: &str, min: i16, max: i16) -> Option<i16> {
        let value = self.get(field)?;
        // 3.0 is an integer too (JSON does not tell them apart).
        let integer = value.as_i64().or_else(|| {
            value
                .as_f64()
                .filter(|f| f.fract() == 0.0)
                .map(|f| f as i64)
        });
        match integer.and_then(|n| i16::try_from(n).ok()) {
            Some(n) if (min..=max).contains(&n) => Some(n),
            _ => {
                self.fail(
                    field,
                    format!("must be an integer from {min} to {max}, or null"),
                );
                None
            }
        }
    }

    fn url(&mut self, field: &str, max_chars: usize) -> Option<&'a str> {
        let raw = self.text(field, max_chars)?;
        // The text is what pages link to, so it must say `//` itself: the URL parser
        // reads `http:alert(1)` as `http://alert(1)/`, a browser as a relative link.
        let lower = raw.get(..8).unwrap_or(raw).to_ascii_lowercase();
        let spelled_out = lower.starts_with("http://") || lower.starts_with("https://");
        match url::Url::parse(raw) {
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
    #[serde(flatten)]
    pub routing: RoutingFields,
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
mod tests;
