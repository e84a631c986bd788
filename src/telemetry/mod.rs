//! Logging: a tracing subscriber (pretty or JSON) and query-string redaction.

mod request_line;

use std::io::{BufWriter, IsTerminal, Write};
use std::sync::{Mutex, OnceLock};

use clap::ValueEnum;
use tracing_appender::non_blocking::{ErrorCounter, NonBlocking, NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::EnvFilter;

pub use self::request_line::RequestLine;

/// Log lines waiting for the writer thread; past this, lines are dropped and counted
/// (`cidgate_log_lines_dropped_total`) rather than making a request wait.
const LOG_BUFFER_LINES: usize = 64 * 1024;

/// The writer thread's guard (dropping it flushes what is left) and its drop counter.
static WRITER: OnceLock<(Mutex<Option<WorkerGuard>>, ErrorCounter)> = OnceLock::new();
/// Where request lines go when they are formatted by hand: the subscriber's writer, in
/// its format (unset when lines are coloured for a terminal: tracing writes those).
static REQUEST_LINES: OnceLock<(NonBlocking, LogFormat)> = OnceLock::new();

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Pretty,
    Json,
}

/// Installs the global subscriber at `default_level` (`RUST_LOG` overrides it).
/// Logs go to stderr so that command output (a new token) stays alone on stdout. Lines
/// are formatted where they happen but written by a thread of their own, in batches (it
/// flushes once it has written what was waiting): a request never waits for stderr, and
/// under a flood the lines that do not fit the buffer are dropped and counted.
pub fn init(format: LogFormat, default_level: &str) {
    let filter = match std::env::var("RUST_LOG") {
        // The driver logs every statement's parameters (callers' numbers, names) at
        // debug: only when asked for by name, never through a plain `RUST_LOG=debug`.
        Ok(directives) if !directives.contains("tokio_postgres") => {
            EnvFilter::new(format!("{directives},tokio_postgres=info"))
        }
        Ok(directives) => EnvFilter::new(directives),
        // The migration library and the driver narrate routine work at info.
        Err(_) => EnvFilter::new(format!(
            "{default_level},refinery_core=warn,tokio_postgres=warn"
        )),
    };
    // A second init (tests start several apps in one process) keeps the first.
    if WRITER.get().is_some() {
        return;
    }
    let (writer, guard) = NonBlockingBuilder::default()
        .lossy(true)
        .buffered_lines_limit(LOG_BUFFER_LINES)
        .thread_name("cidgate-log")
        .finish(BufWriter::new(std::io::stderr()));
    let dropped = writer.error_counter();
    let ansi = std::io::stderr().is_terminal();
    let request_lines = (!ansi).then(|| writer.clone());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(writer);
    let installed = match format {
        LogFormat::Pretty => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
    if installed.is_ok() {
        let _first = WRITER.set((Mutex::new(Some(guard)), dropped));
        if let Some(writer) = request_lines {
            let _first = REQUEST_LINES.set((writer, format));
        }
    }
}

/// Whether request lines are written at all (`INFO` for their target): checked before
/// any work is done for one.
pub fn request_lines_enabled() -> bool {
    tracing::enabled!(target: request_line::TARGET, tracing::Level::INFO)
}

/// Logs one request's line at `INFO`; the caller checked [`request_lines_enabled`].
pub fn log_request(line: &RequestLine<'_>) {
    let Some((writer, format)) = REQUEST_LINES.get() else {
        tracing::info!(
            target: request_line::TARGET,
            method = line.method,
            route = line.route,
            query = line.query,
            status = line.status,
            elapsed_us = line.elapsed_us,
            "request"
        );
        return;
    };
    thread_local! {
        // The line is copied into the writer's queue: this buffer serves every request.
        static TEXT: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    TEXT.with_borrow_mut(|text| {
        text.clear();
        request_line::with_timestamp(|now| line.write_to(*format, now, text));
        // One write is one line for the writer thread; a full buffer drops and counts it.
        let _ = writer.clone().write(text);
    });
}

/// Log lines dropped so far because the writer thread fell behind.
pub fn dropped_lines() -> u64 {
    WRITER
        .get()
        .map_or(0, |(_, dropped)| dropped.dropped_lines() as u64)
}

/// Writes what is still buffered; call before the process exits.
pub fn flush() {
    if let Some((guard, _)) = WRITER.get() {
        drop(guard.lock().unwrap_or_else(|p| p.into_inner()).take());
    }
}

/// Query parameters whose values never reach a log line.
const SECRET_PARAMS: &[&str] = &[
    "token",
    "access_token",
    "auth_token",
    "api_token",
    "authorization",
    "auth",
    "key",
    "secret",
    "password",
    "passwd",
    "api_key",
    "apikey",
    "session",
    "signature",
    "sig",
];

/// Query parameters holding a phone number (the caller's, the dialled party's, a line's):
/// masked to their last three characters. Names are compared lowercased without `_`,
/// `-` and spaces (`CallerNumber`, `caller_number` and `caller-number` are one).
const NUMBER_PARAMS: &[&str] = &[
    "telephone",
    "tel",
    "phone",
    "phones",
    "phonenumber",
    "number",
    "numbers",
    "caller",
    "callernumber",
    "callerid",
    "calleridnum",
    "cid",
    "cidnum",
    "ani",
    "cli",
    "clid",
    "dnis",
    "dnid",
    "did",
    "callednumber",
    "destination",
    "dest",
    "dialled",
    "dialed",
    "externalnumber",
    "from",
    "to",
    "msisdn",
    "e164",
    "e164number",
    // Desk phones: Gigaset's caller number, and a directory search (which may be one).
    "hm",
    "term",
];

/// The query string with secret values replaced by `REDACTED` and phone numbers masked.
/// Names are compared decoded, as the handlers read them (`to%6Ben` is `token`); any
/// value that holds something shaped like one of our secrets (`cg?_…`, `cgsess_…`,
/// `whsec_…`) is redacted whatever its name, and any value shaped like a phone number
/// (`+40…`, `0040…`, `0721…`) is masked whatever its name (a tenant's call-end mapping
/// may name its variables anything).
pub fn redact_query(query: &str) -> String {
    query
        .split('&')
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let lower = decoded_lower(name);
            let decoded = decoded_lower(value);
            if holds_token(&lower) {
                "REDACTED".to_owned()
            } else if SECRET_PARAMS.contains(&lower.trim()) || holds_token(&decoded) {
                format!("{name}=REDACTED")
            } else if NUMBER_PARAMS.contains(&squeezed(&lower).as_str())
                || looks_like_number(&decoded)
            {
                let keep = value.len().saturating_sub(3);
                let masked: String = value
                    .char_indices()
                    .map(|(i, c)| if i < keep { '*' } else { c })
                    .collect();
                format!("{name}={masked}")
            } else {
                pair.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("&")
}

fn decoded_lower(part: &str) -> String {
    percent_encoding::percent_decode_str(&part.replace('+', " "))
        .decode_utf8_lossy()
        .to_ascii_lowercase()
}

/// A parameter name without separators and brackets (`caller_number`, `Caller-Number`,
/// `phones[]`).
fn squeezed(lower: &str) -> String {
    lower
        .chars()
        .filter(|c| !matches!(c, '_' | '-' | ' ' | '.' | '[' | ']'))
        .collect()
}

/// Whether lowercased text contains one of our secrets' prefixes: a token (`cg` and a
/// letter and `_`: `cgl_`, `cge_`, and any prefix to come), a session (`cgsess_`), a
/// webhook signing secret (`whsec_`).
fn holds_token(lower: &str) -> bool {
    let token = lower.match_indices("cg").any(|(i, _)| {
        matches!(
            lower.as_bytes().get(i + 2..i + 4),
            Some([b'a'..=b'z', b'_'])
        )
    });
    token || lower.contains("cgsess_") || lower.contains("whsec_")
}

/// A value shaped like a phone number: `+` (decoded from `%2B`; a raw `+` decodes as a
/// space), `00` or `0`, then at least six more digits, with the spaces, dashes, dots and
/// brackets people write. Ids and epoch times (no leading `0` or `+`) are left alone.
fn looks_like_number(decoded: &str) -> bool {
    let text = decoded.trim();
    let international = text.starts_with('+') || decoded.starts_with(' ');
    let body = text.trim_start_matches('+');
    let digits = body.bytes().filter(u8::is_ascii_digit).count();
    body.bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b' ' | b'-' | b'.' | b'(' | b')'))
        && (international || body.starts_with('0'))
        && digits >= 7
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_redacted_and_the_rest_kept() {
        assert_eq!(
            redact_query("telephone=0700123&token=cgl_abc&dnid=021"),
            "telephone=****123&token=REDACTED&dnid=021"
        );
        assert_eq!(redact_query("TOKEN=x"), "TOKEN=REDACTED");
        assert_eq!(redact_query(""), "");
        // Click-to-call: the agent's session and the number called.
        assert_eq!(
            redact_query("session=cgsess_abc&number=0721234567&queue=sales"),
            "session=REDACTED&number=*******567&queue=sales"
        );
    }

    #[test]
    fn encoded_names_and_token_shaped_values_are_redacted_too() {
        assert_eq!(
            redact_query("to%6Ben=cgl_abc&tele%70hone=0700123"),
            "to%6Ben=REDACTED&tele%70hone=****123"
        );
        assert_eq!(redact_query("t=x%20cgs_abc&cga_abc"), "t=REDACTED&REDACTED");
        assert_eq!(redact_query("name=cg&q=cgxyz"), "name=cg&q=cgxyz");
    }

    #[test]
    fn every_token_prefix_is_redacted_in_any_parameter() {
        for secret in [
            "cge_abc",
            "cgl_abc",
            "cgx_future",
            "cgsess_abc",
            "whsec_abc",
        ] {
            for name in ["access_token", "t", "x-id", "q"] {
                let query = format!("{name}={secret}&keep=1");
                assert_eq!(
                    redact_query(&query),
                    format!("{name}=REDACTED&keep=1"),
                    "{query}"
                );
            }
        }
        assert_eq!(
            redact_query("access_token=anything&Signature=x"),
            "access_token=REDACTED&Signature=REDACTED"
        );
    }

    #[test]
    fn numbers_are_masked_in_every_number_carrying_parameter() {
        for name in [
            "caller",
            "ani",
            "dnis",
            "dnid",
            "external_number",
            "CallerNumber",
            "from",
            "to",
            "telephone",
            "number",
            "phone",
        ] {
            let query = format!("{name}=%2B40721234567&RequestID=513");
            assert_eq!(
                redact_query(&query),
                format!("{name}=***********567&RequestID=513"),
                "{query}"
            );
        }
        // Whatever a tenant's call-end mapping names its variables, a number is masked;
        // ids and times are not numbers.
        assert_eq!(
            redact_query(
                "var1=0721234567&v2=%2B40%20721%20234%20567&v3=0040721234567&uniqueid=1733.7&CallID=1000000087849&at=1764583300000&RequestID=513"
            ),
            "var1=*******567&v2=********************567&v3=**********567&uniqueid=1733.7&CallID=1000000087849&at=1764583300000&RequestID=513"
        );
    }
}
