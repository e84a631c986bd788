//! The one log line per request, formatted by hand: at the default level every lookup
//! writes one, and tracing's formatter (visitors, `fmt::Debug` of each field, a fresh
//! timestamp string) cost a lookup about a quarter of its CPU. The line reads the same
//! as tracing's own (pretty or JSON) and goes to the same non-blocking writer, so it
//! interleaves with every other line and is dropped and counted the same way.

use std::cell::RefCell;
use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

use super::LogFormat;

/// The target the line is logged under (`RUST_LOG` directives name it).
pub const TARGET: &str = "cidgate::http::middleware";

/// What one request's line says.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct RequestLine<'a> {
    pub method: &'static str,
    pub route: &'static str,
    /// Already redacted.
    pub query: &'a str,
    pub status: u16,
    pub elapsed_us: u64,
}

#[derive(Serialize)]
struct JsonLine<'a> {
    timestamp: &'a str,
    level: &'static str,
    fields: JsonFields<'a>,
    target: &'static str,
}

#[derive(Serialize)]
struct JsonFields<'a> {
    message: &'static str,
    #[serde(flatten)]
    line: RequestLine<'a>,
}

impl RequestLine<'_> {
    /// Appends the line (with its newline) as tracing's `format` would write it at INFO.
    pub fn write_to(&self, format: LogFormat, timestamp: &str, out: &mut Vec<u8>) {
        // Writing into a Vec cannot fail.
        let _ = match format {
            LogFormat::Pretty => writeln!(
                out,
                "{timestamp}  INFO {TARGET}: request method={:?} route={:?} query={:?} status={} elapsed_us={}",
                self.method, self.route, self.query, self.status, self.elapsed_us
            ),
            LogFormat::Json => {
                let line = JsonLine {
                    timestamp,
                    level: "INFO",
                    fields: JsonFields {
                        message: "request",
                        line: *self,
                    },
                    target: TARGET,
                };
                serde_json::to_writer(&mut *out, &line)
                    .map_err(std::io::Error::from)
                    .and_then(|()| out.write_all(b"\n"))
            }
        };
    }
}

/// The current time as tracing writes it (`2026-12-02T23:27:42.794896Z`); the part up to
/// the second is made once a second per thread.
pub fn with_timestamp<R>(use_it: impl FnOnce(&str) -> R) -> R {
    thread_local! {
        static STAMP: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    STAMP.with_borrow_mut(|(second, text)| {
        if *second != now.as_secs() {
            *second = now.as_secs();
            let whole = i64::try_from(now.as_secs()).unwrap_or_default();
            let at = chrono::DateTime::from_timestamp(whole, 0).unwrap_or_default();
            *text = at.format("%Y-%m-%dT%H:%M:%S.").to_string();
        }
        let prefix = text.len();
        let _ = std::fmt::Write::write_fmt(text, format_args!("{:06}Z", now.subsec_micros()));
        let result = use_it(text);
        text.truncate(prefix);
        result
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINE: RequestLine<'static> = RequestLine {
        method: "GET",
        route: "/api/lookup",
        query: "telephone=*******002&token=REDACTED&q=\"x\"",
        status: 200,
        elapsed_us: 131,
    };

    #[test]
    fn the_pretty_line_reads_as_tracing_writes_it() {
        let mut out = Vec::new();
        LINE.write_to(LogFormat::Pretty, "2026-12-02T23:27:42.794896Z", &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "2026-12-02T23:27:42.794896Z  INFO cidgate::http::middleware: request \
             method=\"GET\" route=\"/api/lookup\" \
             query=\"telephone=*******002&token=REDACTED&q=\\\"x\\\"\" status=200 elapsed_us=131\n"
        );
    }

    #[test]
    fn the_json_line_has_tracings_layout() {
        let mut out = Vec::new();
        LINE.write_to(LogFormat::Json, "2026-12-02T23:27:42.794896Z", &mut out);
        assert_eq!(out.last(), Some(&b'\n'));
        let parsed: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            parsed,
            serde_json::json!({
                "timestamp": "2026-12-02T23:27:42.794896Z",
                "level": "INFO",
                "fields": {
                    "message": "request", "method": "GET", "route": "/api/lookup",
                    "query": LINE.query, "status": 200, "elapsed_us": 131,
                },
                "target": "cidgate::http::middleware",
            })
        );
    }

    #[test]
    fn timestamps_have_microseconds_and_the_second_they_were_made_in() {
        let before = chrono::Utc::now();
        let stamp = with_timestamp(str::to_owned);
        let after = chrono::Utc::now();
        let parsed = chrono::DateTime::parse_from_rfc3339(&stamp).unwrap();
        assert_eq!(stamp.len(), "2026-12-02T23:27:42.794896Z".len(), "{stamp}");
        assert!(
            before <= parsed && parsed <= after,
            "{before} {stamp} {after}"
        );
        // The cached prefix is not left holding the previous call's microseconds.
        assert_eq!(with_timestamp(str::len), stamp.len());
    }
}
