//! The delivery job (supervised): rounds of delivery (`webhook::Deliverer`) whenever deliveries are
//! due. Woken by the `cidgate_deliveries` notification (heard by `live::listener` when a
//! transaction queuing deliveries commits, on any instance), and by a timer for the
//! next retry or lapsed claim.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use tokio::sync::watch;

use super::Deliverer;
use crate::jobs::{Readiness, Supervisor};
use crate::live::listener::Wake;
use crate::store::{self, deliveries};

/// The task's name in `/readyz` and the logs.
pub const TASK: &str = "webhook_deliveries";
/// Deliveries one round claims.
const ROUND: i64 = 200;
/// Rounds in flight at once (each claims, sends, records).
const LANES: usize = 4;
/// How often the queue's depth and oldest due age are measured (for metrics).
const MEASURE_EVERY: Duration = Duration::from_secs(5);
/// Longest a lane sleeps without looking: other instances' retries and lapsed claims
/// are found within this.
const MAX_IDLE: Duration = Duration::from_secs(2);

/// Runs the job under `jobs` (reported in `/readyz`; the gateway serves without it).
pub fn spawn(jobs: &Supervisor, deliverer: Deliverer, wake: Wake) {
    let deliverer = Arc::new(deliverer);
    jobs.spawn(TASK, Readiness::Reported, move || {
        let (deliverer, wake) = (deliverer.clone(), wake.clone());
        async move {
            let lanes =
                (0..LANES).map(|lane| lane_loop(deliverer.clone(), wake.subscribe(), lane == 0));
            futures_util::future::try_join_all(lanes).await?;
            Ok(())
        }
    });
}

async fn lane_loop(
    deliverer: Arc<Deliverer>,
    mut woken: watch::Receiver<u64>,
    measures: bool,
) -> anyhow::Result<()> {
    let mut measured: Option<Instant> = None;
    loop {
        woken.borrow_and_update();
        if measures && measured.is_none_or(|at| at.elapsed() >= MEASURE_EVERY) {
            measure(&deliverer).await?;
            measured = Some(Instant::now());
        }
        let sent = deliverer.round(ROUND, None).await?;
        if sent > 0 {
            continue;
        }
        let next = store::with_client(&deliverer.pool, deliverer.db_timeout, async |client| {
            deliveries::next_due(&*client).await
        })
        .await?;
        let wait = next.map_or(MAX_IDLE, |due| {
            (due - Utc::now())
                .to_std()
                .unwrap_or(Duration::ZERO)
                .min(MAX_IDLE)
        });
        if wait.is_zero() {
            // Due now but claimed by another lane or instance meanwhile: look again soon.
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        }
        tokio::select! {
            _ = woken.changed() => {}
            () = tokio::time::sleep(wait) => {}
        }
    }
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
