//! The `http` dialer: a PBX's dial API, called through a URL template (method, headers,
//! optional body), with the PBX's own id read from its JSON answer when it gives one.
//! It goes out through `outbound` as web services do: no redirects, no proxy, its target
//! under the tenant's SSRF guard when set and at every dial (a PBX in a private network
//! needs `CIDGATE_WEBHOOK_ALLOW_NETWORKS`, `CIDR@tenant` for one tenant).

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::template::url_escape;
use super::{ANSWER_WITHIN, Accepted, DialError, DialRequest, Dialer, Template};
use crate::outbound::{self, Clients, Network, Refused};

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
    /// The tenant's client: its guard allows what the tenant's rules allow.
    client: outbound::Client,
}

/// The clients of `http` dialers (one per tenant a `CIDR@tenant` rule names): the PBX's
/// first answer within [`ANSWER_WITHIN`], no proxy.
pub fn clients(network: &Network) -> anyhow::Result<Clients> {
    Clients::new(
        network,
        outbound::Settings {
            user_agent: concat!("cidgate-dial/", env!("CARGO_PKG_VERSION")),
            timeout: ANSWER_WITHIN,
            connect_timeout: ANSWER_WITHIN,
            proxy: None,
        },
    )
}

/// A request as the dialer's URL template is checked with.
fn sample() -> DialRequest {
    DialRequest {
        request_id: 1,
        agent_extension: "200".into(),
        agent: "Agent(200)".into(),
        number: "+40721234567".into(),
        dialled: "0721234567".into(),
        queue: None,
        contact_name: None,
    }
}

impl HttpDialer {
    pub fn new(settings: HttpSettings, secret: HttpSecret, client: outbound::Client) -> Self {
        Self {
            settings,
            secret,
            client,
        }
    }

    /// Checks the dial URL's target with the tenant's client as every dial will (when the
    /// dialer is set); the refusal's detail is for the operator.
    pub async fn check_target(
        settings: &HttpSettings,
        client: &outbound::Client,
    ) -> Result<(), Refused> {
        match url::Url::parse(&settings.url.render(&sample(), url_escape)) {
            Ok(url) => client.check_target(&url).await,
            Err(_) => Ok(()),
        }
    }

    /// The request the PBX gets, as a check when the dialer is set.
    pub fn check(settings: &HttpSettings) -> Result<(), String> {
        let url = settings.url.render(&sample(), url_escape);
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
        let url = url::Url::parse(&s.url.render(request, url_escape))
            .map_err(|_| DialError("the dial URL is not a valid URL".into()))?;
        let method = method(&s.method).map_err(DialError)?;
        self.client.check_literals(&url).map_err(refused)?;
        let mut call = self.client.http().request(method, url.clone());
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
        let mut response = call.send().await.map_err(|e| match outbound::refusal(&e) {
            Some(refusal) => refused(refusal),
            // The URL may carry a key in its query: name the host only.
            None => DialError(format!(
                "the dial API at {} could not be reached: {}",
                url.host_str().unwrap_or_default(),
                kind(&e)
            )),
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

/// A refused target: the operator's log has the address, the caller only the rule (a
/// name's private address would answer the tenant's questions about the network).
fn refused(refusal: Refused) -> DialError {
    tracing::warn!(detail = %refusal.detail(), "the http dialer's target is refused");
    DialError(format!(
        "the dial API's address is refused: {}",
        refusal.rule()
    ))
}

fn method(raw: &str) -> Result<reqwest::Method, String> {
    match raw.to_ascii_uppercase().as_str() {
        "GET" => Ok(reqwest::Method::GET),
        "POST" => Ok(reqwest::Method::POST),
        "PUT" => Ok(reqwest::Method::PUT),
        _ => Err(format!("--method: `{raw}` is not GET, POST or PUT")),
    }
}

pub fn header_name(name: &str) -> Result<(), String> {
    reqwest::header::HeaderName::from_bytes(name.as_bytes())
        .map(drop)
        .map_err(|_| format!("`{name}` is not a header name"))
}

fn kind(e: &reqwest::Error) -> &'static str {
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
