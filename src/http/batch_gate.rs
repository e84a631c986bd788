//! How many contact batches are read and parsed at once: each holds its body and the
//! values parsed from it (tens of MiB), so a burst of them could exhaust memory. The
//! rest wait briefly for a turn, then are answered 503 with `Retry-After`.

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::metrics::gauge::Gauge;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::error::ApiError;

#[derive(Clone)]
pub struct BatchGate {
    turns: Arc<Semaphore>,
    wait: Duration,
    /// Batches holding a turn now (the `batch_parses` metric).
    active: Gauge,
}

/// A turn to read and parse one batch, given back when dropped.
pub struct Turn {
    _permit: OwnedSemaphorePermit,
    active: Gauge,
}

impl Drop for Turn {
    fn drop(&mut self) {
        self.active.dec();
    }
}

impl BatchGate {
    pub fn new(at_once: usize, wait: Duration, active: Gauge) -> Self {
        Self {
            turns: Arc::new(Semaphore::new(at_once)),
            wait,
            active,
        }
    }

    /// Waits at most the configured time for a turn.
    pub async fn turn(&self) -> Result<Turn, ApiError> {
        let permit = tokio::time::timeout(self.wait, self.turns.clone().acquire_owned()).await;
        match permit {
            Ok(Ok(permit)) => {
                self.active.inc();
                Ok(Turn {
                    _permit: permit,
                    active: self.active.clone(),
                })
            }
            // The semaphore is never closed; a timeout is the only way here.
            Ok(Err(_)) | Err(_) => Err(ApiError::Busy(
                "as many batches as this instance parses at once are being parsed; retry after the Retry-After seconds",
            )),
        }
    }
}
