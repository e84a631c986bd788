//! The FreeSWITCH event-socket dialer (inbound mode): authenticate, subscribe to
//! `BACKGROUND_JOB`, `bgapi originate` the agent's endpoint into the dialplan extension
//! of the number, and wait for the job's result (`+OK <uuid>` or `-ERR <cause>`).
//!
//! Written by hand over a TcpStream for the same reason as the AMI dialer: five short
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
    /// What the agent's phone shows while it rings.
    pub caller_id_name: Template,
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
        if greeting.get("Content-Type") != Some("auth/request") {
            return Err(DialError(format!(
                "{}:{} is not a FreeSWITCH event socket",
                s.endpoint.host, s.endpoint.port
            )));
        }
        conn.send(&format!("auth {}\n\n", one_line(&self.secret.password)))
            .await?;
        let auth = reply(&mut conn).await?;
        if !auth.starts_with("+OK") {
            return Err(DialError(format!(
                "the event socket refused the password: {auth}"
            )));
        }
        conn.send("event plain BACKGROUND_JOB\n\n").await?;
        let subscribed = reply(&mut conn).await?;
        if !subscribed.starts_with("+OK") {
            return Err(DialError(format!(
                "the event socket refused the event subscription: {subscribed}"
            )));
        }

        let command = format!(
            "bgapi originate {{cidgate_request_id={},origination_caller_id_name='{}',\
             origination_caller_id_number={},originate_timeout={}}}{} {} {} {}\n\n",
            request.request_id,
            s.caller_id_name.render(request, variable_value),
            word(&request.number),
            s.timeout_secs,
            s.agent_endpoint.render(request, word),
            s.destination.render(request, word),
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
        let job = accepted
            .get("Job-UUID")
            .map(str::to_owned)
            .or_else(|| {
                text.strip_prefix("+OK Job-UUID:")
                    .map(|j| j.trim().to_owned())
            })
            .ok_or_else(|| DialError("FreeSWITCH named no Job-UUID".into()))?;
        let job_for_result = job.clone();
        let result = async move {
            tokio::time::timeout(RESULT_WITHIN, job_result(&mut conn, &job_for_result))
                .await
                .unwrap_or_else(|_| Err("FreeSWITCH sent no job result in time".into()))
        }
        .boxed();
        Ok(Accepted {
            pbx_id: Some(job),
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

/// A word of the originate command: no spaces, no braces or quotes to break out of it.
fn word(value: &str) -> String {
    one_line(value)
        .chars()
        .filter(|c| !c.is_whitespace() && !"{}'\",".contains(*c))
        .collect()
}

/// A channel variable's value inside single quotes: anything but quotes and braces.
fn variable_value(value: &str) -> String {
    one_line(value)
        .chars()
        .filter(|c| !"{}'\",".contains(*c))
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

/// Waits for the `BACKGROUND_JOB` event of `job`: the new channel's UUID, or the cause.
async fn job_result(conn: &mut Connection, job: &str) -> Result<Option<String>, String> {
    loop {
        let block = conn.block().await.map_err(|e| e.0)?;
        let Some(len) = block.get("Content-Length") else {
            continue;
        };
        let len = len.parse().map_err(|_| "a bad Content-Length".to_owned())?;
        let body = conn.body(len).await.map_err(|e| e.0)?;
        if block.get("Content-Type") != Some("text/event-plain") {
            continue;
        }
        // The event: its headers, an empty line, then (with its own Content-Length)
        // the job's output.
        let (head, output) = body.split_once("\n\n").unwrap_or((body.as_str(), ""));
        let event = Headers::parse(head);
        if event.get("Event-Name") != Some("BACKGROUND_JOB") || event.get("Job-UUID") != Some(job) {
            continue;
        }
        let output = output.trim();
        return match output.strip_prefix("+OK") {
            Some(uuid) => Ok(Some(uuid.trim().to_owned()).filter(|u| !u.is_empty())),
            None => Err(format!(
                "the originate failed: {}",
                output.strip_prefix("-ERR").unwrap_or(output).trim()
            )),
        };
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
    }
}
