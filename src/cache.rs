//! The lookup cache: found and unknown answers per (tenant, number), read through by the
//! lookup service. An entry is *fresh* for its TTL; after that (or after a flush) it is
//! only kept as the last known answer for when the database cannot be asked.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use moka::Expiry;
use moka::future::Cache;
use moka::ops::compute::Op;

use crate::domain::{LookupHit, NumberKey, TenantId};

pub type CacheKey = (TenantId, NumberKey);

/// Bytes moka spends per entry beyond key and value (entry info, deque and timer nodes,
/// hash-table slot, allocator rounding). Measured by the benchmark: resident memory grew
/// ~500 bytes per cached answer, ~280 of them counted by this weigher before.
const ENTRY_OVERHEAD: usize = 380;

#[derive(Debug, Clone)]
pub struct Cached {
    /// `None`: the number belongs to no contact.
    pub hit: Option<LookupHit>,
    /// Milliseconds since the cache was built until which the entry is fresh.
    fresh_until_ms: u64,
    /// The flush generation the entry was loaded in; older generations are stale.
    generation: u32,
}

#[derive(Debug, Clone, Copy)]
pub struct CacheSettings {
    pub max_bytes: u64,
    pub found_ttl: Duration,
    pub unknown_ttl: Duration,
    /// How long a found answer is kept as the last known one after it stops being fresh.
    pub keep_stale: Duration,
}

#[derive(Clone)]
pub struct AnswerCache {
    entries: Cache<CacheKey, Cached>,
    settings: CacheSettings,
    epoch: Instant,
    generation: Arc<AtomicU32>,
    /// Bumped by every invalidation, so a load that raced with one is not trusted.
    invalidations: Arc<AtomicU64>,
}

/// Evicts found answers after `keep_stale`, unknown ones after their TTL.
struct Lifetimes(CacheSettings);

impl Expiry<CacheKey, Cached> for Lifetimes {
    fn expire_after_create(&self, _: &CacheKey, value: &Cached, _: Instant) -> Option<Duration> {
        Some(match value.hit {
            Some(_) => self.0.found_ttl + self.0.keep_stale,
            None => self.0.unknown_ttl,
        })
    }

    fn expire_after_update(
        &self,
        key: &CacheKey,
        value: &Cached,
        updated_at: Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        self.expire_after_create(key, value, updated_at)
    }
}

impl AnswerCache {
    pub fn new(settings: CacheSettings) -> Self {
        let entries = Cache::builder()
            .max_capacity(settings.max_bytes)
            .weigher(|_: &CacheKey, value: &Cached| {
                let size = ENTRY_OVERHEAD
                    + std::mem::size_of::<(CacheKey, Cached)>()
                    + value.hit.as_ref().map_or(0, |h| h.heap_bytes());
                u32::try_from(size).unwrap_or(u32::MAX)
            })
            .expire_after(Lifetimes(settings))
            .build();
        Self {
            entries,
            settings,
            epoch: Instant::now(),
            generation: Arc::new(AtomicU32::new(0)),
            invalidations: Arc::new(AtomicU64::new(0)),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn is_fresh(&self, cached: &Cached) -> bool {
        cached.generation == self.generation.load(Ordering::Acquire)
            && cached.fresh_until_ms > self.now_ms()
    }

    /// A fresh answer, if the cache has one.
    pub async fn fresh(&self, key: &CacheKey) -> Option<Option<LookupHit>> {
        self.entries
            .get(key)
            .await
            .filter(|c| self.is_fresh(c))
            .map(|c| c.hit)
    }

    /// The last known answer, fresh or not: the fallback when the database is slow or down.
    pub async fn last_known(&self, key: &CacheKey) -> Option<Option<LookupHit>> {
        self.entries.get(key).await.map(|c| c.hit)
    }

    /// Returns a fresh answer, loading it with `load` when there is none. Loads of one key
    /// run one at a time, and a caller that waited finds the answer its predecessor
    /// loaded, so concurrent misses on one key make one query.
    pub async fn get_or_load<F, Fut>(
        &self,
        key: CacheKey,
        load: F,
    ) -> anyhow::Result<Option<LookupHit>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = anyhow::Result<Option<LookupHit>>>,
    {
        let result = self
            .entries
            .entry(key)
            .and_try_compute_with(|existing| async move {
                if existing.is_some_and(|e| self.is_fresh(e.value())) {
                    return Ok::<_, anyhow::Error>(Op::Nop);
                }
                let invalidations = self.invalidations.load(Ordering::Acquire);
                let generation = self.generation.load(Ordering::Acquire);
                let hit = load().await?;
                let ttl = if hit.is_some() {
                    self.settings.found_ttl
                } else {
                    self.settings.unknown_ttl
                };
                // A write that landed while we read may have been missed: keep the answer
                // as a fallback, but not as fresh.
                let raced = self.invalidations.load(Ordering::Acquire) != invalidations;
                let fresh_until_ms = if raced {
                    0
                } else {
                    self.now_ms() + ttl.as_millis() as u64
                };
                Ok(Op::Put(Cached {
                    hit,
                    fresh_until_ms,
                    generation,
                }))
            })
            .await?;
        Ok(result.into_entry().and_then(|e| e.into_value().hit))
    }

    /// Drops the answers for these numbers of a tenant (after a write changed them).
    pub async fn invalidate(&self, tenant: TenantId, numbers: &[String]) {
        self.invalidations.fetch_add(1, Ordering::AcqRel);
        for number in numbers {
            if let Some(key) = NumberKey::encode(number) {
                self.entries.invalidate(&(tenant, key)).await;
            }
        }
    }

    /// Marks every entry stale (notifications may have been missed). Entries stay as
    /// last known answers for outages, but none is served again without a reload.
    pub fn flush(&self) {
        self.invalidations.fetch_add(1, Ordering::AcqRel);
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    pub fn entry_count(&self) -> u64 {
        self.entries.entry_count()
    }

    pub fn weighted_size(&self) -> u64 {
        self.entries.weighted_size()
    }

    /// Applies pending evictions now (for exact counts in metrics and tests).
    pub async fn run_pending_tasks(&self) {
        self.entries.run_pending_tasks().await;
    }
}
