//! A PBX's report of something that happened to a call (DESIGN §7): validated fields,
//! from a JSON object or a query string (the PBX dialects' adapters are in `calls/`).

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::FieldError;
use super::text::{STORED_CONTROLS, display_problem, storage_problem};

/// The longest PBX call id, GUID, agent or group accepted.
const MAX_ID_CHARS: usize = 128;
/// The longest free text (a caller's name, a tag, an unknown field's value).
const MAX_TEXT_CHARS: usize = 512;
/// Most account codes or tags on one event.
const MAX_LIST_ITEMS: usize = 32;
/// Most unknown fields kept with one event.
const MAX_EXTRA_FIELDS: usize = 64;
/// The longest recording link.
const MAX_URL_CHARS: usize = 2048;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    Started,
    Ringing,
    Pickup,
    Transfer,
    Recorded,
    Missed,
    Hangup,
    /// cidgate's own: a lookup that carried the PBX's call id opened the call.
    Lookup,
    /// cidgate's own: a click-to-call placed the call (what the request knew: the agent,
    /// the number, the contact). Not a leg: the PBX's events bring those.
    Requested,
}

impl EventKind {
    pub const NAMES: &str = "started, ringing, pickup, missed, hangup, recorded, transfer";

    /// A PBX's event name, any case; `lookup` is cidgate's own and never accepted.
    pub fn parse(raw: &str) -> Result<Self, String> {
        Ok(match raw.trim().to_ascii_lowercase().as_str() {
            "started" | "start" => Self::Started,
            "ringing" => Self::Ringing,
            "pickup" | "answered" => Self::Pickup,
            "missed" => Self::Missed,
            "hangup" | "ended" => Self::Hangup,
            "recorded" => Self::Recorded,
            "transfer" => Self::Transfer,
            _ => return Err(format!("must be one of {}", Self::NAMES)),
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Started => "started",
            Self::Ringing => "ringing",
            Self::Pickup => "pickup",
            Self::Transfer => "transfer",
            Self::Recorded => "recorded",
            Self::Missed => "missed",
            Self::Hangup => "hangup",
            Self::Lookup => "lookup",
            Self::Requested => "requested",
        }
    }
}

/// The reference's call directions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Direction {
    Inbound,
    Outbound,
    Internal,
    Intersite,
}

impl Direction {
    pub fn parse(raw: &str) -> Result<Self, String> {
        Ok(match raw.trim().to_ascii_lowercase().as_str() {
            "inbound" => Self::Inbound,
            "outbound" => Self::Outbound,
            "internal" => Self::Internal,
            "intersite" => Self::Intersite,
            _ => return Err("must be Inbound, Outbound, Internal or Intersite".into()),
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Inbound => "Inbound",
            Self::Outbound => "Outbound",
            Self::Internal => "Internal",
            Self::Intersite => "Intersite",
        }
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which side of a click-to-call a leg is: the agent's phone or the dialled party.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LegRole {
    Agent,
    External,
}

impl LegRole {
    pub fn parse(raw: &str) -> Result<Self, String> {
        match raw.trim().to_ascii_lowercase().as_str() {
            "agent" => Ok(Self::Agent),
            "external" => Ok(Self::External),
            _ => Err("must be agent or external".into()),
        }
    }
}

/// What a lookup that carried the PBX's call id found (the `lookup` event's payload).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LookupLink {
    pub identified: bool,
    pub contact_id: Option<String>,
    pub degraded: bool,
    /// What the network said of the caller ID, as the PBX passed it (`caller_trust` in
    /// the call record).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verstat: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attest: Option<String>,
    /// Why the answer was screened (`spam_list`, `failed_verstat`), when it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub screened: Option<String>,
}

/// One validated event. Times are `None` when the PBX sent none: the store fills in
/// when it was first received.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CallEvent {
    pub call_id: String,
    pub event: Option<EventKind>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub direction: Option<Direction>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub caller: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub caller_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dnis: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_number: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub account_codes: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub tags: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recording_url: Option<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub recorded: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub leg: Option<LegRole>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub guid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lookup: Option<LookupLink>,
    /// Fields cidgate does not know, kept with the event (and the call).
    #[serde(skip_serializing_if = "BTreeMap::is_empty", default)]
    pub extra: BTreeMap<String, String>,
}

/// The fields an event may carry (besides unknown ones, which are kept).
pub const EVENT_FIELDS: &[&str] = &[
    "call_id",
    "event",
    "at",
    "direction",
    "caller",
    "caller_name",
    "dnis",
    "external_number",
    "agent",
    "group",
    "account_codes",
    "tags",
    "recording_url",
    "recorded",
    "request_id",
    "leg",
    "guid",
    "code",
];

/// Parameters that authenticate a request, never kept with an event.
const CREDENTIALS: &[&str] = &["token", "access_token"];

impl CallEvent {
    /// Validates a JSON object of DESIGN §7's fields; every problem is named.
    pub fn from_json(
        map: &Map<String, Value>,
        now: DateTime<Utc>,
    ) -> Result<Self, Vec<FieldError>> {
        let mut parser = Parser::default();
        let event = parser.event(map, now);
        parser.finish(event)
    }

    /// The same fields as query-string pairs (`GET /api/v1/events?call_id=…`). A name
    /// given twice is refused: which value was meant cannot be known.
    pub fn from_query(
        pairs: &[(String, String)],
        now: DateTime<Utc>,
    ) -> Result<Self, Vec<FieldError>> {
        let map = query_fields(pairs)?;
        Self::from_json(&map, now)
    }

    /// The event's kind (always set once validated).
    pub fn kind(&self) -> EventKind {
        self.event.unwrap_or(EventKind::Started)
    }

    /// Identifies an event for de-duplication: the same report sent twice has the same
    /// fingerprint, whatever the order of its fields.
    pub fn fingerprint(&self) -> [u8; 32] {
        let canonical = serde_json::to_vec(self).expect("an event always serializes");
        Sha256::digest(canonical).into()
    }
}

/// Refuses query pairs the database could not keep with the call (their raw form is
/// stored): a NUL or another control character in any name or value, named.
pub fn check_query_pairs(pairs: &[(String, String)]) -> Result<(), Vec<FieldError>> {
    let errors: Vec<FieldError> = pairs
        .iter()
        .filter_map(|(name, value)| check_pair(name, value).err())
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

fn check_pair(name: &str, value: &str) -> Result<(), FieldError> {
    match storage_problem(name).or_else(|| storage_problem(value)) {
        Some(problem) => Err(FieldError::new(name, problem)),
        None => Ok(()),
    }
}

/// Whether every string and key in `value` may be stored (see [`storage_problem`]).
fn storable(value: &Value) -> bool {
    match value {
        Value::String(s) => storage_problem(s).is_none(),
        Value::Array(items) => items.iter().all(storable),
        Value::Object(map) => map
            .iter()
            .all(|(k, v)| storage_problem(k).is_none() && storable(v)),
        Value::Null | Value::Bool(_) | Value::Number(_) => true,
    }
}

/// Query pairs as a JSON object of strings; the credentials are left out.
pub fn query_fields(pairs: &[(String, String)]) -> Result<Map<String, Value>, Vec<FieldError>> {
    let mut map = Map::new();
    let mut errors = Vec::new();
    for (name, value) in pairs {
        if CREDENTIALS.contains(&name.as_str()) {
            continue;
        }
        if let Err(e) = check_pair(name, value) {
            errors.push(e);
            continue;
        }
        if map
            .insert(name.clone(), Value::String(value.clone()))
            .is_some()
        {
            errors.push(FieldError::new(name.clone(), "is given more than once"));
        }
    }
    if errors.is_empty() {
        Ok(map)
    } else {
        Err(errors)
    }
}

#[derive(Default)]
struct Parser {
    errors: Vec<FieldError>,
}

impl Parser {
    fn fail(&mut self, field: &str, message: impl Into<String>) {
        self.errors.push(FieldError::new(field, message));
    }

    fn finish(self, event: CallEvent) -> Result<CallEvent, Vec<FieldError>> {
        if self.errors.is_empty() {
            Ok(event)
        } else {
            Err(self.errors)
        }
    }

    fn event(&mut self, map: &Map<String, Value>, now: DateTime<Utc>) -> CallEvent {
        let mut event = CallEvent {
            call_id: self.id(map, "call_id").unwrap_or_default(),
            ..CallEvent::default()
        };
        if event.call_id.is_empty() && !self.errors.iter().any(|e| e.field == "call_id") {
            self.fail("call_id", "is required");
        }
        match self.text(map, "event", MAX_ID_CHARS) {
            Some(raw) => {
                event.event = EventKind::parse(&raw)
                    .map_err(|m| self.fail("event", m))
                    .ok()
            }
            None if !self.errors.iter().any(|e| e.field == "event") => {
                self.fail("event", format!("is required: one of {}", EventKind::NAMES))
            }
            None => {}
        }
        event.at = map
            .get("at")
            .filter(|v| !is_blank(v))
            .and_then(|v| event_time(v, now).map_err(|m| self.fail("at", m)).ok());
        event.direction = self.text(map, "direction", MAX_ID_CHARS).and_then(|raw| {
            Direction::parse(&raw)
                .map_err(|m| self.fail("direction", m))
                .ok()
        });
        event.caller = self.number(map, "caller");
        event.caller_name = self.text(map, "caller_name", MAX_TEXT_CHARS);
        event.dnis = self.number(map, "dnis");
        event.external_number = self.number(map, "external_number");
        event.agent = self.id(map, "agent");
        event.group = self.id(map, "group");
        event.account_codes = self.list(map, "account_codes");
        event.tags = self.list(map, "tags");
        event.recording_url = self.url(map, "recording_url");
        event.recorded = self.flag(map, "recorded") || event.recording_url.is_some();
        event.request_id = map
            .get("request_id")
            .filter(|v| !is_blank(v))
            .and_then(|v| {
                integer(v)
                    .filter(|n| *n >= 0)
                    .ok_or_else(|| self.fail("request_id", "must be a non-negative integer"))
                    .ok()
            });
        event.leg = self
            .text(map, "leg", MAX_ID_CHARS)
            .and_then(|raw| LegRole::parse(&raw).map_err(|m| self.fail("leg", m)).ok());
        event.guid = self.id(map, "guid");
        event.code = self.id(map, "code");
        for (name, value) in map {
            if EVENT_FIELDS.contains(&name.as_str()) || CREDENTIALS.contains(&name.as_str()) {
                continue;
            }
            if event.extra.len() == MAX_EXTRA_FIELDS {
                self.fail(
                    name,
                    format!("an event keeps at most {MAX_EXTRA_FIELDS} unknown fields"),
                );
                break;
            }
            if name.is_empty()
                || name.chars().count() > MAX_ID_CHARS
                || display_problem(name).is_some()
            {
                self.fail(name, "is not a usable field name");
                continue;
            }
            match scalar_text(value) {
                Some(text) if text.chars().count() <= MAX_TEXT_CHARS => {
                    event.extra.insert(name.clone(), text);
                }
                Some(_) => self.fail(name, format!("must be at most {MAX_TEXT_CHARS} characters")),
                None => self.fail(name, "must be a string, a number or a boolean"),
            }
        }
        // The object is stored as sent: nothing in it may hold what the database
        // refuses, or one request's NUL would fail every request of a shared batch.
        for (name, value) in map {
            if !storable(value) && !self.errors.iter().any(|e| &e.field == name) {
                self.fail(name, STORED_CONTROLS);
            }
        }
        event
    }

    /// Text of at most `max` characters, trimmed; empty counts as absent.
    fn text(&mut self, map: &Map<String, Value>, field: &str, max: usize) -> Option<String> {
        let value = map.get(field).filter(|v| !is_blank(v))?;
        let Some(text) = scalar_text(value) else {
            self.fail(field, "must be a string");
            return None;
        };
        let text = text.trim().to_owned();
        if text.chars().count() > max {
            self.fail(field, format!("must be at most {max} characters"));
            return None;
        }
        if let Some(problem) = display_problem(&text) {
            self.fail(field, problem);
            return None;
        }
        (!text.is_empty()).then_some(text)
    }

    fn id(&mut self, map: &Map<String, Value>, field: &str) -> Option<String> {
        self.text(map, field, MAX_ID_CHARS)
    }

    /// A number as the PBX sent it; normalized with the tenant's region later.
    fn number(&mut self, map: &Map<String, Value>, field: &str) -> Option<String> {
        self.text(map, field, MAX_ID_CHARS)
    }

    fn url(&mut self, map: &Map<String, Value>, field: &str) -> Option<String> {
        let text = self.text(map, field, MAX_URL_CHARS)?;
        match url::Url::parse(&text) {
            Ok(url) if matches!(url.scheme(), "http" | "https") => Some(text),
            _ => {
                self.fail(field, "must be an http:// or https:// URL");
                None
            }
        }
    }

    fn flag(&mut self, map: &Map<String, Value>, field: &str) -> bool {
        match map.get(field) {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(Value::String(s)) => match s.trim().to_ascii_lowercase().as_str() {
                "" | "0" | "false" | "no" => false,
                "1" | "true" | "yes" => true,
                _ => {
                    self.fail(field, "must be true or false");
                    false
                }
            },
            Some(Value::Number(n)) => n.as_i64() == Some(1),
            Some(_) => {
                self.fail(field, "must be true or false");
                false
            }
        }
    }

    /// A comma-separated string or an array of strings.
    fn list(&mut self, map: &Map<String, Value>, field: &str) -> Vec<String> {
        let items: Vec<String> = match map.get(field) {
            None | Some(Value::Null) => return Vec::new(),
            Some(Value::String(s)) => s.split(',').map(|s| s.trim().to_owned()).collect(),
            Some(Value::Array(values)) => {
                let mut items = Vec::new();
                for value in values {
                    match scalar_text(value) {
                        Some(text) => items.push(text.trim().to_owned()),
                        None => {
                            self.fail(field, "must hold strings");
                            return Vec::new();
                        }
                    }
                }
                items
            }
            Some(_) => {
                self.fail(
                    field,
                    "must be a comma-separated string or an array of strings",
                );
                return Vec::new();
            }
        };
        let mut kept: Vec<String> = Vec::new();
        for item in items.into_iter().filter(|s| !s.is_empty()) {
            if item.chars().count() > MAX_ID_CHARS || display_problem(&item).is_some() {
                self.fail(
                    field,
                    format!("items must be plain text of at most {MAX_ID_CHARS} characters"),
                );
                return Vec::new();
            }
            if !kept.contains(&item) {
                kept.push(item);
            }
        }
        if kept.len() > MAX_LIST_ITEMS {
            self.fail(field, format!("must hold at most {MAX_LIST_ITEMS} items"));
            return Vec::new();
        }
        kept
    }
}

fn is_blank(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::String(s) => s.trim().is_empty(),
        _ => false,
    }
}

fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn integer(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// How far ahead of the server's clock an event may be (a PBX with a wrong clock).
pub const MAX_EVENT_AHEAD: chrono::Duration = chrono::Duration::hours(24);

/// An event's time: RFC 3339, or milliseconds since the epoch (a number or digits).
pub fn event_time(value: &Value, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    const EXPECTED: &str =
        "must be an RFC 3339 time such as 2026-11-20T10:00:00Z or milliseconds since 1970";
    let time = match value {
        Value::Number(n) => n
            .as_i64()
            .and_then(|ms| Utc.timestamp_millis_opt(ms).single()),
        Value::String(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => s
            .parse::<i64>()
            .ok()
            .and_then(|ms| Utc.timestamp_millis_opt(ms).single()),
        Value::String(s) => DateTime::parse_from_rfc3339(s.trim())
            .ok()
            .map(|t| t.with_timezone(&Utc)),
        _ => None,
    }
    .ok_or(EXPECTED)?;
    if time > now + MAX_EVENT_AHEAD {
        return Err(format!(
            "must not be more than {} hours ahead of the server's clock",
            MAX_EVENT_AHEAD.num_hours()
        ));
    }
    if time.timestamp() < 0 {
        return Err("must not be before 1970".into());
    }
    Ok(time)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn now() -> DateTime<Utc> {
        "2026-12-01T12:00:00Z".parse().unwrap()
    }

    fn pairs(query: &str) -> Vec<(String, String)> {
        form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect()
    }

    fn fields(errors: Vec<FieldError>) -> Vec<String> {
        errors.into_iter().map(|e| e.field).collect()
    }

    #[test]
    fn a_json_event_keeps_every_field_and_the_unknown_ones() {
        let event = CallEvent::from_json(
            json!({"call_id": "c1", "event": "HANGUP", "at": 1764590400000_i64,
                   "direction": "inbound", "caller": "0721 234 567", "agent": "Ana(200)",
                   "account_codes": "1001, 1002,1001", "tags": ["vip", "x"],
                   "recording_url": "https://rec.example.com/1.wav", "request_id": "513",
                   "leg": "Agent", "queue_wait": 12})
            .as_object()
            .unwrap(),
            now(),
        )
        .unwrap();
        assert_eq!(event.kind(), EventKind::Hangup);
        assert_eq!(event.at.unwrap().to_rfc3339(), "2025-12-01T12:00:00+00:00");
        assert_eq!(event.direction, Some(Direction::Inbound));
        assert_eq!(event.account_codes, ["1001", "1002"]);
        assert_eq!(event.tags, ["vip", "x"]);
        assert!(event.recorded);
        assert_eq!(event.request_id, Some(513));
        assert_eq!(event.leg, Some(LegRole::Agent));
        assert_eq!(event.extra["queue_wait"], "12");
    }

    #[test]
    fn bad_fields_are_each_named() {
        let errors = CallEvent::from_json(
            json!({"event": "exploded", "at": "yesterday", "direction": "sideways",
                   "request_id": -1, "recording_url": "javascript:alert(1)", "leg": "both"})
            .as_object()
            .unwrap(),
            now(),
        )
        .unwrap_err();
        assert_eq!(
            fields(errors),
            [
                "call_id",
                "event",
                "at",
                "direction",
                "recording_url",
                "request_id",
                "leg"
            ]
        );
    }

    #[test]
    fn an_event_far_in_the_future_is_refused() {
        let errors = CallEvent::from_query(
            &pairs("call_id=1&event=pickup&at=2027-01-01T00:00:00Z"),
            now(),
        )
        .unwrap_err();
        assert_eq!(fields(errors), ["at"]);
    }

    #[test]
    fn a_query_parameter_given_twice_is_refused() {
        let errors =
            CallEvent::from_query(&pairs("call_id=1&call_id=2&event=pickup"), now()).unwrap_err();
        assert_eq!(fields(errors), ["call_id"]);
    }

    #[test]
    fn the_same_report_has_the_same_fingerprint_whatever_its_field_order() {
        let a = CallEvent::from_query(&pairs("event=pickup&call_id=1&direction=inbound"), now());
        let b = CallEvent::from_query(&pairs("call_id=1&direction=Inbound&event=PICKUP"), now());
        let c = CallEvent::from_query(&pairs("call_id=1&event=hangup"), now());
        assert_eq!(a.clone().unwrap().fingerprint(), b.unwrap().fingerprint());
        assert_ne!(a.unwrap().fingerprint(), c.unwrap().fingerprint());
    }
}
