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

const MIB: u64 = 1024 * 1024;
/// What the process holds besides the batch parses, the number index and the lookup
/// cache: the runtime, the pools' connections, request buffers (with room).
pub const BASE_MEMORY: u64 = 96 * MIB;

/// The most one parse may hold: its body and, parsed, its peak.
pub fn per_parse() -> u64 {
    let bytes = super::routes::contacts::BATCH_BODY_LIMIT * (1 + super::body::PARSE_MEMORY_FACTOR)
        + super::body::PARSE_MEMORY_SLACK;
    bytes as u64
}

/// The process's memory budget, and where it comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryBudget {
    pub bytes: u64,
    pub source: &'static str,
}

impl MemoryBudget {
    /// `CIDGATE_MEMORY_BUDGET_MIB` when set, else the container's memory limit.
    pub fn of(configured_mib: Option<u64>) -> Option<Self> {
        match configured_mib {
            Some(mib) => Some(Self {
                bytes: mib.saturating_mul(MIB),
                source: "CIDGATE_MEMORY_BUDGET_MIB",
            }),
            None => cgroup_limit().map(|bytes| Self {
                bytes,
                source: "the container's memory limit (cgroup)",
            }),
        }
    }
}

/// The cgroup's memory limit (v2 `memory.max`, else v1), `None` when unlimited.
fn cgroup_limit() -> Option<u64> {
    [
        "/sys/fs/cgroup/memory.max",
        "/sys/fs/cgroup/memory/memory.limit_in_bytes",
    ]
    .iter()
    .find_map(|path| std::fs::read_to_string(path).ok())
    .and_then(|text| text.trim().parse::<u64>().ok())
    // v1 says "unlimited" with a number near i64::MAX.
    .filter(|&bytes| bytes < 1 << 60)
}

/// How many batches may be parsed at once within `budget`, after `reserved` (the number
/// index, the cache and the rest of the process): `requested`, fewer when that many would
/// not fit, an error when not even one would.
pub fn parses_within(
    requested: u16,
    reserved: u64,
    budget: Option<MemoryBudget>,
) -> anyhow::Result<u16> {
    let per_parse = per_parse();
    let Some(budget) = budget else {
        tracing::info!(
            batch_parses = requested,
            memory_mib = u64::from(requested) * per_parse / MIB,
            "batch parses may hold this much memory together at most (CIDGATE_BATCH_PARSES); \
             no memory budget (CIDGATE_MEMORY_BUDGET_MIB, or a container limit) to check it against"
        );
        return Ok(requested);
    };
    let left = budget.bytes.saturating_sub(reserved);
    let fit = u16::try_from(left / per_parse).unwrap_or(u16::MAX);
    if fit == 0 {
        anyhow::bail!(
            "the memory budget ({} MiB, {}) leaves {} MiB after the number index, the lookup \
             cache and {} MiB for the rest of the process: not enough for one batch parse ({} MiB); \
             raise the budget or lower CIDGATE_KNOWN_NUMBERS_MAX_BYTES or CIDGATE_CACHE_MAX_BYTES",
            budget.bytes / MIB,
            budget.source,
            left / MIB,
            BASE_MEMORY / MIB,
            per_parse / MIB,
        );
    }
    if fit < requested {
        tracing::warn!(
            batch_parses = requested,
            sized_to = fit,
            budget_mib = budget.bytes / MIB,
            budget = budget.source,
            "CIDGATE_BATCH_PARSES parses would not fit in the memory budget with the number \
             index and the lookup cache: fewer are parsed at once"
        );
        return Ok(fit);
    }
    tracing::info!(
        batch_parses = requested,
        memory_mib = u64::from(requested) * per_parse / MIB,
        budget_mib = budget.bytes / MIB,
        budget = budget.source,
        "batch parses fit in the memory budget"
    );
    Ok(requested)
}

/// `parses_within` for `serve`'s settings.
pub fn parses_within_budget(settings: &crate::config::ServeSettings) -> anyhow::Result<usize> {
    let reserved = settings
        .known_numbers_max_bytes
        .saturating_add(settings.cache_max_bytes)
        .saturating_add(BASE_MEMORY);
    let budget = MemoryBudget::of(settings.memory_budget_mib);
    parses_within(settings.batch_parses, reserved, budget).map(usize::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget(mib: u64) -> Option<MemoryBudget> {
        MemoryBudget::of(Some(mib))
    }

    #[test]
    fn the_gate_keeps_its_size_within_the_budget_is_sized_down_past_it_and_refuses_below_one() {
        let reserved = 384 * MIB + BASE_MEMORY;
        // The shipped pod: 768 MiB, cache 256 MiB, index 128 MiB, two parses of 112 MiB.
        assert_eq!(per_parse() / MIB, 112);
        assert_eq!(parses_within(2, reserved, budget(768)).unwrap(), 2);
        assert_eq!(parses_within(8, reserved, budget(768)).unwrap(), 2);
        assert_eq!(parses_within(2, reserved, budget(600)).unwrap(), 1);
        let refused = parses_within(2, reserved, budget(500))
            .unwrap_err()
            .to_string();
        assert!(refused.contains("CIDGATE_MEMORY_BUDGET_MIB"), "{refused}");
        assert!(refused.contains("one batch parse"), "{refused}");
        assert_eq!(parses_within(8, reserved, None).unwrap(), 8);
    }
}
