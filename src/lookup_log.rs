//! The lookup log: every lookup recorded without slowing it. Entries go into a bounded
//! buffer and a background task writes them in batches; when the buffer is full an
//! entry is dropped and counted, never waited for.

use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::Pool;
use tokio::sync::mpsc;

use crate::metrics::Metrics;
use crate::store::{
    self,
    popup::{self, LogEntry},
};

/// Most entries written in one statement.
const BATCH: usize = 1_000;
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

#[derive(Clone)]
pub struct LookupLog {
    sender: mpsc::Sender<LogEntry>,
    metrics: Arc<Metrics>,
}

impl LookupLog {
    /// Starts the writer and the daily-retention pruner.
    pub fn spawn(pool: Pool, buffer: usize, retention_days: u32, metrics: Arc<Metrics>) -> Self {
        let (sender, receiver) = mpsc::channel(buffer.max(1));
        tokio::spawn(write_batches(pool.clone(), receiver, metrics.clone()));
        tokio::spawn(prune(pool, retention_days));
        Self { sender, metrics }
    }

    pub fn record(&self, entry: LogEntry) {
        if self.sender.try_send(entry).is_err() {
            self.metrics.lookup_log_dropped.inc();
        }
    }
}

async fn write_batches(pool: Pool, mut receiver: mpsc::Receiver<LogEntry>, metrics: Arc<Metrics>) {
    let mut batch = Vec::with_capacity(BATCH);
    while receiver.recv_many(&mut batch, BATCH).await > 0 {
        let written = async {
            let client = pool.get().await?;
            popup::write_log(&client, &batch).await
        }
        .await;
        match written {
            Ok(()) => {
                metrics.lookup_log_written.inc_by(batch.len() as u64);
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

async fn prune(pool: Pool, retention_days: u32) {
    let mut every = tokio::time::interval(PRUNE_EVERY);
    loop {
        every.tick().await;
        // Deletion times go with the log: no sync job is later than its retention.
        let pruned = async {
            let client = pool.get().await?;
            let tombstones = store::contacts::prune_tombstones(&client, retention_days).await?;
            Ok::<_, anyhow::Error>(popup::prune_log(&client, retention_days).await? + tombstones)
        }
        .await;
        match pruned {
            Ok(0) => {}
            Ok(n) => tracing::info!(deleted = n, retention_days, "pruned the lookup log"),
            Err(e) => tracing::warn!(error = format!("{e:#}"), "could not prune the lookup log"),
        }
    }
}
