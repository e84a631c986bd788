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
    pub finish: oneshot::Sender<bool>,
}

impl Originated {
    pub fn get(&self, name: &str) -> &str {
        get(&self.action, name)
    }
}

/// An Asterisk manager interface (AMI) with one user, `cidgate` / `s3cret`: it answers
/// `Login`, queues an async `Originate` and later sends its `OriginateResponse`
/// (Success with reason 4, answered; or Failure with reason 3, no answer).
pub async fn asterisk_ami() -> (u16, mpsc::UnboundedReceiver<Originated>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::unbounded_channel();
    accept_each(listener, tx, move |mut reader, mut write, tx| async move {
        write
            .write_all(b"Asterisk Call Manager/9.0.0\r\n")
            .await
            .unwrap();
        while let Some(action) = read_block(&mut reader).await {
            let id = get(&action, "ActionID").to_owned();
            match get(&action, "Action") {
                "Login" => {
                    let ok =
                        get(&action, "Username") == "cidgate" && get(&action, "Secret") == "s3cret";
                    let answer = if ok {
                        format!(
                            "Response: Success\r\nActionID: {id}\r\nMessage: Authentication accepted\r\n\r\nEvent: FullyBooted\r\nPrivilege: system,all\r\nStatus: Fully Booted\r\n\r\n"
                        )
                    } else {
                        format!(
                            "Response: Error\r\nActionID: {id}\r\nMessage: Authentication failed\r\n\r\n"
                        )
                    };
                    write.write_all(answer.as_bytes()).await.unwrap();
                }
                "Originate" => {
                    let channel = get(&action, "Channel").to_owned();
                    write
                                .write_all(format!("Response: Success\r\nActionID: {id}\r\nMessage: Originate successfully queued\r\n\r\n").as_bytes())
                                .await
                                .unwrap();
                    let (finish, answered) = oneshot::channel();
                    tx.send(Originated { action, finish }).unwrap();
                    let answered = answered.await.unwrap_or(false);
                    let (response, reason) = if answered {
                        ("Success", 4)
                    } else {
                        ("Failure", 3)
                    };
                    let events = format!(
                        "Event: Newchannel\r\nPrivilege: call,all\r\nChannel: {channel}-00000001\r\nUniqueid: 1733140000.7\r\n\r\n\
                                 Event: OriginateResponse\r\nPrivilege: call,all\r\nActionID: {id}\r\nResponse: {response}\r\nChannel: {channel}-00000001\r\nContext: from-internal\r\nExten: 0721234567\r\nReason: {reason}\r\nUniqueid: 1733140000.7\r\nCallerIDNum: <unknown>\r\nCallerIDName: <unknown>\r\n\r\n"
                    );
                    write.write_all(events.as_bytes()).await.unwrap();
                }
                "Logoff" => {
                    write
                        .write_all(
                            b"Response: Goodbye\r\nMessage: Thanks for all the fish.\r\n\r\n",
                        )
                        .await
                        .unwrap();
                    return;
                }
                other => panic!("the fake AMI does not know `{other}`"),
            }
        }
    });
    (port, rx)
}

/// A FreeSWITCH event socket (inbound) with password `ClueCon`: `auth`, `event plain
/// BACKGROUND_JOB`, `bgapi originate` answered with a Job-UUID, then the job's
/// `BACKGROUND_JOB` event (`+OK <uuid>`, or `-ERR NO_ANSWER`).
pub async fn freeswitch_esl() -> (u16, mpsc::UnboundedReceiver<Originated>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::unbounded_channel();
    accept_each(listener, tx, move |mut reader, mut write, tx| async move {
        write
            .write_all(b"Content-Type: auth/request\n\n")
            .await
            .unwrap();
        while let Some(command) = read_block(&mut reader).await {
            let (line, _) = &command[0];
            let reply = |text: &str| format!("Content-Type: command/reply\nReply-Text: {text}\n\n");
            if let Some(password) = line.strip_prefix("auth ") {
                let text = if password == "ClueCon" {
                    "+OK accepted"
                } else {
                    "-ERR invalid"
                };
                write.write_all(reply(text).as_bytes()).await.unwrap();
            } else if line == "event plain BACKGROUND_JOB" {
                write
                    .write_all(reply("+OK event listener enabled plain").as_bytes())
                    .await
                    .unwrap();
            } else if line.starts_with("bgapi originate ") {
                let job = "7f4db78a-17d7-11dd-b7a0-db4edd065621";
                write
                            .write_all(format!("Content-Type: command/reply\nReply-Text: +OK Job-UUID: {job}\nJob-UUID: {job}\n\n").as_bytes())
                            .await
                            .unwrap();
                let (finish, answered) = oneshot::channel();
                tx.send(Originated {
                    action: vec![("command".into(), line.clone())],
                    finish,
                })
                .unwrap();
                let output = if answered.await.unwrap_or(false) {
                    "+OK 2a6e1d4e-8f1b-4c2e-9d3a-0b5c6d7e8f90\n"
                } else {
                    "-ERR NO_ANSWER\n"
                };
                let body = format!(
                    "Event-Name: BACKGROUND_JOB\nCore-UUID: 42bdf272-16e6-11dd-b7a0-db4edd065621\nJob-UUID: {job}\nJob-Command: originate\nContent-Length: {}\n\n{output}",
                    output.len()
                );
                let event = format!(
                    "Content-Length: {}\nContent-Type: text/event-plain\n\n{body}",
                    body.len()
                );
                write.write_all(event.as_bytes()).await.unwrap();
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
