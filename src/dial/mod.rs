//! Dialers: how cidgate asks a tenant's PBX to ring the agent, then the number (issue 18,
//! item 4). One trait; one adapter per kind of PBX: a dial-URL template (`http`),
//! Asterisk AMI `Originate` (`asterisk-ami`), FreeSWITCH ESL `bgapi originate`
//! (`freeswitch-esl`). Dialers are set by the operator (CLI); an `http` dialer's target
//! is still under the tenant's SSRF guard (`outbound`), as web services are. Their
//! secrets are never printed or logged.

pub mod ami;
pub mod click2call;
pub mod esl;
pub mod http;
mod template;
mod wire;

use std::time::Duration;

use crate::domain::StoredDialer;
use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use template::{PLACEHOLDERS, Template};

/// How long connecting to the PBX and its first answer may take.
pub const ANSWER_WITHIN: Duration = Duration::from_secs(10);
/// How long the PBX's later word on an originate (AMI's `OriginateResponse`, ESL's
/// `BACKGROUND_JOB`) is waited for: the agent's phone rings for at most this long.
pub const RESULT_WITHIN: Duration = Duration::from_secs(90);

/// What the PBX is asked to do.
#[derive(Debug, Clone)]
pub struct DialRequest {
    pub request_id: i64,
    pub agent_extension: String,
    /// `Name(extension)`.
    pub agent: String,
    /// The normalized number (E.164).
    pub number: String,
    /// What the PBX dials: the queue's prefix, then the number as the dialer wants it.
    pub dialled: String,
    pub queue: Option<String>,
    /// The contact's name, shown on the agent's phone while it rings, when known.
    pub contact_name: Option<String>,
}

/// The PBX took the request.
pub struct Accepted {
    /// The PBX's own id for it, when it gave one.
    pub pbx_id: Option<String>,
    /// The PBX's later word on it, when it sends one: its id of the call, or why the
    /// call failed.
    pub result: Option<BoxFuture<'static, Result<Option<String>, String>>>,
}

/// Why the PBX did not take the request; the message is safe to show (never a secret).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DialError(pub String);

/// A way of asking a PBX to place a click-to-call.
pub trait Dialer: Send + Sync {
    fn dial<'a>(&'a self, request: &'a DialRequest) -> BoxFuture<'a, Result<Accepted, DialError>>;
}

/// The dialer kinds, as `cidgate dialer set` names them.
pub const KINDS: [&str; 3] = ["http", "asterisk-ami", "freeswitch-esl"];

/// The tenant's dialer from what is stored; an `http` one goes out through the
/// tenant's client of `http_clients` ([`http::clients`]).
pub fn build(
    stored: &StoredDialer,
    http_clients: &crate::outbound::Clients,
    tenant_slug: &str,
) -> anyhow::Result<Box<dyn Dialer>> {
    let secret = stored.secret.clone().unwrap_or(Value::Null);
    Ok(match stored.kind.as_str() {
        "http" => Box::new(http::HttpDialer::new(
            serde_json::from_value(stored.settings.clone())?,
            if secret.is_null() {
                http::HttpSecret::default()
            } else {
                read_secret(secret)?
            },
            http_clients.for_tenant(tenant_slug)?,
        )),
        "asterisk-ami" => Box::new(ami::AmiDialer::new(
            serde_json::from_value(stored.settings.clone())?,
            read_secret(secret)?,
        )),
        "freeswitch-esl" => Box::new(esl::EslDialer::new(
            serde_json::from_value(stored.settings.clone())?,
            read_secret(secret)?,
        )),
        other => anyhow::bail!("unknown dialer kind `{other}`"),
    })
}

/// The stored secret; a parse error is not passed on, as serde's message may quote it.
fn read_secret<T: for<'de> Deserialize<'de>>(secret: Value) -> anyhow::Result<T> {
    serde_json::from_value(secret)
        .map_err(|_| anyhow::anyhow!("the dialer's stored secret is unreadable"))
}

/// A `host:port` a dialer connects to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
}

impl Endpoint {
    pub fn check(host: &str, port: u16) -> Result<Self, String> {
        let ok = !host.is_empty()
            && host.len() <= 253
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b));
        if !ok {
            return Err(format!("`{host}` is not a host name or address"));
        }
        if port == 0 {
            return Err("the port must not be 0".into());
        }
        Ok(Self {
            host: host.trim_matches(['[', ']']).to_owned(),
            port,
        })
    }

    /// Connects within [`ANSWER_WITHIN`].
    pub async fn connect(&self) -> Result<tokio::net::TcpStream, DialError> {
        let connect = tokio::net::TcpStream::connect((self.host.as_str(), self.port));
        match tokio::time::timeout(ANSWER_WITHIN, connect).await {
            Ok(Ok(stream)) => Ok(stream),
            Ok(Err(e)) => Err(DialError(format!(
                "could not connect to {}:{}: {e}",
                self.host, self.port
            ))),
            Err(_) => Err(DialError(format!(
                "{}:{} did not accept a connection within {} s",
                self.host,
                self.port,
                ANSWER_WITHIN.as_secs()
            ))),
        }
    }
}
