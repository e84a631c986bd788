//! The line protocols AMI and ESL share: blocks of `Name: value` lines ended by an empty
//! line (AMI ends lines with CRLF, ESL with LF; both are read).

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

use super::DialError;

/// A line or a block longer than this is not a PBX talking.
const MAX_LINE: usize = 8 * 1024;
const MAX_HEADERS: usize = 200;

/// A block of headers, in order; names compared without case.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers(pub Vec<(String, String)>);

impl Headers {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Reads `Name: value` lines (the ESL event body's form too).
    pub fn parse(text: &str) -> Self {
        Self(
            text.lines()
                .filter_map(|line| line.split_once(':'))
                .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
                .collect(),
        )
    }
}

pub struct Connection {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
}

fn broken(e: impl std::fmt::Display) -> DialError {
    DialError(format!("the PBX connection failed: {e}"))
}

impl Connection {
    pub fn new(stream: TcpStream) -> Self {
        let (read, write) = stream.into_split();
        Self {
            reader: BufReader::new(read),
            writer: write,
        }
    }

    /// One line without its line ending.
    pub async fn line(&mut self) -> Result<String, DialError> {
        let mut buf = Vec::new();
        let n = (&mut self.reader)
            .take(MAX_LINE as u64)
            .read_until(b'\n', &mut buf)
            .await
            .map_err(broken)?;
        if n == 0 {
            return Err(broken("the PBX closed the connection"));
        }
        if buf.last() != Some(&b'\n') {
            return Err(broken("a line was too long"));
        }
        let text = String::from_utf8_lossy(&buf);
        Ok(text.trim_end_matches(['\r', '\n']).to_owned())
    }

    /// The next block of headers (empty lines before it are skipped).
    pub async fn block(&mut self) -> Result<Headers, DialError> {
        let mut headers = Vec::new();
        loop {
            let line = self.line().await?;
            if line.is_empty() {
                if headers.is_empty() {
                    continue;
                }
                return Ok(Headers(headers));
            }
            if headers.len() == MAX_HEADERS {
                return Err(broken("a message had too many lines"));
            }
            let (name, value) = line.split_once(':').unwrap_or((line.as_str(), ""));
            headers.push((name.trim().to_owned(), value.trim().to_owned()));
        }
    }

    /// A body of `len` bytes (ESL's `Content-Length`).
    pub async fn body(&mut self, len: usize) -> Result<String, DialError> {
        if len > 1024 * 1024 {
            return Err(broken("a message body was too large"));
        }
        let mut buf = vec![0; len];
        self.reader.read_exact(&mut buf).await.map_err(broken)?;
        Ok(String::from_utf8_lossy(&buf).into_owned())
    }

    pub async fn send(&mut self, text: &str) -> Result<(), DialError> {
        self.writer
            .write_all(text.as_bytes())
            .await
            .map_err(broken)?;
        self.writer.flush().await.map_err(broken)
    }
}

/// A value placed in a protocol line: no line breaks can smuggle another header in.
pub fn one_line(value: &str) -> String {
    value
        .chars()
        .filter(|c| !matches!(c, '\r' | '\n' | '\0'))
        .collect()
}
