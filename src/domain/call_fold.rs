//! A call's record as a bounded summary of its events (issue 29): for each value, the
//! event that gave it last (or first); so a new event, early or late, is folded in
//! without reading the call's other events, and the record is the one
//! `CallSummary::from_events` makes from the whole set, whatever the arrival order.

use std::collections::BTreeMap;

use chrono::{DateTime, SubsecRound, Utc};
use serde::{Deserialize, Serialize};

use super::agent::agent_extension;
use super::call::{CallSummary, Leg, Outcome, StoredEvent};
use super::call_event::{CallEvent, Direction, EventKind, LegRole, LookupLink};

/// Where an event stands in its call: its time (to the microsecond, as stored), ties
/// broken by its fingerprint (hex, which sorts as the bytes do).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Stamp(DateTime<Utc>, String);

impl Stamp {
    pub fn new(at: DateTime<Utc>, fingerprint: &[u8; 32]) -> Self {
        Self(at.trunc_subsecs(6), hex::encode(fingerprint))
    }

    fn at(&self) -> DateTime<Utc> {
        self.0
    }
}

/// A value and the stamp of the event that gave it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Last<T>(Stamp, T);

/// Keeps `value` when its event is later than the one that gave the value held.
fn set_last<T: Clone>(slot: &mut Option<Last<T>>, at: &Stamp, value: Option<&T>) {
    if let Some(value) = value
        && slot.as_ref().is_none_or(|held| *at > held.0)
    {
        *slot = Some(Last(at.clone(), value.clone()));
    }
}

fn set_first(slot: &mut Option<Last<String>>, at: &Stamp, value: &str) {
    if slot.as_ref().is_none_or(|held| *at < held.0) {
        *slot = Some(Last(at.clone(), value.to_owned()));
    }
}

/// `set_last` for one entry of a map.
fn set_last_in(map: &mut BTreeMap<String, Last<String>>, key: &str, at: &Stamp, value: &str) {
    match map.get_mut(key) {
        Some(held) if *at > held.0 => *held = Last(at.clone(), value.to_owned()),
        Some(_) => {}
        None => {
            map.insert(key.to_owned(), Last(at.clone(), value.to_owned()));
        }
    }
}

fn value<T: Clone>(slot: &Option<Last<T>>) -> Option<T> {
    slot.as_ref().map(|l| l.1.clone())
}

/// One leg as its events describe it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct LegFold {
    /// Its first event: the legs are listed in that order.
    first: Stamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    guid: Option<Last<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    role: Option<Last<LegRole>>,
    /// The first pickup's time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    answered_at: Option<DateTime<Utc>>,
    /// The last hangup's or miss's time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ended_at: Option<DateTime<Utc>>,
}

/// The agent, whose rule looks back one value: a bare extension does not replace the
/// same agent's name (`Ana(200)` then `200` stays `Ana(200)`). Kept: the last name that
/// is not a bare extension, and after it the last bare extension of each number.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct AgentFold {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    named: Option<Last<String>>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    bare: BTreeMap<String, Last<String>>,
}

fn is_bare(agent: &str) -> bool {
    agent_extension(agent) == Some(agent.trim())
}

impl AgentFold {
    fn add(&mut self, at: &Stamp, agent: &str) {
        if is_bare(agent) {
            if self.named.as_ref().is_none_or(|n| *at > n.0) {
                set_last_in(&mut self.bare, agent.trim(), at, agent);
            }
            return;
        }
        set_last(&mut self.named, at, Some(&agent.to_owned()));
        // Bare extensions before the newest name no longer count.
        if let Some(named) = &self.named {
            self.bare.retain(|_, last| last.0 > named.0);
        }
    }

    fn agent(&self) -> Option<String> {
        let last_bare = self.bare.iter().max_by(|a, b| a.1.0.cmp(&b.1.0));
        match (&self.named, last_bare) {
            (named, None) => value(named),
            (Some(named), Some((extension, _)))
                if self.bare.len() == 1 && agent_extension(&named.1) == Some(extension) =>
            {
                Some(named.1.clone())
            }
            (_, Some((_, bare))) => Some(bare.1.clone()),
        }
    }
}

/// A call's events folded: what its record needs, bounded by its distinct values, not
/// by its events.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CallFold {
    /// The first event of any kind: when the call started, and its name until a PBX leg.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    first: Option<Last<String>>,
    /// The first PBX leg's event (not cidgate's `requested`): the call's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    first_leg: Option<Last<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    request_id: Option<Last<i64>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    direction: Option<Last<Direction>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    caller: Option<Last<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    caller_name: Option<Last<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    dnis: Option<Last<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    external_number: Option<Last<String>>,
    #[serde(default)]
    agent: AgentFold,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    group: Option<Last<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    recording_url: Option<Last<String>>,
    /// Each code's or tag's first event and place in it: the lists keep that order.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    account_codes: BTreeMap<String, (Stamp, usize)>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    tags: BTreeMap<String, (Stamp, usize)>,
    #[serde(default)]
    recorded: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    lookup: Option<Last<LookupLink>>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    extra: BTreeMap<String, Last<String>>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    legs: BTreeMap<String, LegFold>,
}

impl CallFold {
    /// The fold of `events` (in any order, repeats included).
    pub fn of(events: &[StoredEvent]) -> Self {
        let mut fold = Self::default();
        for stored in events {
            fold.add(&Stamp::new(stored.at, &stored.fingerprint), &stored.event);
        }
        fold
    }

    /// Folds in one event, given its stamp; a repeat changes nothing.
    pub fn add(&mut self, at: &Stamp, e: &CallEvent) {
        set_first(&mut self.first, at, &e.call_id);
        if e.kind() != EventKind::Requested {
            set_first(&mut self.first_leg, at, &e.call_id);
            self.add_to_leg(at, e);
        }
        set_last(&mut self.request_id, at, e.request_id.as_ref());
        set_last(&mut self.direction, at, e.direction.as_ref());
        set_last(&mut self.caller, at, e.caller.as_ref());
        set_last(&mut self.caller_name, at, e.caller_name.as_ref());
        set_last(&mut self.dnis, at, e.dnis.as_ref());
        set_last(&mut self.external_number, at, e.external_number.as_ref());
        if let Some(agent) = &e.agent {
            self.agent.add(at, agent);
        }
        set_last(&mut self.group, at, e.group.as_ref());
        set_last(&mut self.recording_url, at, e.recording_url.as_ref());
        first_places(&mut self.account_codes, at, &e.account_codes);
        first_places(&mut self.tags, at, &e.tags);
        self.recorded |= e.recorded || e.kind() == EventKind::Recorded;
        set_last(&mut self.lookup, at, e.lookup.as_ref());
        for (k, v) in &e.extra {
            set_last_in(&mut self.extra, k, at, v);
        }
    }

    fn add_to_leg(&mut self, at: &Stamp, e: &CallEvent) {
        let leg = self
            .legs
            .entry(e.call_id.clone())
            .or_insert_with(|| LegFold {
                first: at.clone(),
                guid: None,
                role: None,
                answered_at: None,
                ended_at: None,
            });
        if *at < leg.first {
            leg.first = at.clone();
        }
        set_last(&mut leg.guid, at, e.guid.as_ref());
        set_last(&mut leg.role, at, e.leg.as_ref());
        match e.kind() {
            EventKind::Pickup => {
                leg.answered_at = leg.answered_at.min(Some(at.at())).or(Some(at.at()));
            }
            EventKind::Hangup | EventKind::Missed => {
                leg.ended_at = leg.ended_at.max(Some(at.at()));
            }
            _ => {}
        }
    }

    /// The call's record; `None` before any event.
    pub fn summary(&self) -> Option<CallSummary> {
        let first = self.first.as_ref()?;
        let key = self.first_leg.as_ref().unwrap_or(first);
        let mut legs: Vec<(&Stamp, Leg)> = self
            .legs
            .iter()
            .map(|(call_id, l)| {
                let (answered_at, ended_at) = (l.answered_at, l.ended_at);
                let outcome = match (answered_at, ended_at) {
                    (Some(_), _) => Outcome::Answered,
                    (None, Some(_)) => Outcome::Missed,
                    (None, None) => Outcome::InProgress,
                };
                // A PBX that sends no times: a hangup received before its pickup.
                let answered_at = match (answered_at, ended_at) {
                    (Some(answered), Some(ended)) if ended < answered => Some(ended),
                    _ => answered_at,
                };
                let leg = Leg {
                    call_id: call_id.clone(),
                    guid: value(&l.guid),
                    leg: value(&l.role),
                    answered_at,
                    ended_at,
                    outcome,
                };
                (&l.first, leg)
            })
            .collect();
        legs.sort_by(|a, b| a.0.cmp(b.0));
        let legs: Vec<Leg> = legs.into_iter().map(|(_, leg)| leg).collect();

        let request_id = value(&self.request_id);
        let lookup = value(&self.lookup);
        let direction = value(&self.direction)
            .or(request_id.map(|_| Direction::Outbound))
            .or(lookup.as_ref().map(|_| Direction::Inbound));
        // A click-to-call is answered when the dialled party picks up, not the agent.
        let answered_at = legs
            .iter()
            .filter(|l| request_id.is_none() || l.leg != Some(LegRole::Agent))
            .filter_map(|l| l.answered_at)
            .min();
        let ended_at = if legs.iter().all(|l| l.ended_at.is_some()) {
            legs.iter().filter_map(|l| l.ended_at).max()
        } else {
            None
        };
        let outcome = match (ended_at, answered_at) {
            (None, _) => Outcome::InProgress,
            (Some(_), Some(_)) => Outcome::Answered,
            (Some(_), None) => Outcome::Missed,
        };
        Some(CallSummary {
            activecallkey: key.1.clone(),
            request_id,
            direction,
            caller: value(&self.caller),
            caller_name: value(&self.caller_name),
            dnis: value(&self.dnis),
            external_number: value(&self.external_number),
            agent: self.agent.agent(),
            group: value(&self.group),
            account_codes: in_first_order(&self.account_codes),
            tags: in_first_order(&self.tags),
            started_at: first.0.at(),
            answered_at,
            ended_at,
            outcome,
            recorded: self.recorded,
            recording_url: value(&self.recording_url),
            legs,
            lookup,
            extra: self
                .extra
                .iter()
                .map(|(k, v)| (k.clone(), v.1.clone()))
                .collect(),
        })
    }
}

/// Keeps each item's first event and place in that event's list.
fn first_places(places: &mut BTreeMap<String, (Stamp, usize)>, at: &Stamp, items: &[String]) {
    for (i, item) in items.iter().enumerate() {
        let place = (at.clone(), i);
        let held = places.entry(item.clone()).or_insert_with(|| place.clone());
        if place < *held {
            *held = place;
        }
    }
}

fn in_first_order(places: &BTreeMap<String, (Stamp, usize)>) -> Vec<String> {
    let mut items: Vec<(&(Stamp, usize), &String)> = places.iter().map(|(k, p)| (p, k)).collect();
    items.sort();
    items.into_iter().map(|(_, item)| item.clone()).collect()
}

#[cfg(test)]
mod tests {
    use rand::rngs::StdRng;
    use rand::seq::{IndexedRandom, SliceRandom};
    use rand::{Rng, SeedableRng};

    use super::*;

    fn pick(rng: &mut StdRng, from: &[&str]) -> Option<String> {
        rng.random_bool(0.5)
            .then(|| (*from.choose(rng).unwrap()).to_owned())
    }

    /// A random event of a few legs, times, agents and values, so that ties, late
    /// events and the agent's rule all occur.
    fn event(rng: &mut StdRng) -> StoredEvent {
        use EventKind::*;
        let kinds = [
            Started, Ringing, Pickup, Transfer, Recorded, Missed, Hangup, Lookup, Requested,
        ];
        let list = |rng: &mut StdRng| -> Vec<String> {
            let n = rng.random_range(0..3);
            (0..n)
                .map(|_| ["x", "y", "z"].choose(rng).unwrap().to_string())
                .collect()
        };
        let mut e = CallEvent {
            call_id: pick(rng, &["a", "b", "c"]).unwrap_or_else(|| "a".into()),
            event: Some(*kinds.choose(rng).unwrap()),
            direction: rng.random_bool(0.3).then_some(Direction::Inbound),
            caller: pick(rng, &["0721", "0722"]),
            caller_name: pick(rng, &["Ana", "Bo"]),
            external_number: pick(rng, &["0731", "0732"]),
            agent: pick(
                rng,
                &["200", "Ana(200)", "Bo(201)", "201", "Ana", "Ana(200)"],
            ),
            group: pick(rng, &["g1", "g2"]),
            account_codes: list(rng),
            tags: list(rng),
            recorded: rng.random_bool(0.1),
            request_id: rng.random_bool(0.2).then_some(7),
            leg: rng.random_bool(0.3).then_some(LegRole::Agent),
            guid: pick(rng, &["g-1", "g-2"]),
            lookup: rng.random_bool(0.1).then(|| LookupLink {
                identified: true,
                contact_id: Some("1".into()),
                degraded: false,
                verstat: None,
                attest: None,
                screened: None,
            }),
            ..CallEvent::default()
        };
        if let Some(value) = pick(rng, &["v1", "v2"]) {
            e.extra.insert("k".into(), value);
        }
        let second = rng.random_range(0..6);
        StoredEvent {
            at: format!("2026-12-01T10:00:0{second}Z").parse().unwrap(),
            fingerprint: e.fingerprint(),
            event: e,
        }
    }

    #[test]
    fn the_fold_gives_the_record_of_the_whole_set_whatever_the_order_events_come_in() {
        let mut rng = StdRng::seed_from_u64(29);
        for round in 0..3_000 {
            let n = rng.random_range(1..12);
            let mut events: Vec<StoredEvent> = (0..n).map(|_| event(&mut rng)).collect();
            let expected = CallSummary::from_events(&events);
            // One at a time in another order, some repeated, the summary kept as stored.
            events.shuffle(&mut rng);
            let repeated = events[0].clone();
            events.push(repeated);
            let mut fold = CallFold::default();
            for e in &events {
                let stored = serde_json::to_value(&fold).unwrap();
                fold = serde_json::from_value(stored).unwrap();
                fold.add(&Stamp::new(e.at, &e.fingerprint), &e.event);
            }
            assert_eq!(fold.summary(), expected, "round {round}: {events:#?}");
            assert_eq!(CallFold::of(&events), fold, "round {round}");
        }
    }

    #[test]
    fn a_time_is_kept_to_the_microsecond_as_the_database_keeps_it() {
        let at: DateTime<Utc> = "2026-12-01T10:00:00.123456789Z".parse().unwrap();
        let stamp = Stamp::new(at, &[0; 32]);
        assert_eq!(stamp.at().to_rfc3339(), "2026-12-01T10:00:00.123456+00:00");
    }
}
