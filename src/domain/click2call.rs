//! Where a click-to-call request stands: what the dialer said, then what the PBX's
//! events (both legs, linked by the RequestID) say.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::agent::Extension;
use super::call_event::{CallEvent, Direction, EventKind, LegRole};
use serde_json::Value;

/// What the dialer made of the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DialStatus {
    /// Asked, no answer yet.
    Pending,
    /// The PBX took the request (and is ringing the agent).
    Accepted,
    /// The PBX refused it or could not be reached; the reason says which.
    Failed(String),
}

impl DialStatus {
    pub fn from_stored(status: &str, reason: Option<String>) -> Self {
        match status {
            "accepted" => Self::Accepted,
            "failed" => Self::Failed(reason.unwrap_or_else(|| "the dialer failed".into())),
            _ => Self::Pending,
        }
    }
}

/// What a click-to-call knows when it is placed (issue 27): a cidgate-own event that
/// opens the request's call, so the record is there, with its agent, number and
/// contact, before the PBX says anything. `number` is the E.164 number dialled.
pub fn placed_event(
    request_id: i64,
    agent: &str,
    number: &str,
    contact_name: Option<&str>,
    at: DateTime<Utc>,
) -> CallEvent {
    CallEvent {
        call_id: request_key(request_id),
        event: Some(EventKind::Requested),
        at: Some(at),
        direction: Some(Direction::Outbound),
        caller: Some(number.to_owned()),
        caller_name: contact_name.map(str::to_owned),
        external_number: Some(number.to_owned()),
        agent: Some(agent.to_owned()),
        request_id: Some(request_id),
        ..CallEvent::default()
    }
}

/// The PBX said, after taking the request, that the agent's phone was not answered
/// (AMI's `OriginateResponse`, ESL's job result): the agent's leg is missed, so the call
/// ends instead of staying in progress when the PBX sends no events of its own.
pub fn agent_missed_event(request_id: i64, at: DateTime<Utc>) -> CallEvent {
    CallEvent {
        call_id: request_key(request_id),
        event: Some(EventKind::Missed),
        at: Some(at),
        leg: Some(LegRole::Agent),
        request_id: Some(request_id),
        ..CallEvent::default()
    }
}

/// The call id cidgate's own events of a request carry (no PBX id is known yet).
fn request_key(request_id: i64) -> String {
    format!("cidgate-request-{request_id}")
}

/// One leg of the request's call, as the call record keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct LegView {
    pub leg: Option<LegRole>,
    pub answered_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
}

/// Where the request stands, as `GET /api/v1/click2call/{RequestID}` says it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestState {
    /// The dialer has not answered yet.
    Pending,
    /// The PBX is ringing the agent.
    DiallingAgent,
    /// The agent picked up; the PBX is ringing the number.
    AgentAnswered,
    /// The dialled party picked up: agent and number are talking.
    Connected,
    /// The call was connected and has ended.
    Completed,
    /// The call never connected (`reason` says why).
    Failed,
}

/// The state and, when failed, why.
pub fn request_state(dial: &DialStatus, legs: &[LegView]) -> (RequestState, Option<String>) {
    if let DialStatus::Failed(reason) = dial {
        return (RequestState::Failed, Some(reason.clone()));
    }
    let of = |role: LegRole| legs.iter().find(|l| l.leg == Some(role));
    // A PBX that does not say which leg is which: the first is the agent's.
    let agent = of(LegRole::Agent).or_else(|| legs.iter().find(|l| l.leg.is_none()));
    let external = of(LegRole::External);
    let failed = |why: &str| (RequestState::Failed, Some(why.to_owned()));
    if let Some(external) = external {
        if external.answered_at.is_some() {
            let all_ended = legs.iter().all(|l| l.ended_at.is_some());
            let state = if all_ended || external.ended_at.is_some() {
                RequestState::Completed
            } else {
                RequestState::Connected
            };
            return (state, None);
        }
        if external.ended_at.is_some() {
            return failed("the number did not answer");
        }
    }
    match agent {
        Some(agent) if agent.answered_at.is_none() && agent.ended_at.is_some() => {
            failed("the agent did not answer")
        }
        Some(agent) if agent.answered_at.is_some() && agent.ended_at.is_some() => {
            failed("the agent hung up before the number answered")
        }
        Some(agent) if agent.answered_at.is_some() => (RequestState::AgentAnswered, None),
        _ if *dial == DialStatus::Pending && legs.is_empty() => (RequestState::Pending, None),
        _ => (RequestState::DiallingAgent, None),
    }
}

/// A dialer as stored: its kind, the settings that may be shown, and the secret that
/// may not.
#[derive(Clone)]
pub struct StoredDialer {
    pub kind: String,
    pub settings: Value,
    pub secret: Option<Value>,
}

impl std::fmt::Debug for StoredDialer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredDialer")
            .field("kind", &self.kind)
            .field("settings", &self.settings)
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// What a new request is, before the dialer is asked.
pub struct NewRequest<'a> {
    pub extension: &'a Extension,
    pub number: &'a str,
    pub dialled: &'a str,
    pub queue: Option<&'a str>,
}

/// Whether a request was opened, or why not.
#[derive(Debug, PartialEq, Eq)]
pub enum Opened {
    /// The new request's RequestID, and the agent as events name it.
    Request { request_id: i64, agent: String },
    /// The agent has a request in flight (its RequestID).
    InFlight(i64),
    /// The agent made `per_minute` requests in the last minute.
    TooMany,
    /// The tenant has `tenant_in_flight` requests in flight.
    TenantInFlight,
    /// The tenant's agents made `tenant_per_minute` requests in the last minute.
    TenantTooMany,
    /// The tenant has no such agent (it was removed after the session started).
    NoAgent,
}

/// A request as recorded.
#[derive(Debug, Clone)]
pub struct RequestRow {
    pub request_id: i64,
    pub extension: String,
    pub agent: String,
    pub number: String,
    pub dialled: String,
    pub queue: Option<String>,
    pub dial: DialStatus,
    pub pbx_id: Option<String>,
    pub created_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leg(role: LegRole, answered: bool, ended: bool) -> LegView {
        let at: DateTime<Utc> = "2026-12-01T12:00:00Z".parse().unwrap();
        LegView {
            leg: Some(role),
            answered_at: answered.then_some(at),
            ended_at: ended.then_some(at),
        }
    }

    #[test]
    fn the_request_follows_its_legs() {
        use LegRole::{Agent, External};
        use RequestState::*;
        let accepted = DialStatus::Accepted;
        let cases: Vec<(Vec<LegView>, RequestState, Option<&str>)> = vec![
            (vec![], DiallingAgent, None),
            (vec![leg(Agent, false, false)], DiallingAgent, None),
            (vec![leg(Agent, true, false)], AgentAnswered, None),
            (
                vec![leg(Agent, true, false), leg(External, false, false)],
                AgentAnswered,
                None,
            ),
            (
                vec![leg(Agent, true, false), leg(External, true, false)],
                Connected,
                None,
            ),
            (
                vec![leg(Agent, true, true), leg(External, true, true)],
                Completed,
                None,
            ),
            (
                vec![leg(Agent, false, true)],
                Failed,
                Some("the agent did not answer"),
            ),
            (
                vec![leg(Agent, true, true), leg(External, false, true)],
                Failed,
                Some("the number did not answer"),
            ),
        ];
        for (legs, state, reason) in cases {
            let got = request_state(&accepted, &legs);
            assert_eq!(got, (state, reason.map(str::to_owned)), "{legs:?}");
        }
        assert_eq!(request_state(&DialStatus::Pending, &[]), (Pending, None));
        assert_eq!(
            request_state(&DialStatus::Failed("busy".into()), &[]),
            (Failed, Some("busy".into()))
        );
    }
}
