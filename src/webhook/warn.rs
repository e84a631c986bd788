//! Warnings about deliveries that were refused, failed or will be retried: at `warn` so an
//! operator sees a receiver in trouble at the default level, but at most a few per
//! profile a minute so a dead receiver cannot flood the log (the rest are counted and
//! the count is logged with the next warning).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Warnings logged per profile per window.
const PER_WINDOW: u32 = 5;
/// The window.
const WINDOW: Duration = Duration::from_secs(60);

#[derive(Debug, Default)]
pub struct Warnings {
    windows: Mutex<HashMap<i64, Window>>,
}

#[derive(Debug)]
struct Window {
    started: Instant,
    logged: u32,
    held_back: u64,
}

impl Warnings {
    /// Whether a warning about `profile` may be logged now, and how many were held back
    /// since the last one logged.
    pub fn admit(&self, profile: i64, now: Instant) -> Option<u64> {
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        if windows.len() > 10_000 {
            windows.retain(|_, w| now.duration_since(w.started) < WINDOW);
        }
        let window = windows.entry(profile).or_insert(Window {
            started: now,
            logged: 0,
            held_back: 0,
        });
        if now.duration_since(window.started) >= WINDOW {
            window.started = now;
            window.logged = 0;
        }
        if window.logged >= PER_WINDOW {
            window.held_back += 1;
            return None;
        }
        window.logged += 1;
        Some(std::mem::take(&mut window.held_back))
    }

    /// Logs what became of a delivery that did not arrive (within the limit).
    pub fn delivery(&self, w: &DeliveryWarning<'_>) {
        let Some(held_back) = self.admit(w.profile, Instant::now()) else {
            return;
        };
        tracing::warn!(
            profile = w.profile,
            tenant = w.tenant,
            delivery = %w.delivery,
            attempt = w.attempt,
            outcome = w.outcome,
            reason = w.reason,
            held_back,
            "web-service delivery not delivered"
        );
    }
}

/// What a warning says: never the request (its secret headers) or the answer's body.
pub struct DeliveryWarning<'a> {
    pub profile: i64,
    pub tenant: i64,
    pub delivery: uuid::Uuid,
    pub attempt: i32,
    /// `refused`, `failed`, `retrying` or `gone`.
    pub outcome: &'static str,
    pub reason: &'a str,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dead_receiver_is_warned_about_a_few_times_a_minute() {
        let warnings = Warnings::default();
        let start = Instant::now();
        let admitted = (0..100)
            .filter(|_| warnings.admit(7, start).is_some())
            .count();
        assert_eq!(admitted, PER_WINDOW as usize);
        assert_eq!(
            warnings.admit(8, start),
            Some(0),
            "another profile has its own"
        );
        assert_eq!(
            warnings.admit(7, start + WINDOW),
            Some(95),
            "the next window says how many were held back"
        );
    }
}
