//! How long a failed background task waits before it runs again.

use std::time::Duration;

/// Restart pauses that double from `first` up to `max`, so a task that fails at once
/// every time does not spin, and start again from `first` once a run lasted `healthy`
/// (a task that fails once a day is restarted quickly each time).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    pub first: Duration,
    pub max: Duration,
    pub healthy: Duration,
}

impl Backoff {
    /// What the gateway's tasks use: 100 ms, doubling to 5 s; a minute's run resets it.
    pub const DEFAULT: Self = Self {
        first: Duration::from_millis(100),
        max: Duration::from_secs(5),
        healthy: Duration::from_secs(60),
    };

    /// The pause before the next run, after a run that lasted `ran_for` and failed;
    /// `previous` is the pause before that run (`None` for its first).
    pub fn next(&self, previous: Option<Duration>, ran_for: Duration) -> Duration {
        match previous {
            Some(pause) if ran_for < self.healthy => pause.saturating_mul(2).min(self.max),
            _ => self.first.min(self.max),
        }
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Self::DEFAULT
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::Backoff;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn a_task_that_keeps_failing_waits_twice_as_long_each_time_up_to_the_cap() {
        let backoff = Backoff::DEFAULT;
        let mut previous = None;
        let pauses: Vec<u64> = (0..9)
            .map(|_| {
                let pause = backoff.next(previous, MS);
                previous = Some(pause);
                pause.as_millis() as u64
            })
            .collect();
        assert_eq!(pauses, [100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000]);
    }

    #[test]
    fn a_run_that_lasted_starts_the_pauses_again_from_the_first() {
        let backoff = Backoff::DEFAULT;
        let long_run = backoff.healthy;
        assert_eq!(
            backoff.next(Some(Duration::from_secs(5)), long_run),
            backoff.first
        );
        assert_eq!(
            backoff.next(Some(Duration::from_secs(5)), long_run - MS),
            backoff.max
        );
    }

    #[test]
    fn the_first_pause_never_exceeds_the_cap() {
        let backoff = Backoff {
            first: Duration::from_secs(10),
            max: Duration::from_secs(1),
            healthy: Duration::from_secs(60),
        };
        assert_eq!(backoff.next(None, MS), Duration::from_secs(1));
    }
}
