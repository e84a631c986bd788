//! The call-end notification (reference/crm-integration-click2call-cdr): when a call
//! ends, the IVR sends its variables as a query string. Each tenant says which variable
//! holds which call field; a variable it does not map is kept with the call.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use crate::domain::{
    CallEvent, EVENT_FIELDS, EventKind, FieldError, check_query_pairs, event_time,
};

/// Times a call-end may carry besides the event's own fields: each becomes an event of
/// its own, so the call is answered (or not) as the IVR says.
pub const CALL_END_TIMES: &[&str] = &["started_at", "answered_at"];

/// The tenant setting that holds the mapping.
pub const CALL_END_MAPPING: &str = "call_end_mapping";

/// A tenant's names for the call fields: field → the IVR's variable.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallEndMapping(BTreeMap<String, String>);

impl CallEndMapping {
    /// Parses `field=variable` pairs (`caller=ani call_id=uniqueid`).
    pub fn parse_pairs<'a>(pairs: impl IntoIterator<Item = &'a str>) -> Result<Self, String> {
        let mut map = BTreeMap::new();
        for pair in pairs {
            let (field, variable) = pair
                .split_once('=')
                .ok_or_else(|| format!("`{pair}` is not FIELD=VARIABLE"))?;
            let (field, variable) = (field.trim(), variable.trim());
            if !is_field(field) {
                return Err(format!(
                    "`{field}` is not a call field: use one of {}, {}",
                    EVENT_FIELDS.join(", "),
                    CALL_END_TIMES.join(", ")
                ));
            }
            if variable.is_empty()
                || variable.len() > 64
                || !variable
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b))
            {
                return Err(format!(
                    "`{variable}` is not a variable name (letters, digits, _ - . up to 64)"
                ));
            }
            if map.values().any(|v| v == variable) {
                return Err(format!("variable `{variable}` is mapped twice"));
            }
            map.insert(field.to_owned(), variable.to_owned());
        }
        Ok(Self(map))
    }

    /// The mapping as stored in the tenant's settings (a JSON object).
    pub fn to_json(&self) -> Value {
        Value::Object(
            self.0
                .iter()
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect(),
        )
    }

    /// Reads the stored mapping; entries that are not valid are skipped.
    pub fn from_json(value: Option<&Value>) -> Self {
        let Some(Value::Object(map)) = value else {
            return Self::default();
        };
        Self(
            map.iter()
                .filter(|(k, _)| is_field(k))
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                .collect(),
        )
    }

    pub fn entries(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The field a variable stands for: the mapped one, else a field of the same name
    /// that no mapping claims.
    fn field_of<'a>(&'a self, variable: &'a str) -> Option<&'a str> {
        self.0
            .iter()
            .find(|(_, v)| v.as_str() == variable)
            .map(|(k, _)| k.as_str())
            .or_else(|| (is_field(variable) && !self.0.contains_key(variable)).then_some(variable))
    }

    /// The events a call-end notification stands for: a hangup (unless the IVR names
    /// another event), preceded by a start and a pickup when it gives their times.
    pub fn events(
        &self,
        pairs: &[(String, String)],
        now: DateTime<Utc>,
    ) -> Result<Vec<CallEvent>, Vec<FieldError>> {
        let mut fields = Map::new();
        let mut times: BTreeMap<&str, (String, String)> = BTreeMap::new();
        // Their raw form is stored with the events.
        check_query_pairs(pairs)?;
        let mut errors = Vec::new();
        for (variable, value) in pairs {
            if variable == "token" {
                continue;
            }
            let field = self.field_of(variable).unwrap_or(variable);
            if CALL_END_TIMES.contains(&field) {
                let field = CALL_END_TIMES
                    .iter()
                    .find(|f| **f == field)
                    .expect("listed");
                times.insert(field, (variable.clone(), value.clone()));
                continue;
            }
            if fields
                .insert(field.to_owned(), Value::String(value.clone()))
                .is_some()
            {
                errors.push(FieldError::new(variable.clone(), "is given more than once"));
            }
        }
        fields
            .entry("event")
            .or_insert_with(|| Value::String(EventKind::Hangup.as_str().into()));
        let rename = |e: FieldError| self.rename(e);
        let end = CallEvent::from_json(&fields, now)
            .map_err(|found| found.into_iter().map(rename).collect::<Vec<_>>());
        let mut events = Vec::new();
        let end = match end {
            Ok(end) => end,
            Err(found) => {
                errors.extend(found);
                return Err(errors);
            }
        };
        for (kind, field) in [
            (EventKind::Started, "started_at"),
            (EventKind::Pickup, "answered_at"),
        ] {
            let Some((variable, raw)) = times.get(field) else {
                continue;
            };
            if raw.trim().is_empty() {
                continue;
            }
            match event_time(&Value::String(raw.clone()), now) {
                Ok(at) => events.push(CallEvent {
                    call_id: end.call_id.clone(),
                    event: Some(kind),
                    at: Some(at),
                    request_id: end.request_id,
                    ..CallEvent::default()
                }),
                Err(message) => errors.push(FieldError::new(variable.clone(), message)),
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        events.push(end);
        Ok(events)
    }

    /// Names an error by the IVR's variable, which is what its author knows.
    fn rename(&self, mut error: FieldError) -> FieldError {
        if let Some(variable) = self.0.get(&error.field) {
            error.field = variable.clone();
        }
        error
    }
}

fn is_field(name: &str) -> bool {
    EVENT_FIELDS.contains(&name) || CALL_END_TIMES.contains(&name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(query: &str) -> Vec<(String, String)> {
        form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect()
    }

    fn now() -> DateTime<Utc> {
        "2026-12-01T12:00:00Z".parse().unwrap()
    }

    #[test]
    fn mapped_variables_fill_fields_and_the_rest_are_kept() {
        let mapping =
            CallEndMapping::parse_pairs(["caller=ani", "call_id=uniqueid", "answered_at=answer"])
                .unwrap();
        let events = mapping
            .events(
                &pairs("ani=0721234567&uniqueid=17.4&answer=2026-12-01T10:00:05Z&at=1764583300000&ivr_choice=2&token=x"),
                now(),
            )
            .unwrap();
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].kind(), EventKind::Pickup);
        assert_eq!(events[0].call_id, "17.4");
        let end = &events[1];
        assert_eq!(end.kind(), EventKind::Hangup);
        assert_eq!(end.caller.as_deref(), Some("0721234567"));
        assert_eq!(end.extra.get("ivr_choice").map(String::as_str), Some("2"));
        assert!(!end.extra.contains_key("token"));
    }

    #[test]
    fn errors_name_the_ivr_variable() {
        let mapping = CallEndMapping::parse_pairs(["call_id=uniqueid", "at=end"]).unwrap();
        let errors = mapping.events(&pairs("end=soon"), now()).unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["uniqueid", "end"]);
    }

    #[test]
    fn a_mapping_names_known_fields_and_each_variable_once() {
        assert!(CallEndMapping::parse_pairs(["colour=x"]).is_err());
        assert!(CallEndMapping::parse_pairs(["caller=a", "dnis=a"]).is_err());
        assert!(CallEndMapping::parse_pairs(["caller"]).is_err());
        assert!(CallEndMapping::parse_pairs(["caller=a b"]).is_err());
        let mapping = CallEndMapping::parse_pairs(["caller=ani"]).unwrap();
        assert_eq!(CallEndMapping::from_json(Some(&mapping.to_json())), mapping);
    }
}
