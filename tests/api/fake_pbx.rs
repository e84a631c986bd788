//! Local stand-ins for the PBXs click-to-call talks to, each speaking its protocol as its
//! documentation gives it: a dial API over HTTP, the Asterisk Manager Interface and the
//! FreeSWITCH event socket. Each reports what it was asked on a channel.

use std::future::Future;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{mpsc, oneshot};

type Reader = BufReader<OwnedReadHalf>;

/// Serves each connection to `listener` with `handle`, which reports on `tx`.
fn accept_each<T, F, Fut>(listener: TcpListener, tx: mpsc::UnboundedSender<T>, handle: F)
where
    T: Send + 'static,
    F: Fn(Reader, OwnedWriteHalf, mpsc::UnboundedSender<T>) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (read, write) = stream.into_split();
            tokio::spawn(handle(BufReader::new(read), write, tx.clone()));
        }
    });
}

/// A request the dial API received.
#[derive(Debug)]
pub struct DialApiRequest {
    pub method: String,
    /// Path and query, as sent.
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl DialApiRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The query's value of `name`, decoded.
    pub fn query(&self, name: &str) -> Option<String> {
        let query = self.target.split_once('?')?.1;
        form_urlencoded::parse(query.as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }
}

/// A dial API on 127.0.0.1 answering every request with `status` and `body`.
pub async fn dial_api(
    status: u16,
    body: &'static str,
) -> (String, mpsc::UnboundedReceiver<DialApiRequest>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::unbounded_channel();
    accept_each(listener, tx, move |mut reader, mut write, tx| async move {
        let mut line = String::new();
        reader.read_line(&mut line).await.unwrap();
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or_default().to_owned();
        let target = parts.next().unwrap_or_default().to_owned();
        let mut headers = Vec::new();
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).await.unwrap();
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((n, v)) = line.split_once(':') {
                headers.push((n.trim().to_owned(), v.trim().to_owned()));
            }
        }
        let length = headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
            .map_or(0, |(_, v)| v.parse().unwrap());
        let mut body_bytes = vec![0; length];
        reader.read_exact(&mut body_bytes).await.unwrap();
        let request = DialApiRequest {
            method,
            target,
            headers,
            body: String::from_utf8(body_bytes).unwrap(),
        };
        let answer = format!(
            "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        // Reported before answering: the gateway's answer comes after this.
        tx.send(request).unwrap();
        write.write_all(answer.as_bytes()).await.unwrap();
    });
    (address, rx)
}

/// Reads one block of `Name: value` lines ended by an empty line.
async fn read_block(reader: &mut Reader) -> Option<Vec<(String, String)>> {
    let mut block = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).await.ok()? == 0 {
            return None;
        }
        let line = line.trim_end_matches(['\r', '\n']);
        if line.is_empty() {
            if block.is_empty() {
                continue;
            }
            return Some(block);
        }
        let (name, value) = line.split_once(':').unwrap_or((line, ""));
        block.push((name.trim().to_owned(), value.trim().to_owned()));
    }
}

fn get<'a>(block: &'a [(String, String)], name: &str) -> &'a str {
    block
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map_or("", |(_, v)| v.as_str())
}

/// What a fake was asked to originate; `finish` makes it report the outcome.
pub struct Originated {
    pub action: Vec<(String, String)>,
    /// What the connection asked before it: AMI's login `Events:`, ESL's `event` and
    /// `filter` commands.
    pub session: Vec<String>,
    pub finish: oneshot::Sender<bool>,
    /// How the connection ended: `logoff` or `exit` when the dialer said goodbye, else
    /// `dropped`.
    pub ended: oneshot::Receiver<&'static str>,
}

impl Originated {
    pub fn get(&self, name: &str) -> &str {
        get(&self.action, name)
    }
}

/// Reports how a fake's connection ended, when it ends.
struct Ending(Option<oneshot::Sender<&'static str>>);

impl Ending {
    fn set(&mut self, sender: oneshot::Sender<&'static str>) {
        self.0 = Some(sender);
    }
    fn end(&mut self, how: &'static str) {
        if let Some(sender) = self.0.take() {
            let _ = sender.send(how);
        }
    }
}

impl Drop for Ending {
    fn drop(&mut self) {
        self.end("dropped");
    }
}

/// Whether the fake dialplans route `exten` as the docs' plain dialplans do: Asterisk's
/// `_X.` in `from-internal`, FreeSWITCH's `^\d+$` in `default` (a desk phone's digits;
/// never a `+`).
fn routes(exten: &str) -> bool {
    exten.len() >= 2 && exten.bytes().all(|b| b.is_ascii_digit())
}

/// An Asterisk manager interface (AMI) with one user, `cidgate` / `s3cret`, and one
/// dialplan context, `from-internal`, with `_X.`. As `main/manager.c` does, it refuses
/// every action but `Login` before a login ("Permission denied"), an `Originate` into an
/// extension its dialplan lacks ("Extension does not exist."), and sends events only to
/// a connection whose login did not say `Events: off` — then every call's, not only
/// the connection's own. A synchronous `Originate` is answered once the agent's leg is
/// up ("Originate successfully queued") or failed ("Originate failed"); an `Async` one
/// at once, then by an `OriginateResponse` event (which `Events: off` never sees).
pub async fn asterisk_ami() -> (u16, mpsc::UnboundedReceiver<Originated>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::unbounded_channel();
    accept_each(listener, tx, move |mut reader, mut write, tx| async move {
        write
            .write_all(b"Asterisk Call Manager/9.0.0\r\n")
            .await
            .unwrap();
        let mut logged_in = false;
        let mut events = String::new();
        let mut ending = Ending(None);
        while let Some(action) = read_block(&mut reader).await {
            let id = get(&action, "ActionID").to_owned();
            let name = get(&action, "Action").to_ascii_lowercase();
            let error = |message: &str| {
                format!("Response: Error\r\nActionID: {id}\r\nMessage: {message}\r\n\r\n")
            };
            if !logged_in && name != "login" && name != "logoff" {
                write
                    .write_all(error("Permission denied").as_bytes())
                    .await
                    .unwrap();
                continue;
            }
            match name.as_str() {
                "login" => {
                    logged_in =
                        get(&action, "Username") == "cidgate" && get(&action, "Secret") == "s3cret";
                    events = get(&action, "Events").to_owned();
                    let answer = if logged_in {
                        let mut answer = format!(
                            "Response: Success\r\nActionID: {id}\r\nMessage: Authentication accepted\r\n\r\n"
                        );
                        if !events.eq_ignore_ascii_case("off") {
                            answer.push_str("Event: FullyBooted\r\nPrivilege: system,all\r\nStatus: Fully Booted\r\n\r\n");
                        }
                        answer
                    } else {
                        error("Authentication failed")
                    };
                    write.write_all(answer.as_bytes()).await.unwrap();
                }
                "originate" => {
                    let exten = get(&action, "Exten").to_owned();
                    if get(&action, "Context") != "from-internal" || !routes(&exten) {
                        write
                            .write_all(error("Extension does not exist.").as_bytes())
                            .await
                            .unwrap();
                        continue;
                    }
                    let asynchronous = get(&action, "Async").eq_ignore_ascii_case("true");
                    let with_events = !events.eq_ignore_ascii_case("off");
                    if asynchronous {
                        write
                            .write_all(format!("Response: Success\r\nActionID: {id}\r\nMessage: Originate successfully queued\r\n\r\n").as_bytes())
                            .await
                            .unwrap();
                    }
                    let channel = get(&action, "Channel").to_owned();
                    let uniqueid = match get(&action, "ChannelId") {
                        "" => "1733140000.7".to_owned(),
                        given => given.to_owned(),
                    };
                    let (finish, answered) = oneshot::channel();
                    let (ended, ended_rx) = oneshot::channel();
                    ending.set(ended);
                    tx.send(Originated {
                        action,
                        session: vec![format!("Events: {events}")],
                        finish,
                        ended: ended_rx,
                    })
                    .unwrap();
                    let answered = answered.await.unwrap_or(false);
                    let mut out = String::new();
                    if with_events {
                        // Another desk's call, as every event-receiving session sees it.
                        out.push_str("Event: Newchannel\r\nPrivilege: call,all\r\nChannel: PJSIP/300-00000002\r\nUniqueid: 1733140000.9\r\n\r\n");
                        out.push_str("Event: OriginateResponse\r\nPrivilege: call,all\r\nActionID: someone-else\r\nResponse: Success\r\nChannel: PJSIP/300-00000002\r\nReason: 4\r\nUniqueid: 1733140000.9\r\n\r\n");
                    }
                    let (response, reason) = if answered {
                        ("Success", 4)
                    } else {
                        ("Failure", 3)
                    };
                    if asynchronous && with_events {
                        out.push_str(&format!(
                            "Event: OriginateResponse\r\nPrivilege: call,all\r\nActionID: {id}\r\nResponse: {response}\r\nChannel: {channel}-00000001\r\nContext: from-internal\r\nExten: {exten}\r\nReason: {reason}\r\nUniqueid: {uniqueid}\r\nCallerIDNum: <unknown>\r\nCallerIDName: <unknown>\r\n\r\n"
                        ));
                    } else if !asynchronous {
                        out.push_str(&if answered {
                            format!("Response: Success\r\nActionID: {id}\r\nMessage: Originate successfully queued\r\n\r\n")
                        } else {
                            error("Originate failed")
                        });
                    }
                    write.write_all(out.as_bytes()).await.unwrap();
                }
                "logoff" => {
                    ending.end("logoff");
                    // The client may have gone already: it need not read the goodbye.
                    let _ = write
                        .write_all(
                            b"Response: Goodbye\r\nMessage: Thanks for all the fish.\r\n\r\n",
                        )
                        .await;
                    return;
                }
                _ => {
                    write
                        .write_all(error("Invalid/unknown command").as_bytes())
                        .await
                        .unwrap();
                }
            }
        }
    });
    (port, rx)
}

/// Who the fake event socket lets in: everyone, or nobody (its inbound ACL denies).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum EslAcl {
    Allow,
    Deny,
}

/// One event, as `mod_event_socket` writes it in plain form.
fn plain_event(headers: &[(&str, &str)], output: &str) -> String {
    let mut body: String = headers.iter().map(|(n, v)| format!("{n}: {v}\n")).collect();
    if !output.is_empty() {
        body.push_str(&format!("Content-Length: {}\n\n{output}", output.len()));
    } else {
        body.push('\n');
    }
    format!(
        "Content-Length: {}\nContent-Type: text/event-plain\n\n{body}",
        body.len()
    )
}

/// A FreeSWITCH event socket (inbound) with password `ClueCon` and the XML dialplan's
/// `default` context routing `^\d+$`. As `mod_event_socket.c` does, it answers nothing
/// but `auth` before a good password (`-ERR command not found`; a wrong one is `-ERR
/// invalid`, then the door shuts), sends only the events a connection subscribed to and
/// its `filter`s let through, gives each job its own Job-UUID (the client's `Job-UUID`
/// header, else a new one), and answers `exit` with `+OK bye`. Each answered originate
/// is followed by another job's `BACKGROUND_JOB`; then, when the dialplan routes the
/// destination, `CHANNEL_EXECUTE` and the job's `+OK <uuid>`, else the job's `+OK`
/// and a `CHANNEL_HANGUP_COMPLETE` with `NO_ROUTE_DESTINATION`; unanswered, `-ERR
/// NO_ANSWER`. With [`EslAcl::Deny`] it greets with `text/rude-rejection` and closes.
pub async fn freeswitch_esl(acl: EslAcl) -> (u16, mpsc::UnboundedReceiver<Originated>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::unbounded_channel();
    accept_each(listener, tx, move |mut reader, mut write, tx| async move {
        if acl == EslAcl::Deny {
            let text = "Access Denied, go away.\n";
            let rejection = format!(
                "Content-Type: text/rude-rejection\nContent-Length: {}\n\n{text}",
                text.len()
            );
            write.write_all(rejection.as_bytes()).await.unwrap();
            return;
        }
        write
            .write_all(b"Content-Type: auth/request\n\n")
            .await
            .unwrap();
        let mut authed = false;
        let mut session = Vec::new();
        let mut subscribed: Vec<String> = Vec::new();
        let mut filters: Vec<(String, String)> = Vec::new();
        let mut ending = Ending(None);
        let reply = |text: &str| format!("Content-Type: command/reply\nReply-Text: {text}\n\n");
        while let Some(command) = read_block(&mut reader).await {
            // read_block splits at the first ':'; a command line has none (but may).
            let line = match &command[0] {
                (name, value) if value.is_empty() => name.clone(),
                (name, value) => format!("{name}:{value}"),
            };
            if !authed {
                let answer = match line.strip_prefix("auth ") {
                    Some("ClueCon") => {
                        authed = true;
                        "+OK accepted"
                    }
                    Some(_) => "-ERR invalid",
                    None => "-ERR command not found",
                };
                write.write_all(reply(answer).as_bytes()).await.unwrap();
                if answer == "-ERR invalid" {
                    return;
                }
                continue;
            }
            if let Some(names) = line.strip_prefix("event plain ") {
                session.push(line.clone());
                subscribed.extend(names.split_whitespace().map(str::to_owned));
                write
                    .write_all(reply("+OK event listener enabled plain").as_bytes())
                    .await
                    .unwrap();
            } else if let Some(filter) = line.strip_prefix("filter ") {
                session.push(line.clone());
                let (header, value) = filter.split_once(' ').unwrap_or((filter, ""));
                filters.push((header.to_owned(), value.to_owned()));
                write
                    .write_all(reply(&format!("+OK filter added. [{header}]=[{value}]")).as_bytes())
                    .await
                    .unwrap();
            } else if let Some(originate) = line.strip_prefix("bgapi originate ") {
                let job = match get(&command, "Job-UUID") {
                    "" => uuid::Uuid::new_v4().to_string(),
                    given => given.to_owned(),
                };
                write
                    .write_all(format!("Content-Type: command/reply\nReply-Text: +OK Job-UUID: {job}\nJob-UUID: {job}\n\n").as_bytes())
                    .await
                    .unwrap();
                let (variables, rest) = originate
                    .strip_prefix('{')
                    .and_then(|o| o.split_once('}'))
                    .unwrap_or(("", originate));
                let mut action = vec![
                    ("command".to_owned(), line.clone()),
                    ("Job-UUID".to_owned(), job.clone()),
                ];
                action.extend(
                    variables.split(',').filter_map(|v| {
                        v.split_once('=').map(|(n, v)| (n.to_owned(), v.to_owned()))
                    }),
                );
                let words: Vec<&str> = rest.split(' ').collect();
                let routed = words.get(2) == Some(&"XML")
                    && words.get(3) == Some(&"default")
                    && words.get(1).is_some_and(|d| routes(d));
                let leg = match get(&action, "origination_uuid") {
                    "" => uuid::Uuid::new_v4().to_string(),
                    given => given.to_owned(),
                };
                let (finish, answered) = oneshot::channel();
                let (ended, ended_rx) = oneshot::channel();
                ending.set(ended);
                tx.send(Originated {
                    action,
                    session: session.clone(),
                    finish,
                    ended: ended_rx,
                })
                .unwrap();
                let answered = answered.await.unwrap_or(false);
                let other_job = uuid::Uuid::new_v4().to_string();
                let job_event = |job: &str, output: &str| {
                    (
                        vec![
                            ("Event-Name", "BACKGROUND_JOB".to_owned()),
                            ("Job-UUID", job.to_owned()),
                            ("Job-Command", "originate".to_owned()),
                        ],
                        output.to_owned(),
                    )
                };
                let mut events = vec![job_event(
                    &other_job,
                    "+OK 0d5b6e0a-0000-4000-8000-000000000001\n",
                )];
                if !answered {
                    events.push(job_event(&job, "-ERR NO_ANSWER\n"));
                } else {
                    let channel = |name: &str, extra: (&'static str, &str)| {
                        (
                            vec![
                                ("Event-Name", name.to_owned()),
                                ("Unique-ID", leg.clone()),
                                (extra.0, extra.1.to_owned()),
                            ],
                            String::new(),
                        )
                    };
                    let ok = format!("+OK {leg}\n");
                    if routed {
                        events.push(channel("CHANNEL_EXECUTE", ("Application", "bridge")));
                        events.push(job_event(&job, &ok));
                    } else {
                        events.push(job_event(&job, &ok));
                        events.push(channel(
                            "CHANNEL_HANGUP_COMPLETE",
                            ("Hangup-Cause", "NO_ROUTE_DESTINATION"),
                        ));
                    }
                }
                for (headers, output) in events {
                    let header = |name: &str| {
                        headers
                            .iter()
                            .find(|(n, _)| *n == name)
                            .map(|(_, v)| v.as_str())
                    };
                    let event_name = header("Event-Name").unwrap_or_default();
                    let wanted = subscribed.iter().any(|s| s == event_name || s == "ALL");
                    let passes = filters.is_empty()
                        || filters.iter().any(|(h, v)| header(h) == Some(v.as_str()));
                    if wanted && passes {
                        let headers: Vec<(&str, &str)> =
                            headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
                        write
                            .write_all(plain_event(&headers, &output).as_bytes())
                            .await
                            .unwrap();
                    }
                }
            } else if line == "exit" {
                ending.end("exit");
                // The client may have gone already: it need not read the goodbye.
                let bye = format!(
                    "{}Content-Type: text/disconnect-notice\nContent-Length: 0\n\n",
                    reply("+OK bye")
                );
                let _ = write.write_all(bye.as_bytes()).await;
                return;
            } else {
                write
                    .write_all(reply("-ERR command not found").as_bytes())
                    .await
                    .unwrap();
            }
        }
    });
    (port, rx)
}
