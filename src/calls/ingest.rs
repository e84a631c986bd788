//! Call events reach PostgreSQL in batches: requests that arrive while a batch is being
//! written share the next transaction, so a busy PBX costs a transaction per batch, not
//! per event, and each request is answered once its events are committed.

use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{GenericClient, Pool, Transaction};
use tokio::sync::{Mutex, Semaphore, mpsc, oneshot};

use crate::domain::{CallCaps, IncomingEvent, Region, TenantId};
use crate::jobs::{Readiness, Supervisor};
use crate::store::{self, calls::worth_retrying};
use crate::webhook::triggers;

/// The task's name in `/readyz` and the logs.
pub const TASK: &str = "call_event_writer";
/// Most requests written in one transaction (each holds up to 1,000 events).
const MAX_REQUESTS: usize = 64;
/// Requests waiting for a transaction; past this a request is refused at once (503).
const QUEUE: usize = 4_096;
/// Transactions in flight at once (each holds a pool connection).
const WRITERS: usize = 2;
/// How often a batch that lost a race (deadlock, serialization) is tried again.
const ATTEMPTS: u32 = 3;

/// For each event of a request, whether it was new (false: a repeat of a recorded one).
pub type Recorded = anyhow::Result<Vec<bool>>;

struct Request {
    tenant: TenantId,
    region: Region,
    events: Vec<IncomingEvent>,
    reply: Option<oneshot::Sender<Recorded>>,
}

/// Hands events to the writing task (cheap to clone).
#[derive(Clone)]
pub struct EventWriter {
    requests: mpsc::Sender<Request>,
}

/// Why events could not be queued.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("too many call events are waiting to be written")]
    Full,
    #[error("the call event writer stopped")]
    Stopped,
}

impl EventWriter {
    /// Starts the writing task under `jobs`; each transaction is bounded by `timeout`.
    /// The queue outlives a run of the task (as the lookup batcher's does): a restarted
    /// run takes the requests queued meanwhile.
    pub fn spawn(jobs: &Supervisor, pool: Pool, timeout: Duration, caps: CallCaps) -> Self {
        let (requests, queued) = mpsc::channel(QUEUE);
        let queued = Arc::new(Mutex::new(queued));
        let slots = Arc::new(Semaphore::new(WRITERS));
        jobs.spawn(TASK, Readiness::Reported, move || {
            gather(queued.clone(), slots.clone(), pool.clone(), timeout, caps)
        });
        Self { requests }
    }

    /// Writes `events` and waits until they are committed.
    pub async fn record(
        &self,
        tenant: TenantId,
        region: Region,
        events: Vec<IncomingEvent>,
    ) -> Result<Recorded, QueueError> {
        let (reply, answer) = oneshot::channel();
        self.queue(Request {
            tenant,
            region,
            events,
            reply: Some(reply),
        })?;
        answer.await.map_err(|_| QueueError::Stopped)
    }

    /// Queues `event` without waiting (a lookup's: the PBX is not kept waiting for it).
    pub fn offer(
        &self,
        tenant: TenantId,
        region: Region,
        event: IncomingEvent,
    ) -> Result<(), QueueError> {
        self.queue(Request {
            tenant,
            region,
            events: vec![event],
            reply: None,
        })
    }

    fn queue(&self, request: Request) -> Result<(), QueueError> {
        self.requests.try_send(request).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => QueueError::Full,
            mpsc::error::TrySendError::Closed(_) => QueueError::Stopped,
        })
    }
}

async fn gather(
    queued: Arc<Mutex<mpsc::Receiver<Request>>>,
    slots: Arc<Semaphore>,
    pool: Pool,
    timeout: Duration,
    caps: CallCaps,
) -> anyhow::Result<()> {
    let mut queued = queued.lock().await;
    loop {
        let slot = slots.clone().acquire_owned().await?;
        let mut batch = Vec::with_capacity(MAX_REQUESTS);
        if queued.recv_many(&mut batch, MAX_REQUESTS).await == 0 {
            return Ok(());
        }
        let pool = pool.clone();
        tokio::spawn(async move {
            write(&pool, batch, timeout, caps).await;
            drop(slot);
        });
    }
}

/// One transaction for every request of the batch; each gets its own answer.
async fn write(pool: &Pool, mut batch: Vec<Request>, timeout: Duration, caps: CallCaps) {
    // Tenants in one order, so two batches lock the same keys in the same order.
    batch.sort_by_key(|r| r.tenant.0);
    let mut attempt = 1;
    let outcome = loop {
        let outcome = store::with_client(pool, timeout, async |client| {
            let mut tx = client.transaction().await?;
            let mut recorded = Vec::with_capacity(batch.len());
            for (tenant, requests) in by_tenant(&batch) {
                recorded.extend(write_tenant(&mut tx, tenant, requests, caps).await?);
            }
            tx.commit().await?;
            Ok(recorded)
        })
        .await;
        match outcome {
            Err(e) if attempt < ATTEMPTS && worth_retrying(&e) => attempt += 1,
            outcome => break outcome,
        }
    };
    match outcome {
        Ok(recorded) => {
            for (request, new) in batch.into_iter().zip(recorded) {
                tell(request.reply, new);
            }
        }
        Err(e) => {
            tracing::warn!(error = format!("{e:#}"), "writing call events failed");
            let reason = format!("{e:#}");
            for request in batch {
                tell(request.reply, Err(anyhow::anyhow!(reason.clone())));
            }
        }
    }
}

/// A tenant's requests of the batch, in a savepoint: when the database refuses what one
/// request holds, each is written again alone, so only that request fails and every
/// other tenant's and request's events still commit. A race lost (deadlock,
/// serialization) fails the whole batch, which is tried again.
async fn write_tenant(
    tx: &mut Transaction<'_>,
    tenant: TenantId,
    requests: &[Request],
    caps: CallCaps,
) -> anyhow::Result<Vec<Recorded>> {
    let together = tx.savepoint("tenant_events").await?;
    let failed = match ingest(&together, tenant, requests, caps).await {
        Ok(recorded) => {
            together.commit().await?;
            return Ok(recorded.into_iter().map(Ok).collect());
        }
        Err(e) if worth_retrying(&e) => return Err(e),
        Err(e) => e,
    };
    together.rollback().await?;
    if failed.is::<crate::domain::OverCap>() {
        // A cap reached is the tenant's to see in its answers, not an operator's alarm.
        tracing::debug!(tenant = tenant.0, error = %failed, "call events over a cap");
    } else {
        tracing::warn!(
            tenant = tenant.0,
            error = format!("{failed:#}"),
            "a batch of call events was refused; writing its requests one by one"
        );
    }
    let mut recorded = Vec::with_capacity(requests.len());
    for request in requests {
        let alone = tx.savepoint("request_events").await?;
        match ingest(&alone, tenant, std::slice::from_ref(request), caps).await {
            Ok(mut new) => {
                alone.commit().await?;
                recorded.push(Ok(new.pop().unwrap_or_default()));
            }
            Err(e) if worth_retrying(&e) => return Err(e),
            Err(e) => {
                alone.rollback().await?;
                recorded.push(Err(e));
            }
        }
    }
    Ok(recorded)
}

/// Writes `requests` of one tenant (and queues the deliveries they trigger, which commit
/// with them); for each request, which of its events were new.
async fn ingest(
    client: &impl GenericClient,
    tenant: TenantId,
    requests: &[Request],
    caps: CallCaps,
) -> anyhow::Result<Vec<Vec<bool>>> {
    let events: Vec<IncomingEvent> = requests
        .iter()
        .flat_map(|r| r.events.iter().cloned())
        .collect();
    let ingested = store::calls::ingest(client, tenant, requests[0].region, &events, caps).await?;
    let changed: Vec<uuid::Uuid> = ingested.calls.iter().map(|c| c.id).collect();
    triggers::enqueue_for_calls(client, tenant, &changed).await?;
    let legs = triggers::leg_events(&events, &ingested.new, &ingested.calls);
    triggers::enqueue_for_legs(client, tenant, &legs).await?;
    let mut new = ingested.new.into_iter();
    Ok(requests
        .iter()
        .map(|r| new.by_ref().take(r.events.len()).collect())
        .collect())
}

/// Consecutive requests of one tenant (the batch is sorted by tenant).
fn by_tenant(batch: &[Request]) -> impl Iterator<Item = (TenantId, &[Request])> {
    batch
        .chunk_by(|a, b| a.tenant == b.tenant)
        .map(|requests| (requests[0].tenant, requests))
}

fn tell(reply: Option<oneshot::Sender<Recorded>>, recorded: Recorded) {
    if let Some(reply) = reply
        && reply.send(recorded).is_err()
    {
        // The request stopped waiting (its client went away); the events are written.
    }
}
