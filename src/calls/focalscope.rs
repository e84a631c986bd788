//! The FocalScope URL adapter (reference/dial-api-and-event-url-adapter): its callback's
//! parameters as a call event.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use crate::domain::{CallEvent, FieldError, query_fields};

/// The FocalScope URL adapter's callback (reference/dial-api-and-event-url-adapter):
/// `CallType` API is the agent's leg, Outgoing the dialled party's; the rest map one
/// to one. Parameters it does not name are kept as unknown fields.
pub fn event(pairs: &[(String, String)], now: DateTime<Utc>) -> Result<CallEvent, Vec<FieldError>> {
    let query = query_fields(pairs)?;
    let mut map = Map::new();
    let mut errors = Vec::new();
    for (name, value) in query {
        let text = value.as_str().unwrap_or_default().to_owned();
        let field = match name.as_str() {
            "CallID" => "call_id",
            "Event" => "event",
            "RequestID" => "request_id",
            "EventCode" => "code",
            "Guid" => "guid",
            "IsCallRecorded" => {
                match text.trim() {
                    "" | "0" => {}
                    "1" => {
                        map.insert("recorded".into(), Value::Bool(true));
                    }
                    _ => errors.push(FieldError::new(
                        "IsCallRecorded",
                        "must be 1 (recorded) or empty (not recorded)",
                    )),
                }
                continue;
            }
            "CallType" => {
                match text.trim().to_ascii_lowercase().as_str() {
                    "api" => {
                        map.insert("leg".into(), "agent".into());
                        map.insert("direction".into(), "Outbound".into());
                    }
                    "outgoing" => {
                        map.insert("leg".into(), "external".into());
                        map.insert("direction".into(), "Outbound".into());
                    }
                    "incoming" | "inbound" => {
                        map.insert("direction".into(), "Inbound".into());
                    }
                    "" => {}
                    _ => {
                        map.insert("CallType".into(), Value::String(text));
                    }
                }
                continue;
            }
            other => other,
        };
        if text.is_empty() && field != name {
            // The adapter sends every placeholder, empty when it has no value.
            continue;
        }
        map.insert(field.to_owned(), Value::String(text));
    }
    let rename = |mut e: FieldError| {
        e.field = match e.field.as_str() {
            "call_id" => "CallID",
            "event" => "Event",
            "request_id" => "RequestID",
            "code" => "EventCode",
            "guid" => "Guid",
            other => other,
        }
        .to_owned();
        e
    };
    match CallEvent::from_json(&map, now) {
        Ok(event) if errors.is_empty() => Ok(event),
        Ok(_) => Err(errors),
        Err(found) => {
            errors.extend(found.into_iter().map(rename));
            Err(errors)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{CallSummary, Direction, EventKind, LegRole, Outcome, StoredEvent};

    fn pairs(query: &str) -> Vec<(String, String)> {
        form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect()
    }

    fn now() -> DateTime<Utc> {
        "2026-12-01T12:00:00Z".parse().unwrap()
    }

    fn fields(errors: Vec<FieldError>) -> Vec<String> {
        errors.into_iter().map(|e| e.field).collect()
    }

    fn at(s: &str) -> DateTime<Utc> {
        format!("2026-12-01T{s}Z").parse().unwrap()
    }

    fn focalscope(query: &str, time: &str) -> StoredEvent {
        let pairs: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect();
        let event = event(&pairs, at("12:00:00")).unwrap();
        StoredEvent {
            at: at(time),
            fingerprint: event.fingerprint(),
            event,
        }
    }

    /// The reference's four callbacks of RequestID 513, each received at its own time.
    fn reference_callbacks() -> Vec<StoredEvent> {
        vec![
            focalscope(
                "CallType=API&Event=pickup&CallID=1000000087849&RequestID=513&EventCode=2&IsCallRecorded=&Guid=bfa2dbc8-ab8a-34c8-f243-c2aad8c446ff",
                "10:00:05",
            ),
            focalscope(
                "CallType=Outgoing&Event=pickup&CallID=1000000087850&RequestID=513&EventCode=2&IsCallRecorded=&Guid=923041af-adb5-a8ae-f29c-e60ea5e17448",
                "10:00:15",
            ),
            focalscope(
                "CallType=Outgoing&Event=hangup&CallID=1000000087850&RequestID=513&EventCode=1&IsCallRecorded=1&Guid=923041af-adb5-a8ae-f29c-e60ea5e17448",
                "10:02:15",
            ),
            focalscope(
                "CallType=API&Event=hangup&CallID=1000000087849&RequestID=513&EventCode=1&IsCallRecorded=1&Guid=bfa2dbc8-ab8a-34c8-f243-c2aad8c446ff",
                "10:02:16",
            ),
        ]
    }

    #[test]
    fn the_reference_callbacks_make_one_answered_recorded_call_with_two_legs() {
        let call = CallSummary::from_events(&reference_callbacks()).unwrap();
        assert_eq!(call.request_id, Some(513));
        assert_eq!(call.activecallkey, "1000000087849");
        assert_eq!(call.direction, Some(Direction::Outbound));
        assert_eq!(call.outcome, Outcome::Answered);
        assert!(call.recorded);
        assert_eq!(call.legs.len(), 2);
        assert_eq!(call.legs[0].leg, Some(LegRole::Agent));
        assert_eq!(call.legs[1].leg, Some(LegRole::External));
        assert!(call.legs.iter().all(|l| l.outcome == Outcome::Answered));
        assert_eq!(
            call.answered_at,
            Some(at("10:00:15")),
            "the dialled party's pickup"
        );
        assert_eq!(call.ended_at, Some(at("10:02:16")));
        assert_eq!(call.talk_ms(), Some(121_000));
        assert_eq!(call.duration_ms(), Some(131_000));
    }

    #[test]
    fn the_record_does_not_depend_on_the_order_or_repetition_of_events() {
        let events = reference_callbacks();
        let expected = CallSummary::from_events(&events).unwrap();
        let mut shuffled: Vec<StoredEvent> = events.iter().rev().cloned().collect();
        shuffled.extend(events.iter().take(2).cloned());
        shuffled.rotate_left(3);
        assert_eq!(CallSummary::from_events(&shuffled).unwrap(), expected);
    }

    #[test]
    fn a_call_with_a_leg_still_up_is_in_progress() {
        let events = reference_callbacks();
        let call = CallSummary::from_events(&events[..3]).unwrap();
        assert_eq!(call.outcome, Outcome::InProgress);
        assert_eq!(call.ended_at, None);
        assert_eq!(call.talk_ms(), None);
    }

    #[test]
    fn an_agent_who_misses_the_click_to_call_makes_a_missed_call() {
        let events = vec![focalscope(
            "CallType=API&Event=missed&CallID=1&RequestID=7&EventCode=3",
            "09:00:00",
        )];
        let call = CallSummary::from_events(&events).unwrap();
        assert_eq!(call.outcome, Outcome::Missed);
        assert_eq!(call.legs[0].outcome, Outcome::Missed);
        assert_eq!(call.talk_ms(), Some(0));
    }

    #[test]
    fn a_placed_click_to_call_keeps_what_the_request_knew_and_adds_no_leg() {
        use crate::domain::placed_event;
        let placed = placed_event(
            513,
            "Agent1(200)",
            "+40721234567",
            Some("Ion"),
            at("10:00:00"),
        );
        let placed = StoredEvent {
            at: at("10:00:00"),
            fingerprint: placed.fingerprint(),
            event: placed,
        };
        let alone = CallSummary::from_events(std::slice::from_ref(&placed)).unwrap();
        assert_eq!(alone.outcome, Outcome::InProgress);
        assert!(alone.legs.is_empty(), "{:?}", alone.legs);
        assert_eq!(alone.agent.as_deref(), Some("Agent1(200)"));
        assert_eq!(alone.other_party(), Some("+40721234567"));

        let mut events = reference_callbacks();
        events.push(placed);
        let call = CallSummary::from_events(&events).unwrap();
        assert_eq!(call.activecallkey, "1000000087849", "the first PBX leg");
        assert_eq!(call.legs.len(), 2);
        assert_eq!(call.started_at, at("10:00:00"), "when it was placed");
        assert_eq!(call.agent.as_deref(), Some("Agent1(200)"));
        assert_eq!(call.external_number.as_deref(), Some("+40721234567"));
        assert_eq!(call.caller_name.as_deref(), Some("Ion"));
        assert_eq!(call.outcome, Outcome::Answered);

        // A PBX that names the agent by its extension alone keeps the name; another
        // agent replaces it.
        let by_extension = |agent: &str| {
            let json = serde_json::json!({"call_id": "1000000087849", "event": "hangup",
                "request_id": 513, "agent": agent});
            let event = CallEvent::from_json(json.as_object().unwrap(), at("12:00:00")).unwrap();
            StoredEvent {
                at: at("10:03:00"),
                fingerprint: event.fingerprint(),
                event,
            }
        };
        let mut with_extension = events.clone();
        with_extension.push(by_extension("200"));
        let call = CallSummary::from_events(&with_extension).unwrap();
        assert_eq!(call.agent.as_deref(), Some("Agent1(200)"));
        events.push(by_extension("201"));
        let call = CallSummary::from_events(&events).unwrap();
        assert_eq!(call.agent.as_deref(), Some("201"));
    }

    #[test]
    fn the_focalscope_callbacks_map_to_legs() {
        let agent = event(
            &pairs("CallType=API&Event=pickup&CallID=1000000087849&RequestID=513&EventCode=2&IsCallRecorded=&Guid=bfa2dbc8-ab8a-34c8-f243-c2aad8c446ff&token=s"),
            now(),
        )
        .unwrap();
        assert_eq!(agent.call_id, "1000000087849");
        assert_eq!(agent.leg, Some(LegRole::Agent));
        assert_eq!(agent.kind(), EventKind::Pickup);
        assert_eq!(agent.request_id, Some(513));
        assert_eq!(agent.code.as_deref(), Some("2"));
        assert!(!agent.recorded);
        assert!(agent.extra.is_empty(), "the token is never kept");
        let dialled = event(
            &pairs("CallType=Outgoing&Event=hangup&CallID=1000000087850&RequestID=513&EventCode=1&IsCallRecorded=1&Guid=923041af"),
            now(),
        )
        .unwrap();
        assert_eq!(dialled.leg, Some(LegRole::External));
        assert!(dialled.recorded);
        assert_eq!(dialled.direction, Some(Direction::Outbound));
    }

    #[test]
    fn focalscope_errors_name_the_adapter_parameter() {
        let errors = event(
            &pairs("CallType=API&Event=boom&CallID=&RequestID=x&IsCallRecorded=maybe"),
            now(),
        )
        .unwrap_err();
        assert_eq!(
            fields(errors),
            ["IsCallRecorded", "CallID", "Event", "RequestID"]
        );
    }
}
