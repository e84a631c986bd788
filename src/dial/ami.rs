//! The Asterisk Manager Interface dialer: log in with `Events: off`, `Originate`
//! synchronously (the agent's channel first, then the dialplan dials the number), and
//! read the one response that says whether the agent's leg came up.
//!
//! `Events: off` with a synchronous originate: the connection receives no events at all
//! (an `Async` originate needs the `call` events for its `OriginateResponse`, and with
//! them the PBX's whole call-event stream for as long as the agent's phone rings). The
//! channel's id is chosen here (`ChannelId`), so it is known without that event.
//!
//! Written by hand over a TcpStream: the exchange is four messages, and a crate would
//! bring its own connection manager and event loop where one short-lived connection
//! per request is what the dialer needs (and is what a least-privilege AMI user sees).

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};

use super::wire::{Connection, Headers, one_line};
use super::{
    ANSWER_WITHIN, Accepted, DialError, DialRequest, Dialer, Endpoint, RESULT_WITHIN, Template,
};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AmiSettings {
    #[serde(flatten)]
    pub endpoint: Endpoint,
    pub username: String,
    /// The agent's channel (`PJSIP/{{AgentExtension}}`).
    pub channel: Template,
    /// The dialplan context the number is dialled in once the agent answers.
    pub context: String,
    /// The extension dialled in `context` (`{{Number}}`).
    pub exten: Template,
    /// The name the agent's phone shows while it rings (`{{ContactName}} {{E164Number}}`).
    pub caller_id: Template,
    /// The caller ID number of the agent's channel, which a plain dialplan's `Dial()`
    /// then presents to the customer: the tenant's outbound number. Unset (a dialer
    /// stored before it existed): no number, the trunk's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outbound_caller_id: Option<String>,
    /// How long the agent's phone rings (ms).
    pub timeout_ms: u32,
}

/// The manager user's secret (manager.conf `secret`).
#[derive(Clone, Serialize, Deserialize)]
pub struct AmiSecret {
    pub secret: String,
}

pub struct AmiDialer {
    settings: AmiSettings,
    secret: AmiSecret,
}

impl AmiDialer {
    pub fn new(settings: AmiSettings, secret: AmiSecret) -> Self {
        Self { settings, secret }
    }

    async fn originate(&self, request: &DialRequest) -> Result<Accepted, DialError> {
        let s = &self.settings;
        let mut conn = Connection::new(s.endpoint.connect().await?);
        let banner = conn.line().await?;
        if !banner.starts_with("Asterisk Call Manager/") {
            return Err(DialError(format!(
                "{}:{} is not an Asterisk manager interface",
                s.endpoint.host, s.endpoint.port
            )));
        }
        let login_id = format!("cidgate-login-{}", request.request_id);
        conn.send(&format!(
            "Action: Login\r\nActionID: {login_id}\r\nUsername: {}\r\nSecret: {}\r\nEvents: off\r\n\r\n",
            one_line(&s.username),
            one_line(&self.secret.secret)
        ))
        .await?;
        let login = response_to(&mut conn, &login_id).await?;
        if !is_success(&login) {
            return Err(DialError(format!(
                "the AMI login was refused: {}",
                login.get("Message").unwrap_or("no reason given")
            )));
        }

        let action_id = format!("cidgate-{}", request.request_id);
        let channel_id = format!("cidgate-{}", uuid::Uuid::new_v4());
        let name = s.caller_id.render(request, one_line);
        let originate = format!(
            "Action: Originate\r\nActionID: {action_id}\r\nChannel: {}\r\nContext: {}\r\n\
             Exten: {}\r\nPriority: 1\r\nCallerID: {}\r\nTimeout: {}\r\nChannelId: {channel_id}\r\n\
             Variable: __CIDGATE_REQUEST_ID={}\r\n\r\n",
            s.channel.render(request, one_line),
            one_line(&s.context),
            s.exten.render(request, one_line),
            caller_id(&name, s.outbound_caller_id.as_deref()),
            s.timeout_ms,
            request.request_id,
        );
        conn.send(&originate).await?;
        // Synchronous: Asterisk answers once the agent's leg is up or has failed, or at
        // once when it refuses the action ("Extension does not exist.").
        let result = async move {
            let outcome = tokio::time::timeout(RESULT_WITHIN, response_to(&mut conn, &action_id))
                .await
                .unwrap_or_else(|_| {
                    Err(DialError(
                        "Asterisk did not answer the Originate in time".into(),
                    ))
                })
                .map_err(|e| e.0)
                .and_then(|answer| originate_outcome(&answer));
            // Leaving politely; the outcome is known whatever the logoff does.
            let logoff = conn.send("Action: Logoff\r\n\r\n").await;
            if let Err(e) = logoff {
                tracing::debug!(error = %e, "AMI logoff failed");
            }
            outcome
        }
        .boxed();
        Ok(Accepted {
            pbx_id: Some(channel_id),
            result: Some(result),
        })
    }
}

impl Dialer for AmiDialer {
    fn dial<'a>(&'a self, request: &'a DialRequest) -> BoxFuture<'a, Result<Accepted, DialError>> {
        async move {
            tokio::time::timeout(ANSWER_WITHIN, self.originate(request))
                .await
                .unwrap_or_else(|_| Err(DialError("Asterisk did not answer in time".into())))
        }
        .boxed()
    }
}

/// `"Name" <number>`: the name the agent sees, the number the customer sees. The name
/// loses what would end or escape its quotes.
fn caller_id(name: &str, number: Option<&str>) -> String {
    let name: String = name
        .chars()
        .filter(|c| !matches!(c, '"' | '\\' | '<' | '>'))
        .collect();
    match number {
        Some(number) => format!("\"{}\" <{number}>", name.trim()),
        None => format!("\"{}\"", name.trim()),
    }
}

fn is_success(block: &Headers) -> bool {
    block
        .get("Response")
        .is_some_and(|r| r.eq_ignore_ascii_case("Success"))
}

/// The response to the action with `action_id`; events before it are skipped.
async fn response_to(conn: &mut Connection, action_id: &str) -> Result<Headers, DialError> {
    loop {
        let block = conn.block().await?;
        if block.get("Response").is_some() && block.get("ActionID") == Some(action_id) {
            return Ok(block);
        }
    }
}

/// What the synchronous originate's response says: the agent's leg is up, or why not.
fn originate_outcome(answer: &Headers) -> Result<Option<String>, String> {
    if is_success(answer) {
        return Ok(None);
    }
    match answer.get("Message") {
        Some(m) if m.eq_ignore_ascii_case("Originate failed") => {
            Err("the agent's phone did not answer (no answer, busy or unreachable)".into())
        }
        Some(m) => Err(format!("Asterisk refused the Originate: {m}")),
        None => Err("Asterisk refused the Originate".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caller_ids_are_quoted_and_cannot_break_out() {
        assert_eq!(
            caller_id("Ion \"Pop\" \\ <x>", Some("+40215550100")),
            "\"Ion Pop  x\" <+40215550100>"
        );
        assert_eq!(caller_id("Ion", None), "\"Ion\"");
        let refused = Headers(vec![
            ("Response".into(), "Error".into()),
            ("Message".into(), "Extension does not exist.".into()),
        ]);
        assert_eq!(
            originate_outcome(&refused).unwrap_err(),
            "Asterisk refused the Originate: Extension does not exist."
        );
    }
}
