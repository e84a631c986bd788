//! A call as the set of its events (DESIGN §7): the record is a function of that set,
//! never of the order the events arrived in, so duplicates and late events are harmless.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::agent::agent_extension;
use super::call_event::{CallEvent, Direction, EventKind, LegRole, LookupLink};
use serde_json::Value;
use uuid::Uuid;

/// An event as stored: its effective time (the PBX's, else when cidgate first received
/// it) and its fingerprint, which breaks ties between events of the same time.
#[derive(Debug, Clone)]
pub struct StoredEvent {
    pub at: DateTime<Utc>,
    pub fingerprint: [u8; 32],
    pub event: CallEvent,
}

/// What became of a call or of one of its legs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Answered,
    Missed,
    InProgress,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Answered => "answered",
            Self::Missed => "missed",
            Self::InProgress => "in_progress",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, String> {
        match raw.trim().to_ascii_lowercase().as_str() {
            "answered" => Ok(Self::Answered),
            "missed" => Ok(Self::Missed),
            "in_progress" => Ok(Self::InProgress),
            _ => Err("must be answered, missed or in_progress".into()),
        }
    }
}

/// One PBX call id within a call.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Leg {
    pub call_id: String,
    pub guid: Option<String>,
    pub leg: Option<LegRole>,
    pub answered_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
    pub outcome: Outcome,
}

/// The call as its events describe it, before the store adds its ids and the contact.
#[derive(Debug, Clone, PartialEq)]
pub struct CallSummary {
    /// The first leg's PBX id (the reference's `activecallkey`).
    pub activecallkey: String,
    pub request_id: Option<i64>,
    pub direction: Option<Direction>,
    pub caller: Option<String>,
    pub caller_name: Option<String>,
    pub dnis: Option<String>,
    pub external_number: Option<String>,
    pub agent: Option<String>,
    pub group: Option<String>,
    pub account_codes: Vec<String>,
    pub tags: Vec<String>,
    pub started_at: DateTime<Utc>,
    pub answered_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
    pub outcome: Outcome,
    pub recorded: bool,
    pub recording_url: Option<String>,
    pub legs: Vec<Leg>,
    pub lookup: Option<LookupLink>,
    /// Unknown fields of every event; a later event's value wins.
    pub extra: BTreeMap<String, String>,
}

impl CallSummary {
    /// Folds a call's events, in time order (ties broken by fingerprint), into its record.
    /// `None` for no events.
    pub fn from_events(events: &[StoredEvent]) -> Option<Self> {
        let mut ordered: Vec<&StoredEvent> = events.iter().collect();
        ordered.sort_by_key(|e| (e.at, e.fingerprint));
        let first = ordered.first()?;

        // The first PBX leg names the call; a click-to-call's own event only until then.
        let key_event = ordered
            .iter()
            .find(|e| e.event.kind() != EventKind::Requested)
            .unwrap_or(first);

        let mut legs: Vec<Leg> = Vec::new();
        let mut call = CallSummary {
            activecallkey: key_event.event.call_id.clone(),
            request_id: None,
            direction: None,
            caller: None,
            caller_name: None,
            dnis: None,
            external_number: None,
            agent: None,
            group: None,
            account_codes: Vec::new(),
            tags: Vec::new(),
            started_at: first.at,
            answered_at: None,
            ended_at: None,
            outcome: Outcome::InProgress,
            recorded: false,
            recording_url: None,
            legs: Vec::new(),
            lookup: None,
            extra: BTreeMap::new(),
        };
        for stored in &ordered {
            let e = &stored.event;
            if e.kind() == EventKind::Requested {
                call.apply(e);
                continue;
            }
            let leg = match legs.iter_mut().position(|l| l.call_id == e.call_id) {
                Some(i) => &mut legs[i],
                None => {
                    legs.push(Leg {
                        call_id: e.call_id.clone(),
                        guid: None,
                        leg: None,
                        answered_at: None,
                        ended_at: None,
                        outcome: Outcome::InProgress,
                    });
                    legs.last_mut().expect("just pushed")
                }
            };
            keep_last(&mut leg.guid, &e.guid);
            if e.leg.is_some() {
                leg.leg = e.leg;
            }
            match e.kind() {
                EventKind::Pickup => {
                    leg.answered_at.get_or_insert(stored.at);
                }
                EventKind::Hangup | EventKind::Missed => leg.ended_at = Some(stored.at),
                _ => {}
            }
            if e.kind() == EventKind::Missed {
                leg.outcome = Outcome::Missed;
            }

            call.apply(e);
        }
        for leg in &mut legs {
            leg.outcome = match (leg.answered_at, leg.ended_at) {
                (Some(_), _) => Outcome::Answered,
                (None, Some(_)) => Outcome::Missed,
                (None, None) => Outcome::InProgress,
            };
            // A PBX that sends no times: a hangup received before its pickup.
            if let (Some(answered), Some(ended)) = (leg.answered_at, leg.ended_at)
                && ended < answered
            {
                leg.answered_at = Some(ended);
            }
        }
        if call.request_id.is_some() && call.direction.is_none() {
            call.direction = Some(Direction::Outbound);
        }
        if call.lookup.is_some() && call.direction.is_none() {
            call.direction = Some(Direction::Inbound);
        }

        // A click-to-call is answered when the dialled party picks up, not the agent.
        let answering = |l: &&Leg| call.request_id.is_none() || l.leg != Some(LegRole::Agent);
        call.answered_at = legs
            .iter()
            .filter(answering)
            .filter_map(|l| l.answered_at)
            .min();
        if legs.iter().all(|l| l.ended_at.is_some()) {
            call.ended_at = legs.iter().filter_map(|l| l.ended_at).max();
        }
        call.outcome = match (call.ended_at, call.answered_at) {
            (None, _) => Outcome::InProgress,
            (Some(_), Some(_)) => Outcome::Answered,
            (Some(_), None) => Outcome::Missed,
        };
        call.legs = legs;
        Some(call)
    }

    /// What one event tells about the call as a whole: a value it gives replaces the
    /// one before, a value it lacks erases nothing.
    fn apply(&mut self, e: &CallEvent) {
        if e.request_id.is_some() {
            self.request_id = e.request_id;
        }
        if e.direction.is_some() {
            self.direction = e.direction;
        }
        keep_last(&mut self.caller, &e.caller);
        keep_last(&mut self.caller_name, &e.caller_name);
        keep_last(&mut self.dnis, &e.dnis);
        keep_last(&mut self.external_number, &e.external_number);
        // A bare extension does not replace the same agent's name (`Agent1(200)`, as a
        // click-to-call knew it): the PBX's events must not erase what the request knew.
        let same_agent = match (&self.agent, &e.agent) {
            (Some(known), Some(sent)) => {
                sent.trim() != known.as_str()
                    && agent_extension(sent) == Some(sent.trim())
                    && agent_extension(known) == Some(sent.trim())
            }
            _ => false,
        };
        if !same_agent {
            keep_last(&mut self.agent, &e.agent);
        }
        keep_last(&mut self.group, &e.group);
        keep_last(&mut self.recording_url, &e.recording_url);
        union(&mut self.account_codes, &e.account_codes);
        union(&mut self.tags, &e.tags);
        self.recorded |= e.recorded || e.kind() == EventKind::Recorded;
        if e.lookup.is_some() {
            self.lookup.clone_from(&e.lookup);
        }
        for (k, v) in &e.extra {
            self.extra.insert(k.clone(), v.clone());
        }
    }

    pub fn duration_ms(&self) -> Option<i64> {
        self.ended_at
            .map(|end| (end - self.started_at).num_milliseconds().max(0))
    }

    pub fn talk_ms(&self) -> Option<i64> {
        match (self.answered_at, self.ended_at) {
            (Some(answered), Some(end)) => Some((end - answered).num_milliseconds().max(0)),
            (None, Some(_)) => Some(0),
            _ => None,
        }
    }

    /// The other party's number: who called in, or who was called out to (on an
    /// outbound or internal call the PBX's `caller` is often the agent's own extension).
    pub fn other_party(&self) -> Option<&str> {
        match self.direction {
            Some(Direction::Outbound | Direction::Internal) => {
                self.external_number.as_deref().or(self.caller.as_deref())
            }
            _ => self.caller.as_deref().or(self.external_number.as_deref()),
        }
    }
}

fn keep_last(slot: &mut Option<String>, value: &Option<String>) {
    if value.is_some() {
        slot.clone_from(value);
    }
}

fn union(into: &mut Vec<String>, items: &[String]) {
    for item in items {
        if !into.contains(item) {
            into.push(item.clone());
        }
    }
}

/// What a maintenance pass did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct PartitionChanges {
    pub created: usize,
    pub dropped: usize,
}

/// An event as a handler accepted it.
#[derive(Debug, Clone)]
pub struct IncomingEvent {
    pub event: CallEvent,
    /// What the PBX sent, credentials left out.
    pub raw: Value,
    pub received_at: DateTime<Utc>,
}

impl IncomingEvent {
    /// When it happened: as the PBX said, else when it was received.
    pub fn at(&self) -> DateTime<Utc> {
        self.event.at.unwrap_or(self.received_at)
    }
}

/// A call whose record changed in the batch.
#[derive(Debug, Clone)]
pub struct ChangedCall {
    pub id: Uuid,
    pub report_call_id: i64,
    pub summary: CallSummary,
    pub contact_id: Option<String>,
}

/// What a batch did: for each event (in order) whether it was new, and the calls changed.
#[derive(Debug, Default)]
pub struct Ingested {
    pub new: Vec<bool>,
    pub calls: Vec<ChangedCall>,
}

/// Caps on one call (`CIDGATE_CALL_MAX_LEGS`, `CIDGATE_CALL_MAX_EVENTS`).
#[derive(Debug, Clone, Copy)]
pub struct CallCaps {
    pub max_legs: usize,
    pub max_events: usize,
}

impl Default for CallCaps {
    fn default() -> Self {
        Self {
            max_legs: 64,
            max_events: 1_000,
        }
    }
}

/// Events refused by a cap: nothing of their request is written (`422`).
#[derive(Debug, thiserror::Error)]
pub enum OverCap {
    #[error(
        "call `{call_id}` would have more than {max} legs (CIDGATE_CALL_MAX_LEGS); events of further legs are refused"
    )]
    Legs { call_id: String, max: usize },
    #[error(
        "call `{call_id}` would have more than {max} events (CIDGATE_CALL_MAX_EVENTS); further events are refused"
    )]
    Events { call_id: String, max: usize },
    #[error(
        "the tenant stores {max} calls, its cap (tenant set --max-calls); events of new calls are refused"
    )]
    Calls { max: i64 },
}

impl OverCap {
    /// The cap's name in metrics.
    pub fn cap(&self) -> &'static str {
        match self {
            Self::Legs { .. } => "max_legs",
            Self::Events { .. } => "max_events",
            Self::Calls { .. } => "max_calls",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        format!("2026-12-01T{s}Z").parse().unwrap()
    }

    #[test]
    fn the_other_party_of_an_outbound_or_internal_call_is_the_number_called() {
        let event = |direction: &str| {
            let json = serde_json::json!({"call_id": "a", "event": "started",
                "direction": direction, "caller": "200", "external_number": "0721234567"});
            let event = CallEvent::from_json(json.as_object().unwrap(), at("12:00:00")).unwrap();
            StoredEvent {
                at: at("10:00:00"),
                fingerprint: event.fingerprint(),
                event,
            }
        };
        for (direction, other) in [
            ("outbound", "0721234567"),
            ("internal", "0721234567"),
            ("inbound", "200"),
        ] {
            let call = CallSummary::from_events(&[event(direction)]).unwrap();
            assert_eq!(call.other_party(), Some(other), "{direction}");
        }
    }

    #[test]
    fn the_last_event_names_the_agent_and_lists_are_merged() {
        let event = |json: serde_json::Value, time: &str| {
            let event = CallEvent::from_json(json.as_object().unwrap(), at("12:00:00")).unwrap();
            StoredEvent {
                at: at(time),
                fingerprint: event.fingerprint(),
                event,
            }
        };
        let events = vec![
            event(
                serde_json::json!({"call_id": "a", "event": "hangup", "agent": "Bo(201)",
                                     "tags": "x,y"}),
                "10:05:00",
            ),
            event(
                serde_json::json!({"call_id": "a", "event": "started", "direction": "inbound",
                                     "caller": "0721234567", "agent": "Ana(200)", "tags": "y,z"}),
                "10:00:00",
            ),
        ];
        let call = CallSummary::from_events(&events).unwrap();
        assert_eq!(call.agent.as_deref(), Some("Bo(201)"));
        assert_eq!(call.tags, ["y", "z", "x"]);
        assert_eq!(call.outcome, Outcome::Missed, "ended without a pickup");
        assert_eq!(call.other_party(), Some("0721234567"));
    }
}
