//! Database lookups of cache misses, gathered: misses that wait at the same time share
//! one statement. Most of what a lookup costs PostgreSQL is the statement itself
//! (protocol, snapshot, executor start), not the two index reads, so a burst of new
//! callers costs a statement per batch instead of one per caller. Nothing waits to fill
//! a batch: a miss goes out at once when a statement slot is free, and the misses that
//! arrive while all slots are busy go out together in the next.
//!
//! When the database is slow, work is shed rather than piled up: a full queue refuses
//! a miss at once, and a miss that waited longer than a statement may take is failed
//! instead of asked (its caller has had a degraded answer long since).

use std::sync::Arc;
use std::time::{Duration, Instant};

use deadpool_postgres::Pool;
use tokio::sync::{Mutex, Semaphore, mpsc, oneshot};

use crate::domain::{LookupHit, PhoneNumber, TenantId};
use crate::jobs::{Readiness, Supervisor};
use crate::metrics::Metrics;
use crate::store;

/// Most numbers asked in one statement.
const MAX_BATCH: usize = 256;
/// Misses waiting for a statement; past this a miss is refused at once.
const QUEUE: usize = 4 * MAX_BATCH;
/// The gathering task's name in `/readyz` and the logs.
pub const TASK: &str = "lookup_batcher";

type Answer = anyhow::Result<Option<LookupHit>>;

struct Miss {
    tenant: TenantId,
    number: PhoneNumber,
    queued: Instant,
    reply: oneshot::Sender<Answer>,
}

/// Hands misses to the task that gathers them (cheap to clone).
#[derive(Clone)]
pub struct LookupBatcher {
    misses: mpsc::Sender<Miss>,
}

impl LookupBatcher {
    /// Starts the gathering task under `jobs`. At most `statements` batches are in
    /// flight at once (each holds a pool connection); every statement is bounded by
    /// `timeout`, and so is a miss's wait for one.
    pub fn spawn(
        jobs: &Supervisor,
        pool: Pool,
        statements: usize,
        timeout: Duration,
        metrics: Arc<Metrics>,
    ) -> Self {
        let (misses, queued) = mpsc::channel(QUEUE);
        // The queue and the slots outlive any one run of the task: a run that panics
        // or is aborted gives up its lock, not the receiver, so the restarted run takes
        // the misses queued meanwhile and the senders handlers hold stay valid (only
        // the batch it held is lost: those callers get an error and a degraded answer).
        let queued = Arc::new(Mutex::new(queued));
        let slots = Arc::new(Semaphore::new(statements.max(1)));
        jobs.spawn(TASK, Readiness::Required, move || {
            gather(
                queued.clone(),
                slots.clone(),
                pool.clone(),
                timeout,
                metrics.clone(),
            )
        });
        Self { misses }
    }

    /// The contact that has `number` now, if any.
    pub async fn find(&self, tenant: TenantId, number: &PhoneNumber) -> Answer {
        let (reply, answer) = oneshot::channel();
        let miss = Miss {
            tenant,
            number: number.clone(),
            queued: Instant::now(),
            reply,
        };
        self.misses.try_send(miss).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => anyhow::anyhow!("the lookup queue is full"),
            mpsc::error::TrySendError::Closed(_) => anyhow::anyhow!("the lookup batcher stopped"),
        })?;
        answer
            .await
            .map_err(|_| anyhow::anyhow!("the lookup batch was dropped"))?
    }
}

/// Ends (`Ok`) once every sender is gone: the gateway is stopping.
async fn gather(
    queued: Arc<Mutex<mpsc::Receiver<Miss>>>,
    slots: Arc<Semaphore>,
    pool: Pool,
    timeout: Duration,
    metrics: Arc<Metrics>,
) -> anyhow::Result<()> {
    let mut queued = queued.lock().await;
    loop {
        // A free slot first: while every slot is busy, misses queue up to share the
        // next statement, and then all of them (up to a batch) are taken at once.
        let slot = slots.clone().acquire_owned().await?;
        let mut batch = Vec::with_capacity(MAX_BATCH);
        if queued.recv_many(&mut batch, MAX_BATCH).await == 0 {
            return Ok(());
        }
        let (waited_too_long, misses): (Vec<Miss>, Vec<Miss>) = batch
            .into_iter()
            .partition(|miss| miss.queued.elapsed() > timeout);
        for miss in &misses {
            metrics
                .lookup_queue_wait
                .observe(miss.queued.elapsed().as_secs_f64());
        }
        for miss in waited_too_long {
            tell(
                miss.reply,
                Err(anyhow::anyhow!("waited too long for a lookup statement")),
            );
        }
        let (pool, metrics) = (pool.clone(), metrics.clone());
        tokio::spawn(async move {
            answer(&pool, misses, timeout, &metrics).await;
            drop(slot);
        });
    }
}

/// One statement for all `misses`; each gets its own answer, or the statement's error.
async fn answer(pool: &Pool, misses: Vec<Miss>, timeout: Duration, metrics: &Metrics) {
    if misses.is_empty() {
        return;
    }
    metrics.lookup_batch_numbers.observe(misses.len() as f64);
    let started = Instant::now();
    // Each number, then the other form of those that have one (asked for when the
    // number's own form belongs to no contact).
    let alternates: Vec<(usize, PhoneNumber)> = misses
        .iter()
        .enumerate()
        .filter_map(|(i, m)| m.number.alternate().map(|other| (i, other)))
        .collect();
    let wanted: Vec<(TenantId, &str)> = misses
        .iter()
        .map(|m| (m.tenant, m.number.as_str()))
        .chain(
            alternates
                .iter()
                .map(|(i, n)| (misses[*i].tenant, n.as_str())),
        )
        .collect();
    // A query that times out closes its connection: it is mid-statement.
    let found = store::with_client(pool, timeout, async |client| {
        store::contacts::find_by_numbers(&*client, &wanted).await
    })
    .await;
    metrics.observe_query("lookup", started.elapsed().as_secs_f64());
    match found {
        Ok(mut found) => {
            let own_forms = misses.len();
            for (k, (i, _)) in alternates.iter().enumerate() {
                if found[*i].is_none() {
                    found[*i] = found[own_forms + k].take();
                }
            }
            for (miss, hit) in misses.into_iter().zip(found) {
                tell(miss.reply, Ok(hit));
            }
        }
        Err(e) => {
            let reason = format!("{e:#}");
            for miss in misses {
                tell(miss.reply, Err(anyhow::anyhow!(reason.clone())));
            }
        }
    }
}

fn tell(reply: oneshot::Sender<Answer>, answer: Answer) {
    if reply.send(answer).is_err() {
        // The caller stopped waiting (a lookup too long to cache, past its deadline).
    }
}
