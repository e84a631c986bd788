//! The Asterisk Manager Interface dialer: log in, `Originate` asynchronously (the agent's
//! channel first, then the dialplan dials the number), and wait for the
//! `OriginateResponse` event that says whether the agent's leg came up.
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
    /// What the agent's phone shows while it rings (`{{ContactName}} <{{Number}}>`).
    pub caller_id: Template,
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
            "Action: Login\r\nActionID: {login_id}\r\nUsername: {}\r\nSecret: {}\r\nEvents: call\r\n\r\n",
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
        let caller_id = s
            .caller_id
            .render(request, |v| one_line(v).replace(['"', '<', '>'], ""));
        let originate = format!(
            "Action: Originate\r\nActionID: {action_id}\r\nChannel: {}\r\nContext: {}\r\n\
             Exten: {}\r\nPriority: 1\r\nCallerID: {}\r\nTimeout: {}\r\nAsync: true\r\n\
             Variable: __CIDGATE_REQUEST_ID={}\r\n\r\n",
            s.channel.render(request, one_line),
            one_line(&s.context),
            s.exten.render(request, one_line),
            quoted_caller_id(&caller_id),
            s.timeout_ms,
            request.request_id,
        );
        conn.send(&originate).await?;
        let answer = response_to(&mut conn, &action_id).await?;
        if !is_success(&answer) {
            return Err(DialError(format!(
                "Asterisk refused the Originate: {}",
                answer.get("Message").unwrap_or("no reason given")
            )));
        }
        let result = async move {
            let outcome =
                tokio::time::timeout(RESULT_WITHIN, originate_response(&mut conn, &action_id))
                    .await
                    .unwrap_or_else(|_| Err("Asterisk sent no OriginateResponse in time".into()));
            // Leaving politely; the outcome is known whatever the logoff does.
            let logoff = conn.send("Action: Logoff\r\n\r\n").await;
            if let Err(e) = logoff {
                tracing::debug!(error = %e, "AMI logoff failed");
            }
            outcome
        }
        .boxed();
        Ok(Accepted {
            pbx_id: None,
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

/// `"Name" <number>` from what the template made (`Name <number>` or just a name).
fn quoted_caller_id(rendered: &str) -> String {
    match rendered.rsplit_once(' ') {
        Some((name, number)) if number.chars().all(|c| c.is_ascii_digit() || c == '+') => {
            format!("\"{}\" <{number}>", name.trim())
        }
        _ => format!("\"{}\"", rendered.trim()),
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

/// Waits for the `OriginateResponse` of `action_id`: the channel's unique id when the
/// agent answered, else why not.
async fn originate_response(
    conn: &mut Connection,
    action_id: &str,
) -> Result<Option<String>, String> {
    loop {
        let block = conn.block().await.map_err(|e| e.0)?;
        let ours = block
            .get("Event")
            .is_some_and(|e| e.eq_ignore_ascii_case("OriginateResponse"))
            && block.get("ActionID") == Some(action_id);
        if !ours {
            continue;
        }
        if is_success(&block) {
            return Ok(block.get("Uniqueid").map(str::to_owned));
        }
        return Err(reason_text(block.get("Reason")));
    }
}

/// Asterisk's originate reasons (AST_CONTROL_* codes) in words.
fn reason_text(code: Option<&str>) -> String {
    match code {
        Some("0") => "the agent's channel could not be created".into(),
        Some("1") => "the agent's phone hung up".into(),
        Some("3") => "the agent did not answer".into(),
        Some("5") => "the agent's phone is busy".into(),
        Some("8") => "the network was congested".into(),
        Some(other) => format!("the originate failed (reason {other})"),
        None => "the originate failed".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caller_ids_are_quoted_and_reasons_read() {
        assert_eq!(
            quoted_caller_id("Ion Pop +40721234567"),
            "\"Ion Pop\" <+40721234567>"
        );
        assert_eq!(quoted_caller_id("Ion"), "\"Ion\"");
        assert_eq!(reason_text(Some("5")), "the agent's phone is busy");
    }
}
