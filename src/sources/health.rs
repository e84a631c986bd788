//! Each source's budget, breaker and counts, in this process: a source over its budget
//! or with its breaker open is skipped (the lookup answers without it).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// Failures in a row that open the breaker, and for how long it stays open.
pub const BREAKER_FAILURES: u32 = 5;
pub const BREAKER_OPEN: Duration = Duration::from_secs(30);

#[derive(Debug)]
struct Health {
    name: String,
    failures_in_row: u32,
    open_until: Option<Instant>,
    /// Requests left in the budget (a bucket refilled at the rate a minute).
    tokens: f64,
    refilled: Instant,
    requests: u64,
    found: u64,
    errors: u64,
    latency_ms: u64,
    last_error: Option<String>,
}

/// Why a source was not asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    BreakerOpen,
    OverBudget,
}

#[derive(Default)]
pub struct Board(Mutex<HashMap<i64, Health>>);

impl Board {
    fn with<T>(&self, id: i64, name: &str, rate: u32, f: impl FnOnce(&mut Health) -> T) -> T {
        let mut all = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let health = all.entry(id).or_insert_with(|| Health {
            name: name.to_owned(),
            failures_in_row: 0,
            open_until: None,
            // Full: a burst of a tenth of a minute's budget.
            tokens: (f64::from(rate) / 6.0).max(1.0),
            refilled: now,
            requests: 0,
            found: 0,
            errors: 0,
            latency_ms: 0,
            last_error: None,
        });
        health.name = name.to_owned();
        let per_second = f64::from(rate) / 60.0;
        let burst = (f64::from(rate) / 6.0).max(1.0);
        let elapsed = now.duration_since(health.refilled).as_secs_f64();
        health.tokens = (health.tokens + elapsed * per_second).min(burst);
        health.refilled = now;
        f(health)
    }

    /// Takes one request from the budget, unless the source is to be skipped.
    pub fn admit(&self, id: i64, name: &str, rate: u32) -> Result<(), Skip> {
        self.with(id, name, rate, |h| {
            if h.open_until.is_some_and(|until| Instant::now() < until) {
                return Err(Skip::BreakerOpen);
            }
            if h.tokens < 1.0 {
                return Err(Skip::OverBudget);
            }
            h.tokens -= 1.0;
            h.requests += 1;
            Ok(())
        })
    }

    /// Records an answer (found or not).
    pub fn answered(&self, id: i64, name: &str, rate: u32, found: bool, took: Duration) {
        self.with(id, name, rate, |h| {
            h.failures_in_row = 0;
            h.open_until = None;
            h.found += u64::from(found);
            h.latency_ms += took.as_millis() as u64;
        });
    }

    /// Records a failure; `pause` (a Retry-After) opens the breaker at once.
    pub fn failed(&self, id: i64, name: &str, rate: u32, error: &str, pause: Option<Duration>) {
        self.with(id, name, rate, |h| {
            h.errors += 1;
            h.failures_in_row += 1;
            h.last_error = Some(error.to_owned());
            let open = match pause {
                Some(pause) => Some(pause.min(Duration::from_secs(600))),
                None => (h.failures_in_row >= BREAKER_FAILURES).then_some(BREAKER_OPEN),
            };
            if let Some(open) = open {
                h.open_until = Some(Instant::now() + open);
            }
        });
    }

    /// Every source this process asked: counts and state, for `/readyz` and metrics.
    pub fn report(&self) -> Vec<Value> {
        let all = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let mut report: Vec<Value> = all
            .iter()
            .map(|(id, h)| {
                let open = h.open_until.is_some_and(|until| now < until);
                let answered = h.requests.saturating_sub(h.errors).max(1);
                json!({
                    "id": id,
                    "name": h.name,
                    "state": if open { "degraded" } else { "ok" },
                    "requests": h.requests,
                    "found": h.found,
                    "errors": h.errors,
                    "mean_latency_ms": h.latency_ms / answered,
                    "budget_left": h.tokens.floor() as u64,
                    "last_error": h.last_error,
                })
            })
            .collect();
        report.sort_by_key(|v| v["id"].as_i64());
        report
    }

    /// Whether a source's breaker is open now.
    pub fn degraded(&self) -> bool {
        let all = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        all.values()
            .any(|h| h.open_until.is_some_and(|until| now < until))
    }
}

/// The sources' counts as OpenMetrics gauges (families only when a source was asked),
/// to be put before the exposition's `# EOF`.
pub fn metrics_text(report: &[Value]) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    if report.is_empty() {
        return out;
    }
    let families = [
        ("requests", "requests sent to the CRM"),
        ("found", "contacts found"),
        ("errors", "requests that failed"),
        ("mean_latency_ms", "mean time of an answer"),
        ("budget_left", "requests left in the rate budget"),
    ];
    for (key, help) in families {
        let _ = writeln!(out, "# TYPE cidgate_source_{key} gauge");
        let _ = writeln!(out, "# HELP cidgate_source_{key} CRM source: {help}.");
        for source in report {
            let _ = writeln!(
                out,
                "cidgate_source_{key}{{source_id=\"{}\",source=\"{}\"}} {}",
                source["id"],
                source["name"].as_str().unwrap_or_default(),
                source[key].as_u64().unwrap_or_default()
            );
        }
    }
    let _ = writeln!(out, "# TYPE cidgate_source_degraded gauge");
    let _ = writeln!(
        out,
        "# HELP cidgate_source_degraded CRM source: 1 while its breaker is open."
    );
    for source in report {
        let _ = writeln!(
            out,
            "cidgate_source_degraded{{source_id=\"{}\",source=\"{}\"}} {}",
            source["id"],
            source["name"].as_str().unwrap_or_default(),
            u8::from(source["state"] == "degraded")
        );
    }
    out
}
