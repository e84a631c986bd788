//! The lookup log: every lookup recorded without slowing it. Entries go into a bounded
//! buffer and a background task writes them in batches; when the buffer is full an
//! entry is dropped and counted, never waited for.

use std::sync::Arc;
use std::time::{Duration, Instant};

use deadpool_postgres::Pool;
use tokio::sync::{Mutex, mpsc, watch};

use crate::domain::LogEntry;
use crate::jobs::{Readiness, Supervisor, TaskState};
use crate::metrics::Metrics;
use crate::store::{self, lookup_log};

/// Most entries written in one statement.
const BATCH: usize = 10_000;
/// Longest one write may take, beyond its gather window, before its connection is given up.
const WRITE_WITHIN: Duration = Duration::from_secs(10);
/// Waits between attempts to write a batch while the database is unreachable.
const RETRY_FIRST: Duration = Duration::from_millis(500);
const RETRY_MAX: Duration = Duration::from_secs(5);
/// How often an open statement takes in the entries that arrived meanwhile: often enough
/// that no wake-up has a burst of work (the gateway's and PostgreSQL's), seldom enough not
/// to wake for every lookup.
const TRICKLE: Duration = Duration::from_millis(5);
/// The writer's name in `/readyz` and the logs.
pub const TASK: &str = "lookup_log_writer";

#[derive(Clone)]
pub struct LookupLog {
    sender: mpsc::Sender<LogEntry>,
    metrics: Arc<Metrics>,
}

/// The background writer, to be stopped once nothing records any more (dropping it
/// stops the writer too). Pruning is a step of `jobs::retention`.
pub struct LogWriter {
    stop: watch::Sender<bool>,
    jobs: Supervisor,
}

impl LookupLog {
    /// Starts the writer under `jobs`. One statement takes the entries of `gather`:
    /// every statement and commit has a fixed cost in PostgreSQL, so fuller statements
    /// take much less of its CPU.
    pub fn spawn(
        jobs: &Supervisor,
        pool: Pool,
        buffer: usize,
        gather: Duration,
        metrics: Arc<Metrics>,
    ) -> (Self, LogWriter) {
        let (sender, receiver) = mpsc::channel(buffer.max(1));
        // The buffer outlives any one run of the writer: a run that panics or is aborted
        // gives up its lock, not the receiver, so recording goes on meanwhile and the
        // restarted run writes what was buffered (only the batch in hand is lost).
        let receiver = Arc::new(Mutex::new(receiver));
        let (stop, stopping) = watch::channel(false);
        let written = metrics.clone();
        // Not needed for readiness: lookups answer without it, and what they record
        // waits in the buffer (dropped and counted once it is full).
        jobs.spawn(TASK, Readiness::Reported, move || {
            write_batches(
                pool.clone(),
                receiver.clone(),
                gather,
                stopping.clone(),
                written.clone(),
            )
        });
        let writer = LogWriter {
            stop,
            jobs: jobs.clone(),
        };
        (Self { sender, metrics }, writer)
    }

    pub fn record(&self, entry: LogEntry) {
        if self.sender.try_send(entry).is_err() {
            self.metrics.lookup_log_dropped.inc();
        }
    }
}

impl LogWriter {
    /// Writes what is buffered without waiting to gather more, then ends.
    pub async fn stop(self, within: Duration) {
        self.stop.send_replace(true);
        let stopped = |tasks: &crate::jobs::Statuses| {
            tasks
                .get(TASK)
                .is_none_or(|task| task.state == TaskState::Stopped)
        };
        if !self.jobs.wait_until(within, stopped).await {
            tracing::warn!("stopped before the lookup log's last entries were written");
        }
    }
}

/// Ends (`Ok`) once stopped with everything buffered written, or when every sender is
/// gone.
async fn write_batches(
    pool: Pool,
    receiver: Arc<Mutex<mpsc::Receiver<LogEntry>>>,
    gather: Duration,
    mut stopping: watch::Receiver<bool>,
    metrics: Arc<Metrics>,
) -> anyhow::Result<()> {
    let mut receiver = receiver.lock().await;
    let mut batch = Vec::with_capacity(BATCH);
    let mut retry_in = RETRY_FIRST;
    loop {
        if batch.is_empty() {
            tokio::select! {
                received = receiver.recv_many(&mut batch, BATCH) => if received == 0 { return Ok(()) },
                _ = stopping.wait_for(|stop| *stop) => {}
            }
        } else {
            // A batch kept for another attempt goes out again after a pause.
            tokio::select! {
                () = tokio::time::sleep(retry_in) => {}
                _ = stopping.wait_for(|stop| *stop) => {}
            }
        }
        take_waiting(&mut receiver, &mut batch);
        if batch.is_empty() {
            // Only when stopping: everything buffered is written.
            return Ok(());
        }
        // One statement takes the entries of `gather`, streamed in as they arrive.
        let written = store::with_client(&pool, gather + WRITE_WITHIN, async |client| {
            let mut copy = lookup_log::LogCopy::start(client).await?;
            copy.write(&batch).await?;
            let until = Instant::now() + gather;
            while batch.len() < BATCH && !*stopping.borrow() {
                let left = until.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                tokio::select! {
                    () = tokio::time::sleep(TRICKLE.min(left)) => {}
                    _ = stopping.wait_for(|stop| *stop) => {}
                }
                let from = batch.len();
                take_waiting(&mut receiver, &mut batch);
                copy.write(&batch[from..]).await?;
            }
            copy.finish().await
        })
        .await;
        match written {
            Ok(()) => {
                metrics.lookup_log_written.inc_by(batch.len() as u64);
                retry_in = RETRY_FIRST;
            }
            // The database is away: keep the batch (new entries wait in the buffer, and
            // are dropped and counted once it is full) and try again.
            Err(e) if store::is_unreachable(&e) && !*stopping.borrow() => {
                metrics.lookup_log_write_failures.inc();
                if retry_in == RETRY_FIRST {
                    tracing::warn!(
                        error = format!("{e:#}"),
                        entries = batch.len(),
                        "lookup log unwritable; retrying"
                    );
                }
                retry_in = (retry_in * 2).min(RETRY_MAX);
                continue;
            }
            Err(e) => {
                // The log is not worth holding lookups for: the batch is dropped.
                metrics.lookup_log_dropped.inc_by(batch.len() as u64);
                tracing::warn!(
                    error = format!("{e:#}"),
                    entries = batch.len(),
                    "lookup log batch dropped"
                );
            }
        }
        batch.clear();
    }
}

/// Moves the entries waiting in the buffer into the batch, up to its size.
fn take_waiting(receiver: &mut mpsc::Receiver<LogEntry>, batch: &mut Vec<LogEntry>) {
    while batch.len() < BATCH {
        match receiver.try_recv() {
            Ok(entry) => batch.push(entry),
            Err(_) => break,
        }
    }
}
