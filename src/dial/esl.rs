//! The FreeSWITCH event-socket dialer (inbound mode): authenticate, subscribe to the
//! events of this request only (its job and its agent's channel, by `filter`), `bgapi
//! originate` the agent's endpoint into the dialplan extension of the number, and wait
//! for the job's result (`+OK <uuid>` or `-ERR <cause>`) and for the dialplan to take
//! the number: a channel that hangs up with `NO_ROUTE_DESTINATION` is a failed request,
//! not a silent success. Then `exit`.
//!
//! Written by hand over a TcpStream for the same reason as the AMI dialer: a few short
//! messages on one connection per request, no event loop to own.

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};

use super::wire::{Connection, Headers, one_line};
use super::{
    ANSWER_WITHIN, Accepted, DialError, DialRequest, Dialer, Endpoint, RESULT_WITHIN, Template,
};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EslSettings {
    #[serde(flatten)]
    pub endpoint: Endpoint,
    /// The agent's endpoint (`user/{{AgentExtension}}`).
    pub agent_endpoint: Template,
    /// The dialplan extension the number is dialled at (`{{Number}}`).
    pub destination: Template,
    pub dialplan: String,
    pub context: String,
    /// What the agent's phone shows while it rings (its number: the customer's).
    pub caller_id_name: Template,
    /// What the customer sees (`effective_caller_id_number`, used when the agent's channel
    /// bridges out): the tenant's outbound number. Unset (a dialer stored before it
    /// existed): FreeSWITCH's own rules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outbound_caller_id: Option<String>,
    /// How long the agent's phone rings (s).
    pub timeout_secs: u32,
}

/// The event socket's password (event_socket.conf.xml `password`).
#[derive(Clone, Serialize, Deserialize)]
pub struct EslSecret {
    pub password: String,
}

pub struct EslDialer {
    settings: EslSettings,
    secret: EslSecret,
}

impl EslDialer {
    pub fn new(settings: EslSettings, secret: EslSecret) -> Self {
        Self { settings, secret }
    }

    async fn originate(&self, request: &DialRequest) -> Result<Accepted, DialError> {
        let s = &self.settings;
        let mut conn = Connection::new(s.endpoint.connect().await?);
        let greeting = conn.block().await?;
        match greeting.get("Content-Type") {
            Some("auth/request") => {}
            Some("text/rude-rejection") => {
                return Err(DialError(format!(
                    "the FreeSWITCH event socket at {}:{} refused this address (its ACL: \
                     apply-inbound-acl in event_socket.conf.xml)",
                    s.endpoint.host, s.endpoint.port
                )));
            }
            _ => {
                return Err(DialError(format!(
                    "{}:{} is not a FreeSWITCH event socket",
                    s.endpoint.host, s.endpoint.port
                )));
            }
        }
        conn.send(&format!("auth {}\n\n", one_line(&self.secret.password)))
            .await?;
        let auth = reply(&mut conn).await?;
        if !auth.starts_with("+OK") {
            return Err(DialError(format!(
                "the event socket refused the password: {auth}"
            )));
        }
        // Only this request's events: its job's result and its agent's channel.
        let job = uuid::Uuid::new_v4().to_string();
        let leg = uuid::Uuid::new_v4().to_string();
        for command in [
            "event plain BACKGROUND_JOB CHANNEL_EXECUTE CHANNEL_HANGUP_COMPLETE".to_owned(),
            format!("filter Job-UUID {job}"),
            format!("filter Unique-ID {leg}"),
        ] {
            conn.send(&format!("{command}\n\n")).await?;
            let answer = reply(&mut conn).await?;
            if !answer.starts_with("+OK") {
                return Err(DialError(format!(
                    "the event socket refused `{command}`: {answer}"
                )));
            }
        }

        let mut variables = vec![
            format!("cidgate_request_id={}", request.request_id),
            format!("origination_uuid={leg}"),
            format!(
                "origination_caller_id_name='{}'",
                s.caller_id_name.render(request, variable_value)
            ),
        ];
        // The agent's phone shows the customer's number only when the customer is shown
        // the tenant's: a plain dialplan presents the agent channel's number to the
        // customer, who must never see their own (carriers reject it as spoofed).
        if let Some(outbound) = &s.outbound_caller_id {
            variables.push(format!(
                "origination_caller_id_number={}",
                word(&request.number)
            ));
            variables.push(format!("effective_caller_id_number={}", word(outbound)));
            variables.push(format!("effective_caller_id_name={}", word(outbound)));
        }
        variables.push(format!("originate_timeout={}", s.timeout_secs));
        let destination = s.destination.render(request, word);
        let command = format!(
            "bgapi originate {{{}}}{} {destination} {} {}\nJob-UUID: {job}\n\n",
            variables.join(","),
            s.agent_endpoint.render(request, word),
            word(&s.dialplan),
            word(&s.context),
        );
        conn.send(&command).await?;
        let accepted = reply_block(&mut conn).await?;
        let text = accepted.get("Reply-Text").unwrap_or_default().to_owned();
        if !text.starts_with("+OK") {
            return Err(DialError(format!(
                "FreeSWITCH refused the originate: {text}"
            )));
        }
        let route = format!("{destination} in {} {}", s.dialplan, s.context);
        let pbx_id = leg.clone();
        let result = async move {
            let outcome =
                tokio::time::timeout(RESULT_WITHIN, outcome(&mut conn, &job, &leg, &route))
                    .await
                    .unwrap_or_else(|_| Err("FreeSWITCH sent no job result in time".into()));
            // Leaving politely; the outcome is known whatever the exit does.
            if let Err(e) = conn.send("exit\n\n").await {
                tracing::debug!(error = %e, "ESL exit failed");
            }
            outcome
        }
        .boxed();
        Ok(Accepted {
            pbx_id: Some(pbx_id),
            result: Some(result),
        })
    }
}

impl Dialer for EslDialer {
    fn dial<'a>(&'a self, request: &'a DialRequest) -> BoxFuture<'a, Result<Accepted, DialError>> {
        async move {
            tokio::time::timeout(ANSWER_WITHIN, self.originate(request))
                .await
                .unwrap_or_else(|_| Err(DialError("FreeSWITCH did not answer in time".into())))
        }
        .boxed()
    }
}

/// A word of the originate command: no spaces, no braces, quotes or backslashes to
/// break out of it.
fn word(value: &str) -> String {
    one_line(value)
        .chars()
        .filter(|c| !c.is_whitespace() && !"{}'\",\\".contains(*c))
        .collect()
}

/// A channel variable's value inside single quotes: anything but quotes, braces and
/// backslashes (a trailing `\\` would escape the closing quote).
fn variable_value(value: &str) -> String {
    one_line(value)
        .chars()
        .filter(|c| !"{}'\",\\".contains(*c))
        .collect()
}

/// The next `command/reply` (events before it are skipped); its whole block.
async fn reply_block(conn: &mut Connection) -> Result<Headers, DialError> {
    loop {
        let block = conn.block().await?;
        if let Some(len) = block.get("Content-Length") {
            // An event or log line that arrived first: read past its body.
            conn.body(len.parse().unwrap_or(0)).await?;
        }
        if block.get("Content-Type") == Some("command/reply") {
            return Ok(block);
        }
    }
}

async fn reply(conn: &mut Connection) -> Result<String, DialError> {
    let block = reply_block(conn).await?;
    Ok(block.get("Reply-Text").unwrap_or_default().to_owned())
}

/// One plain event: its headers and, after an empty line, its own body.
async fn next_event(conn: &mut Connection) -> Result<Option<(Headers, String)>, String> {
    let block = conn.block().await.map_err(|e| e.0)?;
    if block.get("Content-Type") == Some("text/disconnect-notice") {
        return Err("FreeSWITCH closed the event socket".into());
    }
    let Some(len) = block.get("Content-Length") else {
        return Ok(None);
    };
    let len = len.parse().map_err(|_| "a bad Content-Length".to_owned())?;
    let body = conn.body(len).await.map_err(|e| e.0)?;
    if block.get("Content-Type") != Some("text/event-plain") {
        return Ok(None);
    }
    let (head, output) = body.split_once("\n\n").unwrap_or((body.as_str(), ""));
    Ok(Some((Headers::parse(head), output.to_owned())))
}

/// The request's outcome: the job's result, and once the agent answered, whether the
/// dialplan took the number (its first application runs) or found no route for it.
async fn outcome(
    conn: &mut Connection,
    job: &str,
    leg: &str,
    route: &str,
) -> Result<Option<String>, String> {
    let mut answered = false;
    let mut routed = false;
    loop {
        let Some((event, output)) = next_event(conn).await? else {
            continue;
        };
        let ours = |header: &str, value: &str| event.get(header) == Some(value);
        match event.get("Event-Name") {
            Some("BACKGROUND_JOB") if ours("Job-UUID", job) => {
                let output = output.trim();
                match output.strip_prefix("+OK") {
                    Some(_) if routed => return Ok(Some(leg.to_owned())),
                    Some(_) => answered = true,
                    None => {
                        return Err(format!(
                            "the originate failed: {}",
                            output.strip_prefix("-ERR").unwrap_or(output).trim()
                        ));
                    }
                }
            }
            Some("CHANNEL_EXECUTE") if ours("Unique-ID", leg) => {
                if answered {
                    return Ok(Some(leg.to_owned()));
                }
                routed = true;
            }
            Some("CHANNEL_HANGUP_COMPLETE") if ours("Unique-ID", leg) => {
                return match event.get("Hangup-Cause") {
                    Some("NO_ROUTE_DESTINATION") if !routed => Err(format!(
                        "FreeSWITCH's dialplan has no route for {route} (see --number-format)"
                    )),
                    // Answered and ended before the job's word: the call happened.
                    _ if answered || routed => Ok(Some(leg.to_owned())),
                    cause => Err(format!(
                        "the agent's leg ended: {}",
                        cause.unwrap_or("no cause given")
                    )),
                };
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_cannot_break_out_of_the_originate_command() {
        assert_eq!(word("user/200 &bash"), "user/200&bash");
        assert_eq!(word("90721{x}'"), "90721x");
        assert_eq!(variable_value("Ion 'Pop', {x}"), "Ion Pop x");
        assert_eq!(variable_value("Ion Pop\\"), "Ion Pop");
    }
}
