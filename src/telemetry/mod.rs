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
    "token", "key", "secret", "password", "api_key", "apikey", "session",
];

/// Query parameters holding a caller's number: masked to their last three characters.
const PERSONAL_PARAMS: &[&str] = &["telephone", "number"];

/// The query string with secret values replaced by `REDACTED` and callers' numbers masked.
/// Names are compared decoded, as the handlers read them (`to%6Ben` is `token`), and any
/// value that holds something shaped like one of our tokens is redacted whatever its name.
pub fn redact_query(query: &str) -> String {
    query
        .split('&')
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let lower = decoded_lower(name);
            if holds_token(&lower) {
                "REDACTED".to_owned()
            } else if SECRET_PARAMS.contains(&lower.as_str()) || holds_token(&decoded_lower(value))
            {
                format!("{name}=REDACTED")
            } else if PERSONAL_PARAMS.contains(&lower.as_str()) {
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

/// Whether lowercased text contains a token prefix (`cgl_`, `cgs_`, `cgr_`, `cga_`).
fn holds_token(lower: &str) -> bool {
    lower.match_indices("cg").any(|(i, _)| {
        matches!(
            lower.as_bytes().get(i + 2..i + 4),
            Some([b'l' | b's' | b'r' | b'a', b'_'])
        )
    })
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
        assert_eq!(redact_query("dnid=cgx_1&name=cg"), "dnid=cgx_1&name=cg");
    }
}
