//! Web-service profiles (DESIGN §8, call-event-webservice-profiles.txt): where a call's
//! data is sent, when, and in what shape. Pure: parsing, criteria and rendering; the
//! sending is `webhook`'s.

mod criteria;
mod delivery;
mod placeholder;
mod stored;
mod template;

use std::fmt;

use serde::{Deserialize, Serialize};

pub use criteria::Criterion;
pub use delivery::{
    Claimed, LogFilter, LoggedAttempt, LoggedDelivery, NewDelivery, NewLegDelivery, Recorded,
};
pub use placeholder::{CallFacts, LegEventFacts, Placeholder};
pub use stored::{Duplicate, StoredProfile};
pub use template::{Escape, Template};

use super::FieldError;

/// Most criteria, parameters or headers on one profile.
const MAX_ITEMS: usize = 64;
/// Longest target URL.
const MAX_URL_CHARS: usize = 2048;

/// A profile's name: what the command line and the API call it by.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct ProfileName(String);

impl ProfileName {
    /// 1–64 characters: letters, digits, `-`, `_`, `.`, spaces inside.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let name = raw.trim();
        if name.is_empty() || name.chars().count() > 64 {
            return Err("must be 1 to 64 characters".into());
        }
        if !name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.' | ' '))
        {
            return Err("may hold letters, digits, spaces, `-`, `_` and `.` only".into());
        }
        Ok(Self(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ProfileName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The HTTP methods a profile may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum HttpMethod {
    Get,
    Post,
    Put,
    Patch,
    Delete,
}

impl HttpMethod {
    pub fn parse(raw: &str) -> Result<Self, String> {
        Ok(match raw.trim().to_ascii_uppercase().as_str() {
            "GET" => Self::Get,
            "POST" => Self::Post,
            "PUT" => Self::Put,
            "PATCH" => Self::Patch,
            "DELETE" => Self::Delete,
            _ => return Err("must be GET, POST, PUT, PATCH or DELETE".into()),
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Post => "POST",
            Self::Put => "PUT",
            Self::Patch => "PATCH",
            Self::Delete => "DELETE",
        }
    }
}

/// What sends a call to a profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Trigger {
    CallFinished,
    CallStarted,
    CallAnswered,
    CallMissed,
    RecordingAvailable,
    Lookup,
    /// Every pickup, missed and hangup of every leg, one request each (the FocalScope
    /// URL adapter's callbacks).
    LegEvent,
}

impl Trigger {
    pub const NAMES: &str = "call-finished, call-started, call-answered, call-missed, recording-available, lookup, leg-event";

    pub fn parse(raw: &str) -> Result<Self, String> {
        Ok(match raw.trim().to_ascii_lowercase().as_str() {
            "call-finished" => Self::CallFinished,
            "call-started" => Self::CallStarted,
            "call-answered" => Self::CallAnswered,
            "call-missed" => Self::CallMissed,
            "recording-available" => Self::RecordingAvailable,
            "lookup" => Self::Lookup,
            "leg-event" => Self::LegEvent,
            _ => return Err(format!("must be one of {}", Self::NAMES)),
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::CallFinished => "call-finished",
            Self::CallStarted => "call-started",
            Self::CallAnswered => "call-answered",
            Self::CallMissed => "call-missed",
            Self::RecordingAvailable => "recording-available",
            Self::Lookup => "lookup",
            Self::LegEvent => "leg-event",
        }
    }

    /// Whether the call, as it now is, has reached this trigger. Each trigger sends a
    /// call to a profile once (the outbox keeps one delivery per call, profile and
    /// trigger), so "has reached" is enough: repeated and late events send nothing twice.
    pub fn reached(self, call: &CallFacts) -> bool {
        match self {
            Self::CallStarted => true,
            Self::CallAnswered => call.record.answered_at.is_some(),
            Self::CallMissed => call.record.ended_at.is_some() && call.record.answered_at.is_none(),
            Self::CallFinished => call.record.ended_at.is_some(),
            Self::RecordingAvailable => call.record.recorded || call.record.recording_url.is_some(),
            Self::Lookup => call.record.lookup.is_some(),
            // Queued per leg event as it is recorded (webhook::triggers), not per call.
            Self::LegEvent => false,
        }
    }

    /// The event name `<Event>` (and `{{DialApiEventName}}`) gives for a call sent on
    /// this trigger.
    pub fn event_name(self, call: &CallFacts) -> &'static str {
        match self {
            Self::CallStarted => "started",
            Self::CallAnswered => "pickup",
            Self::CallMissed => "missed",
            Self::CallFinished if call.record.answered_at.is_some() => "hangup",
            Self::CallFinished => "missed",
            Self::RecordingAvailable => "recorded",
            Self::Lookup => "lookup",
            Self::LegEvent => match &call.leg_event {
                Some(leg) => match leg.event.as_str() {
                    "pickup" => "pickup",
                    "missed" => "missed",
                    _ => "hangup",
                },
                None if call.record.answered_at.is_some() => "hangup",
                None => "missed",
            },
        }
    }
}

/// A name and its value template (a URL or form parameter).
#[derive(Debug, Clone, PartialEq)]
pub struct Param {
    pub name: String,
    pub value: Template,
}

/// A header; a secret one's value is masked wherever the profile is shown.
#[derive(Debug, Clone, PartialEq)]
pub struct Header {
    pub name: String,
    pub value: Template,
    pub secret: bool,
}

/// What is sent in the body.
#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    None,
    Form(Vec<Param>),
    Json(Template),
}

/// A validated profile definition (everything but its name, secret and state).
#[derive(Debug, Clone, PartialEq)]
pub struct ProfileSpec {
    pub url: url::Url,
    pub method: HttpMethod,
    pub trigger: Trigger,
    pub criteria: Vec<Criterion>,
    pub params: Vec<Param>,
    pub body: Body,
    pub headers: Vec<Header>,
    /// Requests to this profile in flight at once (the rest wait their turn).
    pub max_in_flight: u32,
}

/// Requests in flight to one profile when its definition does not say.
pub const DEFAULT_MAX_IN_FLIGHT: u32 = 8;
/// The most a profile may ask for (the instance's own limit still applies).
pub const MOST_IN_FLIGHT: u32 = 256;

/// How a profile is written by the command line, the API and the database: every
/// value as text (`NAME=VALUE` parameters, `NAME: VALUE` headers).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileInput {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub criteria: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub params: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub form: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub json_body: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headers: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_headers: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_in_flight: Option<u32>,
}

impl ProfileInput {
    /// This input with the fields `update` sets replaced (an update names only what
    /// changes; a new `url` or `from_url` replaces the other).
    pub fn merged(&self, update: &ProfileInput) -> ProfileInput {
        let mut merged = self.clone();
        if update.url.is_some() || update.from_url.is_some() {
            merged.url.clone_from(&update.url);
            merged.from_url.clone_from(&update.from_url);
            if update.from_url.is_some() {
                merged.params = None;
            }
        }
        macro_rules! take {
            ($($field:ident),*) => {$(if update.$field.is_some() {
                merged.$field.clone_from(&update.$field);
            })*};
        }
        take!(
            method,
            event,
            criteria,
            params,
            form,
            json_body,
            headers,
            secret_headers,
            max_in_flight
        );
        if update.form.as_ref().is_some_and(|f| !f.is_empty()) {
            merged.json_body = None;
        }
        if update.json_body.as_ref().is_some_and(|b| !b.is_empty()) {
            merged.form = None;
        }
        merged
    }

    /// Checks everything; every problem is named with its field.
    pub fn validate(&self) -> Result<ProfileSpec, Vec<FieldError>> {
        let mut errors = Vec::new();
        let mut params = Vec::new();
        let url = match (&self.url, &self.from_url) {
            (Some(_), Some(_)) => {
                errors.push(FieldError::new("url", "give url or from_url, not both"));
                None
            }
            (None, None) => {
                errors.push(FieldError::new("url", "is required (or from_url)"));
                None
            }
            (Some(url), None) => target_url(url)
                .map_err(|m| errors.push(FieldError::new("url", m)))
                .ok(),
            (None, Some(pasted)) => match split_pasted_url(pasted) {
                Ok((url, pairs)) => {
                    for (i, (name, value)) in pairs.into_iter().enumerate() {
                        match Template::parse(&value) {
                            Ok(value) => params.push(Param { name, value }),
                            Err(m) => errors.push(FieldError::new("from_url", m).at(i)),
                        }
                    }
                    Some(url)
                }
                Err(m) => {
                    errors.push(FieldError::new("from_url", m));
                    None
                }
            },
        };
        let method = match &self.method {
            Some(m) => HttpMethod::parse(m)
                .map_err(|m| errors.push(FieldError::new("method", m)))
                .ok(),
            None => Some(HttpMethod::Post),
        };
        let trigger = match &self.event {
            Some(e) => Trigger::parse(e)
                .map_err(|m| errors.push(FieldError::new("event", m)))
                .ok(),
            None => Some(Trigger::CallFinished),
        };
        let criteria = items(&self.criteria, "criteria", &mut errors, Criterion::parse);
        params.extend(items(&self.params, "params", &mut errors, |p| {
            param(p, '=')
        }));
        let form = items(&self.form, "form", &mut errors, |p| param(p, '='));
        let mut headers = items(&self.headers, "headers", &mut errors, |h| header(h, false));
        headers.extend(items(
            &self.secret_headers,
            "secret_headers",
            &mut errors,
            |h| header(h, true),
        ));
        let json = match self.json_body.as_deref().filter(|b| !b.trim().is_empty()) {
            Some(body) => match Template::parse(body).and_then(json_template) {
                Ok(t) => Some(t),
                Err(m) => {
                    errors.push(FieldError::new("json_body", m));
                    None
                }
            },
            None => None,
        };
        let body = match (form.is_empty(), json) {
            (true, None) => Body::None,
            (false, None) => Body::Form(form),
            (true, Some(json)) => Body::Json(json),
            (false, Some(_)) => {
                errors.push(FieldError::new(
                    "json_body",
                    "give form parameters or a JSON body, not both",
                ));
                Body::None
            }
        };
        if method == Some(HttpMethod::Get) && body != Body::None {
            errors.push(FieldError::new(
                "method",
                "GET sends no body: use POST, PUT or PATCH for form parameters or a JSON body",
            ));
        }
        let max_in_flight = self.max_in_flight.unwrap_or(DEFAULT_MAX_IN_FLIGHT);
        if !(1..=MOST_IN_FLIGHT).contains(&max_in_flight) {
            errors.push(FieldError::new(
                "max_in_flight",
                format!("must be from 1 to {MOST_IN_FLIGHT}"),
            ));
        }
        match (url, method, trigger) {
            (Some(url), Some(method), Some(trigger)) if errors.is_empty() => Ok(ProfileSpec {
                url,
                method,
                trigger,
                criteria,
                params,
                body,
                headers,
                max_in_flight,
            }),
            _ => Err(errors),
        }
    }
}

/// Each item parsed, problems recorded with the item's position.
fn items<T>(
    list: &Option<Vec<String>>,
    field: &str,
    errors: &mut Vec<FieldError>,
    parse: impl Fn(&str) -> Result<T, String>,
) -> Vec<T> {
    let list = list.as_deref().unwrap_or_default();
    if list.len() > MAX_ITEMS {
        errors.push(FieldError::new(
            field,
            format!("holds more than {MAX_ITEMS} items"),
        ));
        return Vec::new();
    }
    list.iter()
        .enumerate()
        .filter_map(|(i, item)| {
            parse(item)
                .map_err(|m| errors.push(FieldError::new(field, m).at(i)))
                .ok()
        })
        .collect()
}

/// An absolute http(s) URL; its own query stays (parameters are added after it).
fn target_url(raw: &str) -> Result<url::Url, String> {
    let raw = raw.trim();
    if raw.chars().count() > MAX_URL_CHARS {
        return Err(format!("is longer than {MAX_URL_CHARS} characters"));
    }
    if raw.contains(['<', '>', '{', '}']) {
        return Err("holds a placeholder: put placeholders in parameters, or paste the whole URL as from_url".into());
    }
    let url = url::Url::parse(raw).map_err(|e| format!("is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || !url.has_host() {
        return Err("must be an absolute http:// or https:// URL".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not carry credentials: use a secret header".into());
    }
    if url.fragment().is_some() {
        return Err("must not have a fragment".into());
    }
    Ok(url)
}

/// A pasted URL with placeholders in its query: the URL without its query, and the
/// parameters (the URL adapter's "parameters will be parsed automatically").
pub fn split_pasted_url(pasted: &str) -> Result<(url::Url, Vec<(String, String)>), String> {
    let pasted = pasted.trim();
    let (base, query) = pasted.split_once('?').unwrap_or((pasted, ""));
    let url = target_url(base)?;
    let pairs = form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .filter(|(name, _)| !name.is_empty())
        .collect();
    Ok((url, pairs))
}

fn param(raw: &str, separator: char) -> Result<Param, String> {
    let (name, value) = raw
        .split_once(separator)
        .ok_or_else(|| format!("`{raw}` is not NAME{separator}VALUE"))?;
    let name = name.trim();
    if name.is_empty() || name.chars().any(char::is_control) {
        return Err(format!("`{raw}` has no usable name"));
    }
    Ok(Param {
        name: name.to_owned(),
        value: Template::parse(value)?,
    })
}

fn header(raw: &str, secret: bool) -> Result<Header, String> {
    let (name, value) = raw
        .split_once(':')
        .ok_or_else(|| "is not `NAME: VALUE`".to_owned())?;
    let name = name.trim();
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
    {
        return Err(format!("`{name}` is not a header name"));
    }
    let lower = name.to_ascii_lowercase();
    if lower.starts_with("webhook-")
        || matches!(
            lower.as_str(),
            "host" | "content-length" | "transfer-encoding" | "connection"
        )
    {
        return Err(format!("`{name}` is set by cidgate"));
    }
    let value = value.trim();
    if value.chars().any(|c| c.is_control()) {
        return Err(format!("the value of `{name}` holds a control character"));
    }
    Ok(Header {
        name: name.to_owned(),
        value: Template::parse(value)?,
        secret,
    })
}

/// A JSON body template must give JSON for any call: checked by rendering the sample.
fn json_template(t: Template) -> Result<Template, String> {
    let rendered = t.render(&CallFacts::sample(), Escape::JsonString);
    serde_json::from_str::<serde_json::Value>(&rendered)
        .map_err(|e| format!("is not JSON once filled in (placeholders go inside strings): {e}"))?;
    Ok(t)
}

/// What a delivery sends, ready for the client.
#[derive(Debug, Clone, PartialEq)]
pub struct RenderedRequest {
    pub method: HttpMethod,
    pub url: url::Url,
    /// In order; `secret` ones are masked when shown.
    pub headers: Vec<(String, String, bool)>,
    pub content_type: Option<&'static str>,
    pub body: Vec<u8>,
}

impl RenderedRequest {
    /// The path with its query: what is signed when there is no body.
    pub fn path_and_query(&self) -> String {
        match self.url.query() {
            Some(q) => format!("{}?{q}", self.url.path()),
            None => self.url.path().to_owned(),
        }
    }
}

/// The mask shown in place of a secret header's value.
pub const MASK: &str = "********";

impl ProfileSpec {
    /// The request for `call`: parameters appended to the URL's query, form parameters
    /// or the JSON body filled in, headers filled in (control characters dropped).
    pub fn render(&self, call: &CallFacts) -> RenderedRequest {
        let mut url = self.url.clone();
        if !self.params.is_empty() {
            let mut query = url.query_pairs_mut();
            for p in &self.params {
                query.append_pair(&p.name, &p.value.render(call, Escape::None));
            }
        }
        let (content_type, body) = match &self.body {
            Body::None => (None, Vec::new()),
            Body::Form(params) => {
                let mut form = form_urlencoded::Serializer::new(String::new());
                for p in params {
                    form.append_pair(&p.name, &p.value.render(call, Escape::None));
                }
                (
                    Some("application/x-www-form-urlencoded"),
                    form.finish().into_bytes(),
                )
            }
            Body::Json(t) => (
                Some("application/json"),
                t.render(call, Escape::JsonString).into_bytes(),
            ),
        };
        let headers = self
            .headers
            .iter()
            .map(|h| {
                let value: String = h
                    .value
                    .render(call, Escape::None)
                    .chars()
                    .filter(|c| !c.is_control())
                    .collect();
                (h.name.clone(), value, h.secret)
            })
            .collect();
        RenderedRequest {
            method: self.method,
            url,
            headers,
            content_type,
            body,
        }
    }

    /// The definition as written, normalized: a pasted URL split into the URL and its
    /// parameters. `masked` hides secret header values (for showing).
    pub fn to_input(&self, masked: bool) -> ProfileInput {
        let pairs = |list: &[Param]| -> Option<Vec<String>> {
            (!list.is_empty()).then(|| {
                list.iter()
                    .map(|p| format!("{}={}", p.name, p.value.source()))
                    .collect()
            })
        };
        let headers = |secret: bool| -> Option<Vec<String>> {
            let list: Vec<String> = self
                .headers
                .iter()
                .filter(|h| h.secret == secret)
                .map(|h| {
                    let value = if secret && masked {
                        MASK
                    } else {
                        h.value.source()
                    };
                    format!("{}: {value}", h.name)
                })
                .collect();
            (!list.is_empty()).then_some(list)
        };
        ProfileInput {
            url: Some(self.url.to_string()),
            from_url: None,
            method: Some(self.method.as_str().to_owned()),
            event: Some(self.trigger.as_str().to_owned()),
            criteria: (!self.criteria.is_empty())
                .then(|| self.criteria.iter().map(ToString::to_string).collect()),
            params: pairs(&self.params),
            form: match &self.body {
                Body::Form(form) => pairs(form),
                _ => None,
            },
            json_body: match &self.body {
                Body::Json(t) => Some(t.source().to_owned()),
                _ => None,
            },
            headers: headers(false),
            secret_headers: headers(true),
            max_in_flight: Some(self.max_in_flight),
        }
    }

    /// Whether `call` meets every criterion (none: every call does).
    pub fn matches(&self, call: &CallFacts) -> bool {
        self.criteria.iter().all(|c| c.holds(call))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(url: &str) -> ProfileInput {
        ProfileInput {
            url: Some(url.into()),
            ..ProfileInput::default()
        }
    }

    #[test]
    fn defaults_are_the_references_post_on_a_finished_call() {
        let spec = input("https://crm.example.com/calls").validate().unwrap();
        assert_eq!(spec.method, HttpMethod::Post);
        assert_eq!(spec.trigger, Trigger::CallFinished);
        assert!(
            spec.matches(&CallFacts::sample()),
            "no criteria: every call"
        );
    }

    #[test]
    fn a_pasted_adapter_url_becomes_parameters() {
        let spec = ProfileInput {
            from_url: Some("https://test/identity.asp?CallType={{CallTypeName}}&Event={{DialApiEventName}}&CallID={{CallID}}&RequestID={{DialApiRequestID}}&EventCode={{DialApiEventCode}}&IsCallRecorded={{IsCallRecorded}}&Guid={{CallUUID}}".into()),
            method: Some("GET".into()),
            ..ProfileInput::default()
        }
        .validate()
        .unwrap();
        assert_eq!(spec.url.as_str(), "https://test/identity.asp");
        let names: Vec<&str> = spec.params.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "CallType",
                "Event",
                "CallID",
                "RequestID",
                "EventCode",
                "IsCallRecorded",
                "Guid"
            ]
        );
        let mut call = CallFacts::sample();
        call.record.request_id = Some(513);
        call.record.legs = serde_json::json!([{
            "call_id": "1000000087849",
            "guid": "bfa2dbc8-ab8a-34c8-f243-c2aad8c446ff",
            "leg": "agent",
        }]);
        let sent = spec.render(&call);
        assert_eq!(
            sent.url.as_str(),
            "https://test/identity.asp?CallType=API&Event=hangup&CallID=1000000087849&RequestID=513&EventCode=1&IsCallRecorded=1&Guid=bfa2dbc8-ab8a-34c8-f243-c2aad8c446ff"
        );
    }

    #[test]
    fn form_parameters_are_encoded_in_the_body() {
        let spec = ProfileInput {
            form: Some(vec![
                "name=<Caller Name>".into(),
                "note=a&b <Call Direction>".into(),
            ]),
            headers: Some(vec!["X-Source: cidgate".into()]),
            secret_headers: Some(vec!["Authorization: Bearer s3cret".into()]),
            ..input("https://crm.example.com/x.asp?fixed=1")
        }
        .validate()
        .unwrap();
        let sent = spec.render(&CallFacts::sample());
        assert_eq!(sent.url.as_str(), "https://crm.example.com/x.asp?fixed=1");
        assert_eq!(sent.body, b"name=John+Doe&note=a%26b+Inbound");
        assert_eq!(sent.content_type, Some("application/x-www-form-urlencoded"));
        assert_eq!(
            sent.headers[1],
            ("Authorization".into(), "Bearer s3cret".into(), true)
        );
    }

    #[test]
    fn bad_definitions_name_each_field() {
        let bad = ProfileInput {
            url: Some("ftp://x".into()),
            method: Some("FETCH".into()),
            event: Some("call-ended".into()),
            criteria: Some(vec!["Nope = 1".into()]),
            params: Some(vec!["novalue".into()]),
            headers: Some(vec!["Bad Name: x".into()]),
            json_body: Some("{\"a\": <Caller Name>}".into()),
            ..ProfileInput::default()
        };
        let fields: Vec<String> = bad
            .validate()
            .unwrap_err()
            .into_iter()
            .map(|e| e.field)
            .collect();
        assert_eq!(
            fields,
            [
                "url",
                "method",
                "event",
                "criteria",
                "params",
                "headers",
                "json_body"
            ]
        );
        assert!(input("https://u:p@x.example/").validate().is_err());
        assert!(input("https://x.example/<Caller Name>").validate().is_err());
        let get_with_form = ProfileInput {
            method: Some("get".into()),
            form: Some(vec!["a=b".into()]),
            ..input("https://x.example/")
        };
        assert_eq!(get_with_form.validate().unwrap_err()[0].field, "method");
    }

    #[test]
    fn the_written_form_round_trips_with_secrets_masked_when_shown() {
        let spec = ProfileInput {
            from_url: Some(
                "https://crm.example.com/x.asp?CallID={{CallID}}&From=<Caller Name>".into(),
            ),
            criteria: Some(vec!["call direction = Inbound".into()]),
            secret_headers: Some(vec!["Authorization: Bearer s3cret".into()]),
            ..ProfileInput::default()
        }
        .validate()
        .unwrap();
        let written = spec.to_input(false);
        assert_eq!(
            written.url.as_deref(),
            Some("https://crm.example.com/x.asp")
        );
        assert_eq!(
            written.params,
            Some(vec![
                "CallID={{CallID}}".into(),
                "From=<Caller Name>".into()
            ])
        );
        assert_eq!(
            written.criteria,
            Some(vec!["Call Direction = Inbound".into()])
        );
        assert_eq!(written.validate().unwrap(), spec);
        let shown = spec.to_input(true);
        assert_eq!(
            shown.secret_headers,
            Some(vec![format!("Authorization: {MASK}")])
        );
    }

    #[test]
    fn triggers_follow_the_call() {
        let mut call = CallFacts::sample();
        assert!(Trigger::CallFinished.reached(&call));
        assert!(!Trigger::CallMissed.reached(&call));
        assert_eq!(Trigger::CallFinished.event_name(&call), "hangup");
        call.record.answered_at = None;
        assert!(Trigger::CallMissed.reached(&call));
        assert_eq!(Trigger::CallFinished.event_name(&call), "missed");
        call.record.ended_at = None;
        assert!(!Trigger::CallFinished.reached(&call));
        assert!(Trigger::CallStarted.reached(&call));
        assert!(!Trigger::Lookup.reached(&call));
    }

    #[test]
    fn an_update_replaces_only_what_it_names() {
        let old = ProfileInput {
            form: Some(vec!["a=1".into()]),
            method: Some("PUT".into()),
            ..input("https://x.example/")
        };
        let new = old.merged(&ProfileInput {
            json_body: Some("{}".into()),
            ..ProfileInput::default()
        });
        assert_eq!(new.method.as_deref(), Some("PUT"));
        assert_eq!(new.form, None);
        assert_eq!(new.json_body.as_deref(), Some("{}"));
    }
}
