//! The delivery job (supervised): sends deliveries (`webhook::Deliverer`) whenever they are
//! due, each profile within its share. Woken by the `cidgate_deliveries` notification (heard by `live::listener` when a
//! transaction queuing deliveries commits, on any instance), and by a timer for the
//! next retry or lapsed claim.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use tokio::sync::watch;

use tokio::task::JoinSet;

use super::{Attempt, Deliverer};
use crate::domain::profile::Claimed;
use crate::jobs::{Readiness, Supervisor};
use crate::live::listener::Wake;
use crate::store::{self, deliveries};

/// The task's name in `/readyz` and the logs.
pub const TASK: &str = "webhook_deliveries";
/// Most deliveries one claim takes.
const ROUND: usize = 200;
/// How often the queue's depth and oldest due age are measured (for metrics).
const MEASURE_EVERY: Duration = Duration::from_secs(5);
/// Longest the worker sleeps without looking: other instances' retries, lapsed claims
/// and freed shares are found within this.
const MAX_IDLE: Duration = Duration::from_secs(2);

/// Runs the job under `jobs` (reported in `/readyz`; the gateway serves without it).
pub fn spawn(jobs: &Supervisor, deliverer: Deliverer, wake: Wake) {
    let deliverer = Arc::new(deliverer);
    jobs.spawn(TASK, Readiness::Reported, move || {
        let (deliverer, wake) = (deliverer.clone(), wake.clone());
        async move { dispatch(deliverer, wake.subscribe()).await }
    });
}

type Sent = (Claimed, Option<Attempt>);

/// Claims what the instance and each profile have room for, sends each delivery in its
/// own task, and records each as it finishes: a slow receiver holds only its own share,
/// never a round of other tenants' deliveries. Dropping the tasks (a restart) leaves
/// their claims to lapse, so they are sent again with the same `webhook-id`.
async fn dispatch(
    deliverer: Arc<Deliverer>,
    mut woken: watch::Receiver<u64>,
) -> anyhow::Result<()> {
    let capacity = deliverer.concurrency.max(1);
    let mut in_flight: JoinSet<Sent> = JoinSet::new();
    let mut measured: Option<Instant> = None;
    loop {
        woken.borrow_and_update();
        if measured.is_none_or(|at| at.elapsed() >= MEASURE_EVERY) {
            measure(&deliverer).await?;
            measured = Some(Instant::now());
        }
        let mut finished = Vec::new();
        while let Some(done) = in_flight.try_join_next() {
            finished.push(done?);
        }
        if !finished.is_empty() {
            deliverer.record(&finished).await?;
        }
        let room = capacity.saturating_sub(in_flight.len()).min(ROUND);
        if room > 0 {
            let claimed = deliverer.claim(room as i64, None).await?;
            if !claimed.is_empty() {
                let profiles = deliverer.profiles_of(&claimed).await?;
                for c in claimed {
                    let profile = profiles.get(&c.profile_id).cloned();
                    let deliverer = deliverer.clone();
                    in_flight.spawn(async move {
                        let attempt = match &profile {
                            Some(p) => Some(deliverer.send(p, &c).await),
                            None => None,
                        };
                        (c, attempt)
                    });
                }
                continue;
            }
        }
        let wait = if room > 0 {
            idle_wait(&deliverer).await?
        } else {
            MAX_IDLE
        };
        tokio::select! {
            Some(done) = in_flight.join_next(), if !in_flight.is_empty() => {
                deliverer.record(&[done?]).await?;
            }
            _ = woken.changed() => {}
            () = tokio::time::sleep(wait) => {}
        }
    }
}

/// How long to wait for the next delivery to fall due (bounded; one due already but held
/// back by its profile's share waits for a delivery to finish, which wakes the worker).
async fn idle_wait(deliverer: &Deliverer) -> anyhow::Result<Duration> {
    let next = store::with_client(&deliverer.pool, deliverer.db_timeout, async |client| {
        deliveries::next_due(&*client).await
    })
    .await?;
    Ok(next.map_or(MAX_IDLE, |due| {
        (due - Utc::now())
            .to_std()
            .unwrap_or(Duration::ZERO)
            .min(MAX_IDLE)
    }))
}

/// The queue's depth and its oldest due delivery's age, into the metrics.
async fn measure(deliverer: &Deliverer) -> anyhow::Result<()> {
    let Some(metrics) = &deliverer.metrics else {
        return Ok(());
    };
    let (depth, oldest) =
        store::with_client(&deliverer.pool, deliverer.db_timeout, async |client| {
            deliveries::queue_figures(&*client).await
        })
        .await?;
    metrics.webhooks.queue_depth.set(depth);
    metrics.webhooks.oldest_due_seconds.set(oldest);
    Ok(())
}
