//! The values a profile can fill in (DESIGN §8): the reference's `<…>` names, the URL
//! adapter's `{{…}}` names as aliases, and cidgate's own — and the call facts they are
//! read from.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::domain::CallRecord;

/// One value a template can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Placeholder {
    EmptyValue,
    AccountCodes,
    Agent,
    CallDirection,
    CallerName,
    Dnis,
    CallId,
    ExternalNumber,
    GroupSkill,
    Location,
    Time,
    Tag,
    AudioRecordingLink,
    ReportCallId,
    CallerNumber,
    ContactId,
    ContactName,
    CrmUrl,
    PopupLink,
    Duration,
    TalkDuration,
    Outcome,
    AnsweredTime,
    EndTime,
    RequestId,
    Event,
    /// STIR/SHAKEN attestation the PBX passed on the call's lookup (`attest`).
    Attestation,
    /// STIR/SHAKEN verification result the PBX passed on the call's lookup (`verstat`).
    Verification,
    // The URL adapter's own (dial-api-and-event-url-adapter.txt).
    CallTypeName,
    PbxCallId,
    EventCode,
    IsCallRecorded,
    CallUuid,
}

/// `<Name>` spellings, as the reference writes them.
const NAMES: &[(&str, Placeholder)] = &[
    ("Empty Value", Placeholder::EmptyValue),
    ("Account Codes", Placeholder::AccountCodes),
    ("Agent", Placeholder::Agent),
    ("Call Direction", Placeholder::CallDirection),
    ("Caller Name", Placeholder::CallerName),
    ("DNIS", Placeholder::Dnis),
    ("Call ID", Placeholder::CallId),
    ("External Number", Placeholder::ExternalNumber),
    ("Group/Skill", Placeholder::GroupSkill),
    ("Location", Placeholder::Location),
    ("Time", Placeholder::Time),
    ("Tag", Placeholder::Tag),
    ("Audio Recording Link", Placeholder::AudioRecordingLink),
    ("Report Call ID", Placeholder::ReportCallId),
    ("Caller Number", Placeholder::CallerNumber),
    ("Contact ID", Placeholder::ContactId),
    ("Contact Name", Placeholder::ContactName),
    ("CRM URL", Placeholder::CrmUrl),
    ("Popup Link", Placeholder::PopupLink),
    ("Duration", Placeholder::Duration),
    ("Talk Duration", Placeholder::TalkDuration),
    ("Outcome", Placeholder::Outcome),
    ("Answered Time", Placeholder::AnsweredTime),
    ("End Time", Placeholder::EndTime),
    ("Request ID", Placeholder::RequestId),
    ("Event", Placeholder::Event),
    ("Attestation", Placeholder::Attestation),
    ("Verification", Placeholder::Verification),
];

/// `{{Name}}` spellings: the URL adapter's names.
const ALIASES: &[(&str, Placeholder)] = &[
    ("CallTypeName", Placeholder::CallTypeName),
    ("DialApiEventName", Placeholder::Event),
    ("CallID", Placeholder::PbxCallId),
    ("DialApiRequestID", Placeholder::RequestId),
    ("DialApiEventCode", Placeholder::EventCode),
    ("IsCallRecorded", Placeholder::IsCallRecorded),
    ("CallUUID", Placeholder::CallUuid),
];

impl Placeholder {
    /// A `<…>` name, any case.
    pub fn from_name(name: &str) -> Option<Self> {
        let name = name.trim();
        NAMES
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, p)| *p)
    }

    /// A `{{…}}` name, any case.
    pub fn from_alias(alias: &str) -> Option<Self> {
        let alias = alias.trim();
        ALIASES
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(alias))
            .map(|(_, p)| *p)
    }

    /// A criterion's field: a `<…>` name or a `{{…}}` name, without brackets.
    pub fn from_field(field: &str) -> Option<Self> {
        Self::from_name(field).or_else(|| Self::from_alias(field))
    }

    /// Every field name a criterion may start with, longest first (so `Call ID` is not
    /// read as `Call` … ).
    pub fn field_names() -> Vec<&'static str> {
        let mut names: Vec<&str> = NAMES.iter().chain(ALIASES).map(|(n, _)| *n).collect();
        names.sort_by_key(|n| std::cmp::Reverse(n.len()));
        names
    }

    /// The `<…>` names, for messages and documentation.
    pub fn names() -> impl Iterator<Item = &'static str> {
        NAMES.iter().map(|(n, _)| *n)
    }

    /// Whether the value is a list (`=` and `in` then test each item).
    pub fn is_list(self) -> bool {
        matches!(self, Self::AccountCodes | Self::Tag)
    }

    /// The value for `call`, as text (lists comma-separated; absent values empty).
    pub fn value(self, call: &CallFacts) -> String {
        let text = |v: &Option<String>| v.clone().unwrap_or_default();
        let millis = |t: Option<DateTime<Utc>>| t.map(|t| t.timestamp_millis().to_string());
        match self {
            Self::EmptyValue => String::new(),
            Self::AccountCodes => call.record.account_codes.join(","),
            Self::Agent => text(&call.record.agent),
            Self::CallDirection => text(&call.record.direction),
            Self::CallerName => text(&call.record.caller_name),
            Self::Dnis => text(&call.record.dnis),
            Self::CallId => call.record.call_id.to_string(),
            Self::ExternalNumber => text(&call.record.external_number),
            Self::GroupSkill => text(&call.record.group),
            Self::Location => text(&call.location),
            Self::Time => call.record.started_at.timestamp_millis().to_string(),
            Self::Tag => call.record.tags.join(","),
            Self::AudioRecordingLink => text(&call.record.recording_url),
            Self::ReportCallId => call.record.report_call_id.to_string(),
            Self::CallerNumber => text(&call.record.caller_number),
            Self::ContactId => text(&call.record.contact_id),
            Self::ContactName => text(&call.contact_name),
            Self::CrmUrl => text(&call.crm_url),
            Self::PopupLink => text(&call.popup_link),
            Self::Duration => seconds(call.record.duration_ms),
            Self::TalkDuration => seconds(call.record.talk_ms),
            Self::Outcome => call.record.outcome.clone(),
            Self::AnsweredTime => millis(call.record.answered_at).unwrap_or_default(),
            Self::EndTime => millis(call.record.ended_at).unwrap_or_default(),
            Self::RequestId => call
                .record
                .request_id
                .map(|r| r.to_string())
                .unwrap_or_default(),
            Self::Event => call.event.clone(),
            Self::Attestation => lookup_text(call, "attest"),
            Self::Verification => lookup_text(call, "verstat"),
            Self::CallTypeName => call_type_name(call),
            Self::PbxCallId => match &call.leg_event {
                Some(leg) => leg.call_id.clone(),
                None => call.record.activecallkey.clone(),
            },
            Self::EventCode => event_code(&call.event).to_owned(),
            Self::IsCallRecorded => if call.record.recorded { "1" } else { "" }.to_owned(),
            Self::CallUuid => match &call.leg_event {
                Some(leg) => text(&leg.guid),
                None => call
                    .record
                    .first_leg()
                    .and_then(|l| l.guid)
                    .unwrap_or_default(),
            },
        }
    }
}

/// A text field of the lookup that opened the call; empty without one.
fn lookup_text(call: &CallFacts, key: &str) -> String {
    call.record
        .lookup
        .as_ref()
        .and_then(|l| l.get(key))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// Whole seconds; empty while unknown (a call still up has no duration yet).
fn seconds(ms: Option<i64>) -> String {
    ms.map(|ms| (ms / 1000).to_string()).unwrap_or_default()
}

/// The adapter's call type: `API` for a click-to-call's agent leg, `Outgoing` for its
/// dialled party; other calls by their direction. A leg event names its own leg.
fn call_type_name(call: &CallFacts) -> String {
    let first_leg = call.record.first_leg();
    let leg = match &call.leg_event {
        Some(event) => event.leg.as_deref(),
        None => first_leg.as_ref().and_then(|l| l.leg.as_deref()),
    };
    match leg {
        Some("agent") => "API".to_owned(),
        Some("external") => "Outgoing".to_owned(),
        _ => call.record.direction.clone().unwrap_or_default(),
    }
}

/// The adapter's event codes, as its examples show them: hangup 1, pickup 2, missed 3.
fn event_code(event: &str) -> &'static str {
    match event {
        "hangup" => "1",
        "pickup" => "2",
        "missed" => "3",
        _ => "",
    }
}

/// Where an E.164 number is from: its country's ISO code (the numbering data cidgate
/// carries names countries, not regions within them). `None` for an extension or a
/// number that does not parse.
pub fn location(number: &str) -> Option<String> {
    if !number.starts_with('+') {
        return None;
    }
    let parsed = phonenumber::parse(None, number).ok()?;
    let id = parsed.country().id()?;
    Some(id.as_ref().to_owned())
}

/// The leg event a `leg-event` delivery was queued for: which leg, and what happened.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LegEventFacts {
    /// The leg's PBX call id.
    pub call_id: String,
    #[serde(default)]
    pub guid: Option<String>,
    /// `agent` or `external`, when known.
    #[serde(default)]
    pub leg: Option<String>,
    /// `pickup`, `missed` or `hangup`.
    pub event: String,
}

/// What a delivery knows of its call: the call record as it was when the delivery was
/// queued, with the contact's name and CRM link (stored with the delivery in this form),
/// and what the sender adds (the pop link, the event name, the location).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CallFacts {
    #[serde(flatten)]
    pub record: CallRecord,
    #[serde(default)]
    pub contact_name: Option<String>,
    #[serde(default)]
    pub crm_url: Option<String>,
    /// Filled by the sender: the screen-pop link for the other party.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub popup_link: Option<String>,
    /// Filled by the sender: what happened (`started`, `pickup`, `missed`, `hangup`,
    /// `recorded`, `lookup`), from the trigger and the call.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub event: String,
    /// Filled by the sender: where the other party's number is from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// A `leg-event` delivery's leg and event (its `{{CallID}}`, `{{CallUUID}}`,
    /// `{{CallTypeName}}` and event name are that leg's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leg_event: Option<LegEventFacts>,
}

impl CallFacts {
    /// A stored call's facts, with its contact's name and CRM link.
    pub fn new(record: CallRecord, contact_name: Option<String>, crm_url: Option<String>) -> Self {
        Self {
            record,
            contact_name,
            crm_url,
            ..Self::default()
        }
    }

    /// The facts as a delivery on `trigger` sends them: the event name and the other
    /// party's location filled in.
    pub fn for_trigger(mut self, trigger: super::Trigger) -> Self {
        self.event = trigger.event_name(&self).to_owned();
        if self.location.is_none() {
            self.location = self.record.other_number.as_deref().and_then(location);
        }
        self
    }

    /// A made-up finished inbound call, for `profile test` without `--call`.
    pub fn sample() -> Self {
        let at = |s: &str| s.parse::<DateTime<Utc>>().ok();
        Self {
            record: CallRecord {
                call_id: Uuid::from_u128(0x0192_8f3c_5b1e_7a00_8000_0000_0000_0001),
                report_call_id: 1001,
                activecallkey: "1000000087849".into(),
                request_id: None,
                direction: Some("Inbound".into()),
                caller_number: Some("+40700000000".into()),
                caller_name: Some("John Doe".into()),
                contact_id: Some("12345".into()),
                dnis: Some("0210000000".into()),
                external_number: Some("+40700000000".into()),
                other_number: Some("+40700000000".into()),
                agent: Some("Agent1(200)".into()),
                group: Some("Sales".into()),
                account_codes: vec!["1001".into()],
                tags: vec!["VIP".into()],
                started_at: at("2026-12-01T10:00:00Z").unwrap_or_default(),
                answered_at: at("2026-12-01T10:00:10Z"),
                ended_at: at("2026-12-01T10:02:10Z"),
                duration_ms: Some(130_000),
                talk_ms: Some(120_000),
                outcome: "answered".into(),
                recorded: true,
                recording_url: Some("https://pbx.example.com/recordings/1000000087849.wav".into()),
                legs: serde_json::json!([{
                    "call_id": "1000000087849",
                    "guid": "bfa2dbc8-ab8a-34c8-f243-c2aad8c446ff",
                    "leg": null,
                }]),
                lookup: None,
                extra: Value::Null,
            },
            contact_name: Some("John Doe".into()),
            crm_url: Some("https://crm.example.com/contacts/12345".into()),
            popup_link: None,
            event: "hangup".into(),
            location: Some("RO".into()),
            leg_event: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_aliases_are_read_in_any_case() {
        assert_eq!(
            Placeholder::from_name("caller name"),
            Some(Placeholder::CallerName)
        );
        assert_eq!(
            Placeholder::from_name("Group/Skill"),
            Some(Placeholder::GroupSkill)
        );
        assert_eq!(
            Placeholder::from_alias("dialapirequestid"),
            Some(Placeholder::RequestId)
        );
        assert_eq!(
            Placeholder::from_field("Talk Duration"),
            Some(Placeholder::TalkDuration)
        );
        assert_eq!(Placeholder::from_name("Nope"), None);
    }

    #[test]
    fn every_placeholder_reads_the_sample_call_as_the_reference_defines_it() {
        let call = CallFacts::sample();
        let v = |name: &str| Placeholder::from_field(name).unwrap().value(&call);
        assert_eq!(v("Empty Value"), "");
        assert_eq!(v("Account Codes"), "1001");
        assert_eq!(v("Agent"), "Agent1(200)");
        assert_eq!(v("Call Direction"), "Inbound");
        assert_eq!(v("Caller Name"), "John Doe");
        assert_eq!(v("DNIS"), "0210000000");
        assert_eq!(v("Call ID"), call.record.call_id.to_string());
        assert_eq!(v("Time"), "1796119200000");
        assert_eq!(v("Duration"), "130");
        assert_eq!(v("Talk Duration"), "120");
        assert_eq!(v("Answered Time"), "1796119210000");
        assert_eq!(v("Report Call ID"), "1001");
        assert_eq!(v("IsCallRecorded"), "1");
        assert_eq!(v("CallID"), "1000000087849");
        assert_eq!(v("CallUUID"), "bfa2dbc8-ab8a-34c8-f243-c2aad8c446ff");
        assert_eq!(v("DialApiEventCode"), "1");
        assert_eq!(v("CallTypeName"), "Inbound");
        assert_eq!(v("Request ID"), "");
    }

    #[test]
    fn attestation_and_verification_come_from_the_calls_lookup() {
        let mut call = CallFacts::sample();
        let v = |name: &str, call: &CallFacts| Placeholder::from_name(name).unwrap().value(call);
        assert_eq!(v("Attestation", &call), "");
        call.record.lookup = Some(serde_json::json!({
            "identified": false, "verstat": "TN-Validation-Passed", "attest": "A"
        }));
        assert_eq!(v("Attestation", &call), "A");
        assert_eq!(v("Verification", &call), "TN-Validation-Passed");
    }

    #[test]
    fn a_leg_event_names_its_own_leg() {
        let mut call = CallFacts::sample();
        call.record.request_id = Some(513);
        let call = CallFacts {
            leg_event: Some(LegEventFacts {
                call_id: "1000000087850".into(),
                guid: Some("923041af-adb5-a8ae-f29c-e60ea5e17448".into()),
                leg: Some("external".into()),
                event: "pickup".into(),
            }),
            ..call
        }
        .for_trigger(super::super::Trigger::LegEvent);
        let v = |name: &str| Placeholder::from_field(name).unwrap().value(&call);
        assert_eq!(v("CallTypeName"), "Outgoing");
        assert_eq!(v("DialApiEventName"), "pickup");
        assert_eq!(v("DialApiEventCode"), "2");
        assert_eq!(v("CallID"), "1000000087850");
        assert_eq!(v("CallUUID"), "923041af-adb5-a8ae-f29c-e60ea5e17448");
        assert_eq!(v("DialApiRequestID"), "513");
    }

    #[test]
    fn lists_are_comma_separated() {
        let mut call = CallFacts::sample();
        call.record.tags = vec!["a".into(), "b".into()];
        call.record.account_codes = vec!["1001".into(), "1002".into(), "1003".into()];
        assert_eq!(Placeholder::Tag.value(&call), "a,b");
        assert_eq!(Placeholder::AccountCodes.value(&call), "1001,1002,1003");
    }

    #[test]
    fn the_location_is_the_other_partys_country() {
        assert_eq!(location("+40721234567").as_deref(), Some("RO"));
        assert_eq!(location("+12025550123").as_deref(), Some("US"));
        assert_eq!(location("200"), None);
    }
}
