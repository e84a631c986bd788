//! The `http` dialer: a PBX's dial API, called through a URL template (method, headers,
//! optional body), with the PBX's own id read from its JSON answer when it gives one.
//! No redirects are followed and no system proxy is used: the operator named the URL.

use std::sync::OnceLock;

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::template::url_escape;
use super::{ANSWER_WITHIN, Accepted, DialError, DialRequest, Dialer, Template};

/// The most of the PBX's answer that is read (its id is near the top, if anywhere).
const MAX_ANSWER: usize = 64 * 1024;

/// Where the PBX's id is looked for in its answer when no pointer is set.
const ID_KEYS: [&str; 5] = ["RequestID", "request_id", "id", "call_id", "uuid"];

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpSettings {
    pub url: Template,
    pub method: String,
    /// Headers that may be shown (`Accept: application/json`); values are templates.
    #[serde(default)]
    pub headers: Vec<(String, Template)>,
    /// A body template; values are JSON-escaped when `content_type` is JSON, else
    /// percent-encoded (a form).
    #[serde(default)]
    pub body: Option<Template>,
    #[serde(default)]
    pub content_type: Option<String>,
    /// A JSON pointer to the PBX's id in its answer (`/data/id`).
    #[serde(default)]
    pub id_pointer: Option<String>,
}

/// Headers that carry credentials (`Authorization: Bearer …`): never shown.
#[derive(Clone, Default, Serialize, Deserialize)]
pub struct HttpSecret {
    pub headers: Vec<(String, String)>,
}

pub struct HttpDialer {
    settings: HttpSettings,
    secret: HttpSecret,
    client: reqwest_dial::Client,
}

impl HttpDialer {
    pub fn new(settings: HttpSettings, secret: HttpSecret) -> anyhow::Result<Self> {
        Ok(Self {
            settings,
            secret,
            client: client()?.clone(),
        })
    }

    /// The request the PBX gets, as a check when the dialer is set.
    pub fn check(settings: &HttpSettings) -> Result<(), String> {
        let sample = DialRequest {
            request_id: 1,
            agent_extension: "200".into(),
            agent: "Agent(200)".into(),
            number: "+40721234567".into(),
            dialled: "0721234567".into(),
            queue: None,
            contact_name: None,
        };
        let url = settings.url.render(&sample, url_escape);
        let parsed = url::Url::parse(&url).map_err(|e| format!("--url: `{url}`: {e}"))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err("--url: the dial URL must be http or https".into());
        }
        method(&settings.method)?;
        for (name, _) in &settings.headers {
            header_name(name)?;
        }
        if let Some(pointer) = &settings.id_pointer
            && !pointer.starts_with('/')
        {
            return Err("--id-pointer: a JSON pointer starts with `/` (/data/id)".into());
        }
        Ok(())
    }

    async fn call(&self, request: &DialRequest) -> Result<Accepted, DialError> {
        let s = &self.settings;
        let url = s.url.render(request, url_escape);
        let method = method(&s.method).map_err(DialError)?;
        let mut call = self.client.request(method, url.as_str());
        for (name, value) in &s.headers {
            call = call.header(name.as_str(), value.render(request, one_line));
        }
        for (name, value) in &self.secret.headers {
            call = call.header(name.as_str(), value.as_str());
        }
        if let Some(body) = &s.body {
            let json = s
                .content_type
                .as_deref()
                .is_some_and(|t| t.contains("json"));
            let escape = if json { json_escape } else { url_escape };
            let content_type = s
                .content_type
                .clone()
                .unwrap_or_else(|| "application/x-www-form-urlencoded".into());
            call = call
                .header("content-type", content_type)
                .body(body.render(request, escape));
        }
        let mut response = call.send().await.map_err(|e| {
            // The URL may carry a key in its query: name the host only.
            let host = url::Url::parse(&url)
                .ok()
                .and_then(|u| u.host_str().map(str::to_owned))
                .unwrap_or_default();
            DialError(format!(
                "the dial API at {host} could not be reached: {}",
                kind(&e)
            ))
        })?;
        let status = response.status();
        let mut answer = Vec::new();
        while answer.len() < MAX_ANSWER {
            match response.chunk().await {
                Ok(Some(chunk)) => answer.extend_from_slice(&chunk),
                Ok(None) | Err(_) => break,
            }
        }
        if !status.is_success() {
            return Err(DialError(format!("the dial API answered {status}")));
        }
        Ok(Accepted {
            pbx_id: pbx_id(&answer, s.id_pointer.as_deref()),
            result: None,
        })
    }
}

impl Dialer for HttpDialer {
    fn dial<'a>(&'a self, request: &'a DialRequest) -> BoxFuture<'a, Result<Accepted, DialError>> {
        self.call(request).boxed()
    }
}

/// One client for every `http` dialer: connections are reused across requests.
fn client() -> anyhow::Result<&'static reqwest_dial::Client> {
    static CLIENT: OnceLock<reqwest_dial::Client> = OnceLock::new();
    if let Some(client) = CLIENT.get() {
        return Ok(client);
    }
    let built = reqwest_dial::Client::builder()
        .tls_backend_preconfigured(crate::store::tls::system_roots()?)
        .redirect(reqwest_dial::redirect::Policy::none())
        .no_proxy()
        .connect_timeout(ANSWER_WITHIN)
        .timeout(ANSWER_WITHIN)
        .build()?;
    Ok(CLIENT.get_or_init(|| built))
}

fn method(raw: &str) -> Result<reqwest_dial::Method, String> {
    match raw.to_ascii_uppercase().as_str() {
        "GET" => Ok(reqwest_dial::Method::GET),
        "POST" => Ok(reqwest_dial::Method::POST),
        "PUT" => Ok(reqwest_dial::Method::PUT),
        _ => Err(format!("--method: `{raw}` is not GET, POST or PUT")),
    }
}

pub fn header_name(name: &str) -> Result<(), String> {
    reqwest_dial::header::HeaderName::from_bytes(name.as_bytes())
        .map(drop)
        .map_err(|_| format!("`{name}` is not a header name"))
}

fn kind(e: &reqwest_dial::Error) -> &'static str {
    if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection refused or unreachable"
    } else {
        "the request failed"
    }
}

fn one_line(value: &str) -> String {
    value.chars().filter(|c| !c.is_control()).collect()
}

/// A value inside a JSON string literal of the body template.
fn json_escape(value: &str) -> String {
    let quoted = Value::String(value.to_owned()).to_string();
    quoted[1..quoted.len() - 1].to_owned()
}

/// The PBX's id in its answer: at the pointer, else under a usual key.
fn pbx_id(answer: &[u8], pointer: Option<&str>) -> Option<String> {
    let json: Value = serde_json::from_slice(answer).ok()?;
    let found = match pointer {
        Some(pointer) => json.pointer(pointer),
        None => ID_KEYS.iter().find_map(|k| json.get(k)),
    }?;
    match found {
        Value::String(s) if !s.is_empty() => Some(s.chars().take(200).collect()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pbx_id_is_read_where_it_is() {
        assert_eq!(pbx_id(br#"{"RequestID":77}"#, None).as_deref(), Some("77"));
        assert_eq!(
            pbx_id(br#"{"data":{"id":"abc"}}"#, Some("/data/id")).as_deref(),
            Some("abc")
        );
        assert_eq!(pbx_id(b"OK", None), None);
        assert_eq!(json_escape("a\"b"), "a\\\"b");
    }
}
