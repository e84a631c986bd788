//! The call record (DESIGN §7): one type and one field list. The CDR JSON, the CSV
//! columns, the `calls` columns read, the call facts of profiles (the record stored with
//! each delivery) and the report rows all come from here, so a new field is added once.

use super::service_user::Access;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use uuid::Uuid;

/// One call as cidgate keeps it. Its serde form is the record as deliveries store it
/// (named as the `calls` columns, with the other party's number); the CDR API's form is
/// [`CallRecord::cdr`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CallRecord {
    #[serde(rename = "id")]
    pub call_id: Uuid,
    #[serde(default)]
    pub report_call_id: i64,
    #[serde(default)]
    pub activecallkey: String,
    pub request_id: Option<i64>,
    pub direction: Option<String>,
    pub caller_number: Option<String>,
    pub caller_name: Option<String>,
    pub contact_id: Option<String>,
    pub dnis: Option<String>,
    pub external_number: Option<String>,
    /// The other party, normalized (E.164 when it could be read).
    pub other_number: Option<String>,
    pub agent: Option<String>,
    #[serde(rename = "call_group")]
    pub group: Option<String>,
    #[serde(default)]
    pub account_codes: Vec<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    pub started_at: DateTime<Utc>,
    pub answered_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
    pub duration_ms: Option<i64>,
    pub talk_ms: Option<i64>,
    #[serde(default)]
    pub outcome: String,
    #[serde(default)]
    pub recorded: bool,
    pub recording_url: Option<String>,
    /// Each leg: `call_id`, `guid`, `leg`, `answered_at`, `ended_at`, `outcome`.
    #[serde(default)]
    pub legs: Value,
    /// What the lookup that opened the call found, when one did.
    #[serde(default)]
    pub lookup: Option<Value>,
    /// Fields the PBX sent that cidgate does not know.
    #[serde(default)]
    pub extra: Value,
}

/// The record's fields, in the CDR's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallField {
    CallId,
    ReportCallId,
    Activecallkey,
    RequestId,
    Direction,
    CallerNumber,
    CallerName,
    ContactId,
    Dnis,
    ExternalNumber,
    OtherNumber,
    Agent,
    Group,
    AccountCodes,
    Tags,
    StartedAt,
    AnsweredAt,
    EndedAt,
    DurationMs,
    TalkMs,
    Outcome,
    Recorded,
    RecordingUrl,
    Legs,
    Lookup,
    CallerTrust,
    Extra,
}

/// Where a field is shown besides the stored record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shown {
    /// In the CDR JSON and the CSV.
    Everywhere,
    /// In the CDR JSON only (structured values).
    Json,
    /// Stored only (the number the CDR's `number` filter and the pop page ask by).
    Stored,
    /// In the CDR JSON only, derived from other fields (no column of its own).
    Derived,
}

impl CallField {
    /// Every field, in order.
    pub const ALL: [CallField; 27] = [
        Self::CallId,
        Self::ReportCallId,
        Self::Activecallkey,
        Self::RequestId,
        Self::Direction,
        Self::CallerNumber,
        Self::CallerName,
        Self::ContactId,
        Self::Dnis,
        Self::ExternalNumber,
        Self::OtherNumber,
        Self::Agent,
        Self::Group,
        Self::AccountCodes,
        Self::Tags,
        Self::StartedAt,
        Self::AnsweredAt,
        Self::EndedAt,
        Self::DurationMs,
        Self::TalkMs,
        Self::Outcome,
        Self::Recorded,
        Self::RecordingUrl,
        Self::Legs,
        Self::Lookup,
        Self::CallerTrust,
        Self::Extra,
    ];

    /// Its name in the CDR JSON and CSV, its `calls` column, and where it is shown.
    fn spec(self) -> (&'static str, &'static str, Shown) {
        use Shown::*;
        match self {
            Self::CallId => ("call_id", "id", Everywhere),
            Self::ReportCallId => ("report_call_id", "report_call_id", Everywhere),
            Self::Activecallkey => ("activecallkey", "activecallkey", Everywhere),
            Self::RequestId => ("request_id", "request_id", Everywhere),
            Self::Direction => ("direction", "direction", Everywhere),
            Self::CallerNumber => ("caller_number", "caller_number", Everywhere),
            Self::CallerName => ("caller_name", "caller_name", Everywhere),
            Self::ContactId => ("contact_id", "contact_id", Everywhere),
            Self::Dnis => ("dnis", "dnis", Everywhere),
            Self::ExternalNumber => ("external_number", "external_number", Everywhere),
            Self::OtherNumber => ("other_number", "other_number", Stored),
            Self::Agent => ("agent", "agent", Everywhere),
            Self::Group => ("group", "call_group", Everywhere),
            Self::AccountCodes => ("account_codes", "account_codes", Everywhere),
            Self::Tags => ("tags", "tags", Everywhere),
            Self::StartedAt => ("started_at", "started_at", Everywhere),
            Self::AnsweredAt => ("answered_at", "answered_at", Everywhere),
            Self::EndedAt => ("ended_at", "ended_at", Everywhere),
            Self::DurationMs => ("duration_ms", "duration_ms", Everywhere),
            Self::TalkMs => ("talk_ms", "talk_ms", Everywhere),
            Self::Outcome => ("outcome", "outcome", Everywhere),
            Self::Recorded => ("recorded", "recorded", Everywhere),
            Self::RecordingUrl => ("recording_url", "recording_url", Everywhere),
            Self::Legs => ("legs", "legs", Json),
            Self::Lookup => ("lookup", "lookup", Json),
            Self::CallerTrust => ("caller_trust", "lookup", Derived),
            Self::Extra => ("extra", "extra", Json),
        }
    }

    /// Its name in the CDR JSON and the CSV.
    pub fn name(self) -> &'static str {
        self.spec().0
    }

    /// Its column in `calls`.
    pub fn column(self) -> &'static str {
        self.spec().1
    }

    fn in_json(self) -> bool {
        self.spec().2 != Shown::Stored
    }

    fn in_csv(self) -> bool {
        self.spec().2 == Shown::Everywhere
    }

    /// The fields of the CSV form, in order.
    pub fn csv() -> impl Iterator<Item = CallField> {
        Self::ALL.into_iter().filter(|f| f.in_csv())
    }

    /// The field's value in the CDR JSON.
    fn json(self, c: &CallRecord) -> Value {
        match self {
            Self::CallId => json!(c.call_id),
            Self::ReportCallId => json!(c.report_call_id),
            Self::Activecallkey => json!(c.activecallkey),
            Self::RequestId => json!(c.request_id),
            Self::Direction => json!(c.direction),
            Self::CallerNumber => json!(c.caller_number),
            Self::CallerName => json!(c.caller_name),
            Self::ContactId => json!(c.contact_id),
            Self::Dnis => json!(c.dnis),
            Self::ExternalNumber => json!(c.external_number),
            Self::OtherNumber => json!(c.other_number),
            Self::Agent => json!(c.agent),
            Self::Group => json!(c.group),
            Self::AccountCodes => json!(c.account_codes),
            Self::Tags => json!(c.tags),
            Self::StartedAt => json!(c.started_at),
            Self::AnsweredAt => json!(c.answered_at),
            Self::EndedAt => json!(c.ended_at),
            Self::DurationMs => json!(c.duration_ms),
            Self::TalkMs => json!(c.talk_ms),
            Self::Outcome => json!(c.outcome),
            Self::Recorded => json!(c.recorded),
            Self::RecordingUrl => json!(c.recording_url),
            Self::Legs => c.legs.clone(),
            Self::Lookup => json!(c.lookup),
            Self::CallerTrust => json!(c.caller_trust()),
            Self::Extra => c.extra.clone(),
        }
    }

    /// The field's value in a CSV cell: empty when absent, lists comma-separated, times
    /// in `zone` (RFC 3339 with its offset).
    pub fn text(self, c: &CallRecord, zone: Tz) -> String {
        let time = |t: Option<DateTime<Utc>>| {
            t.map(|t| {
                t.with_timezone(&zone)
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, false)
            })
            .unwrap_or_default()
        };
        let text = |s: &Option<String>| s.clone().unwrap_or_default();
        let number = |n: Option<i64>| n.map(|n| n.to_string()).unwrap_or_default();
        match self {
            Self::CallId => c.call_id.to_string(),
            Self::ReportCallId => c.report_call_id.to_string(),
            Self::Activecallkey => c.activecallkey.clone(),
            Self::RequestId => number(c.request_id),
            Self::Direction => text(&c.direction),
            Self::CallerNumber => text(&c.caller_number),
            Self::CallerName => text(&c.caller_name),
            Self::ContactId => text(&c.contact_id),
            Self::Dnis => text(&c.dnis),
            Self::ExternalNumber => text(&c.external_number),
            Self::OtherNumber => text(&c.other_number),
            Self::Agent => text(&c.agent),
            Self::Group => text(&c.group),
            Self::AccountCodes => c.account_codes.join(","),
            Self::Tags => c.tags.join(","),
            Self::StartedAt => time(Some(c.started_at)),
            Self::AnsweredAt => time(c.answered_at),
            Self::EndedAt => time(c.ended_at),
            Self::DurationMs => number(c.duration_ms),
            Self::TalkMs => number(c.talk_ms),
            Self::Outcome => c.outcome.clone(),
            Self::Recorded => c.recorded.to_string(),
            Self::RecordingUrl => text(&c.recording_url),
            Self::Legs | Self::Lookup | Self::CallerTrust | Self::Extra => self.json(c).to_string(),
        }
    }
}

/// The `calls` columns a record is read from, each prefixed with `alias` (`"c."`).
pub fn call_columns(alias: &str) -> String {
    CallField::ALL
        .iter()
        .filter(|f| f.spec().2 != Shown::Derived)
        .map(|f| format!("{alias}{}", f.column()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A record in the CDR API's form (an element of `CallList`).
pub struct Cdr<'a>(&'a CallRecord);

impl Serialize for Cdr<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let fields = CallField::ALL.iter().filter(|f| f.in_json());
        let mut map = serializer.serialize_map(None)?;
        for field in fields {
            map.serialize_entry(field.name(), &field.json(self.0))?;
        }
        map.end()
    }
}

impl CallRecord {
    /// The record as the CDR API answers it.
    pub fn cdr(&self) -> Cdr<'_> {
        Cdr(self)
    }

    /// What the network said of the caller ID (`verstat`, `attest`), as the PBX passed
    /// them on the lookup that opened the call; `None` when it passed neither.
    pub fn caller_trust(&self) -> Option<super::CallerTrust> {
        self.lookup
            .clone()
            .and_then(|l| serde_json::from_value::<super::CallerTrust>(l).ok())
            .filter(|t| !t.is_empty())
    }

    /// The first leg (the agent's on a click-to-call), when the record has one.
    pub fn first_leg(&self) -> Option<FirstLeg> {
        let first = self.legs.as_array()?.first()?;
        serde_json::from_value(first.clone()).ok()
    }

    /// The talk time a report counts: an answered call's, else none.
    pub fn counted_talk_ms(&self) -> i64 {
        match self.outcome.as_str() {
            "answered" => self.talk_ms.unwrap_or(0),
            _ => 0,
        }
    }
}

/// What profiles read of a call's first leg.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct FirstLeg {
    pub call_id: String,
    #[serde(default)]
    pub guid: Option<String>,
    #[serde(default)]
    pub leg: Option<String>,
}

/// Which calls a page is drawn from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct CdrFilter {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub direction: Option<String>,
    pub agent: Option<String>,
    /// A normalized number: the caller's, or the other party's.
    pub number: Option<String>,
    pub outcome: Option<String>,
    /// Only the calls of these agents' extensions, or of `groups` (a service user's
    /// access); `None` is every call.
    pub agents: Option<Vec<String>>,
    /// With `agents`: the groups whose calls are seen too.
    #[serde(default)]
    pub groups: Option<Vec<String>>,
}

impl CdrFilter {
    /// Limits the filter to what `access` sees, whatever it said before (a cursor
    /// carries its filter, and a cursor is only as trustworthy as its bearer).
    pub fn limit_to(&mut self, access: &Access) {
        let (agents, groups) = access.as_lists().unzip();
        self.agents = agents;
        self.groups = groups;
    }
}

/// Where a walk stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub enum Position {
    /// Walking by start time: after this call, among calls changed up to `watermark`.
    ByStart {
        watermark: i64,
        after: Option<(DateTime<Utc>, Uuid)>,
    },
    /// Following changes made after `watermark`, after this (change, call).
    ByChange {
        watermark: i64,
        after: Option<(i64, Uuid)>,
    },
}

/// A page and where the next one starts.
pub struct Page {
    pub calls: Vec<CallRecord>,
    pub next: Position,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> CallRecord {
        CallRecord {
            call_id: Uuid::from_u128(7),
            report_call_id: 12,
            activecallkey: "100".into(),
            group: Some("Sales".into()),
            other_number: Some("+40700000000".into()),
            account_codes: vec!["1".into(), "2".into()],
            outcome: "answered".into(),
            talk_ms: Some(5_000),
            legs: json!([{"call_id": "100", "guid": "g", "leg": "agent"}]),
            extra: json!({}),
            ..CallRecord::default()
        }
    }

    #[test]
    fn the_cdr_form_names_fields_as_the_api_and_leaves_the_stored_number_out() {
        let cdr = serde_json::to_value(sample().cdr()).unwrap();
        let keys: Vec<&str> = cdr
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert!(keys.contains(&"call_id") && !keys.contains(&"id"));
        assert_eq!(cdr["group"], "Sales");
        assert!(cdr.get("other_number").is_none());
        // The caller's trust is derived from the lookup: null when it passed none.
        assert!(keys.contains(&"caller_trust") && cdr["caller_trust"].is_null());
        assert_eq!(keys.len(), 26);
    }

    #[test]
    fn the_stored_form_names_fields_as_the_columns_and_reads_back() {
        let stored = serde_json::to_value(sample()).unwrap();
        assert_eq!(stored["id"], Uuid::from_u128(7).to_string());
        assert_eq!(stored["call_group"], "Sales");
        assert_eq!(stored["other_number"], "+40700000000");
        let back: CallRecord = serde_json::from_value(stored).unwrap();
        assert_eq!(back, sample());
    }

    #[test]
    fn csv_cells_join_lists_and_leave_absent_values_empty() {
        let c = sample();
        assert_eq!(CallField::AccountCodes.text(&c, Tz::UTC), "1,2");
        assert_eq!(CallField::Agent.text(&c, Tz::UTC), "");
        assert_eq!(CallField::csv().count(), 22);
        assert_eq!(c.first_leg().unwrap().leg.as_deref(), Some("agent"));
        assert_eq!(c.counted_talk_ms(), 5_000);
    }
}
