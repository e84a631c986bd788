//! The retention schedule: one job that, soon after start and then hourly, runs each
//! pruning step in turn. A step is named, timed and logged; one that fails (or panics)
//! is logged and counted, and the others still run. New kinds of data that expire
//! (calls, webhook deliveries) add a [`Step`] to the list `spawn` is given.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use deadpool_postgres::Pool;
use futures_util::FutureExt;
use futures_util::future::BoxFuture;

use super::{Readiness, Supervisor};
use crate::metrics::{Metrics, StepLabels};
use crate::store;

/// The task's name in `/readyz` and the logs.
pub const TASK: &str = "retention";
/// Longest one pruning statement may take (a first prune after a long pause deletes much).
const PRUNE_WITHIN: Duration = Duration::from_secs(15 * 60);

/// When the steps run.
#[derive(Clone, Copy, Debug)]
pub struct Schedule {
    /// After start: late enough not to add to start-up's own load.
    pub first: Duration,
    pub every: Duration,
}

impl Schedule {
    pub const HOURLY: Self = Self {
        first: Duration::from_secs(60),
        every: Duration::from_secs(3600),
    };
}

type Prune = dyn Fn() -> BoxFuture<'static, anyhow::Result<u64>> + Send + Sync;

/// One thing the retention job prunes.
pub struct Step {
    name: &'static str,
    prune: Box<Prune>,
}

impl Step {
    /// `prune` answers how many rows (or partitions) it removed, for the log.
    pub fn new<F, Fut>(name: &'static str, prune: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = anyhow::Result<u64>> + Send + 'static,
    {
        Self {
            name,
            prune: Box::new(move || prune().boxed()),
        }
    }

    pub fn name(&self) -> &'static str {
        self.name
    }
}

/// What the gateway prunes today, each kept `retention_days`: the lookup log, and the
/// contacts' deletion times (no sync job is later than the log is kept).
pub fn standard_steps(pool: &Pool, retention_days: u32) -> Vec<Step> {
    let log_pool = pool.clone();
    let tombstones_pool = pool.clone();
    let sessions_pool = pool.clone();
    vec![
        Step::new("lookup_log", move || {
            let pool = log_pool.clone();
            async move {
                store::with_client(&pool, PRUNE_WITHIN, async |client| {
                    store::lookup_log::prune(&*client, retention_days).await
                })
                .await
            }
        }),
        Step::new("contact_tombstones", move || {
            let pool = tombstones_pool.clone();
            async move {
                store::with_client(&pool, PRUNE_WITHIN, async |client| {
                    store::contacts::prune_tombstones(&*client, retention_days).await
                })
                .await
            }
        }),
        // Expired agents' sessions open nothing; they are removed, not kept.
        Step::new("agent_sessions", move || {
            let pool = sessions_pool.clone();
            async move {
                store::with_client(&pool, PRUNE_WITHIN, async |client| {
                    store::sessions::prune(&*client).await
                })
                .await
            }
        }),
    ]
}

/// The call tables' monthly partitions: made ahead, dropped once past `retention_days`.
pub fn call_partitions_step(pool: &Pool, retention_days: u32) -> Step {
    let pool = pool.clone();
    Step::new("call_partitions", move || {
        let pool = pool.clone();
        async move { maintain_call_partitions(&pool, retention_days).await }
    })
}

/// Creates the call partitions ahead and drops expired ones; answers how many changed.
pub async fn maintain_call_partitions(pool: &Pool, retention_days: u32) -> anyhow::Result<u64> {
    store::with_client(pool, PRUNE_WITHIN, async |client| {
        let tx = client.transaction().await?;
        let today = chrono::Utc::now().date_naive();
        let changes = store::call_partitions::maintain(&tx, today, retention_days).await?;
        tx.commit().await?;
        Ok((changes.created + changes.dropped) as u64)
    })
    .await
}

/// Runs `steps` on `schedule` as the supervised task [`TASK`] (the gateway serves
/// while it is down).
pub fn spawn(jobs: &Supervisor, schedule: Schedule, steps: Vec<Step>, metrics: Arc<Metrics>) {
    for step in &steps {
        // Each step's failures are exported from start, at zero.
        drop(
            metrics
                .retention_failures
                .get_or_create(&StepLabels { step: step.name }),
        );
    }
    let steps: Arc<[Step]> = steps.into();
    jobs.spawn(TASK, Readiness::Reported, move || {
        run(schedule, steps.clone(), metrics.clone())
    });
}

async fn run(schedule: Schedule, steps: Arc<[Step]>, metrics: Arc<Metrics>) -> anyhow::Result<()> {
    tokio::time::sleep(schedule.first).await;
    let mut every = tokio::time::interval(schedule.every);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        run_once(&steps, &metrics).await;
    }
}

/// Runs every step once, in order; answers each step's name and how many it removed,
/// or why it failed.
pub async fn run_once(
    steps: &[Step],
    metrics: &Metrics,
) -> Vec<(&'static str, Result<u64, String>)> {
    let mut outcomes = Vec::with_capacity(steps.len());
    for step in steps {
        let started = Instant::now();
        // A panicking step is one failed step, not a failed schedule.
        let pruned = match AssertUnwindSafe((step.prune)()).catch_unwind().await {
            Ok(Ok(removed)) => Ok(removed),
            Ok(Err(e)) => Err(format!("{e:#}")),
            Err(_) => Err("panicked".to_owned()),
        };
        let elapsed_ms = started.elapsed().as_millis() as u64;
        match &pruned {
            Ok(removed) => {
                tracing::info!(step = step.name, removed, elapsed_ms, "retention step done");
            }
            Err(error) => {
                metrics
                    .retention_failures
                    .get_or_create(&StepLabels { step: step.name })
                    .inc();
                tracing::warn!(step = step.name, error, elapsed_ms, "retention step failed");
            }
        }
        outcomes.push((step.name, pruned));
    }
    outcomes
}

#[cfg(test)]
mod tests {
    use super::{Step, run_once};
    use crate::metrics::Metrics;

    #[tokio::test]
    async fn a_failing_step_is_counted_and_the_others_still_run() {
        let steps = [
            Step::new("first", || async { Ok(3) }),
            Step::new("erring", || async { anyhow::bail!("disk on fire") }),
            Step::new("panicking", || async { panic!("bug") }),
            Step::new("last", || async { Ok(0) }),
        ];
        let metrics = Metrics::new();
        let outcomes = run_once(&steps, &metrics).await;
        assert_eq!(
            outcomes,
            [
                ("first", Ok(3)),
                ("erring", Err("disk on fire".to_owned())),
                ("panicking", Err("panicked".to_owned())),
                ("last", Ok(0)),
            ]
        );
        let rendered = metrics.render();
        for step in ["erring", "panicking"] {
            let line = format!(r#"cidgate_retention_step_failures_total{{step="{step}"}} 1"#);
            assert!(rendered.contains(&line), "{rendered}");
        }
        assert!(!rendered.contains(r#"step="first""#), "{rendered}");
    }
}
