//! The lookup cache: found and unknown answers per (tenant, number), read through by the
//! lookup service. An entry is *fresh* for its TTL; after that (or after a flush) it is
//! only kept as the last known answer for when the database cannot be asked: a found
//! answer for `keep_stale` more, an unknown one not at all.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use moka::future::Cache;
use moka::ops::compute::Op;

use crate::config::CacheSettings;
use crate::domain::{LookupHit, NumberKey, TenantId, alternate_form};

pub type CacheKey = (TenantId, NumberKey);

/// Bytes moka spends per entry beyond key and value (entry info, key copies, deque node,
/// hash-table slot, allocator rounding). Measured: resident memory grows ~360 bytes per
/// cached answer (mimalloc, no per-entry expiry), ~100 of them key, value and text.
const ENTRY_OVERHEAD: usize = 260;
/// Numbers invalidated between two chances for other tasks on the thread (lookups) to run.
const INVALIDATE_SLICE: usize = 256;

#[derive(Debug, Clone)]
pub struct Cached {
    /// `None`: the number belongs to no contact.
    pub hit: Option<LookupHit>,
    /// Milliseconds since the cache was built, when the answer was loaded.
    loaded_ms: u64,
    /// False when a write raced with the load: the answer is only a fallback.
    trusted: bool,
    /// The flush generation the entry was loaded in; older generations are stale.
    generation: u32,
}

#[derive(Clone)]
pub struct AnswerCache {
    entries: Cache<CacheKey, Cached>,
    settings: CacheSettings,
    epoch: Instant,
    generation: Arc<AtomicU32>,
    /// Bumped by every invalidation, so a load that raced with one is not trusted.
    invalidations: Arc<AtomicU64>,
    /// True while the notification listener is connected. Without it this instance does
    /// not hear of writes made elsewhere, so no answer counts as fresh: each lookup asks
    /// the database, and the cache only stands in when the database cannot answer.
    watched: Arc<AtomicBool>,
}

impl CacheSettings {
    fn fresh_for(&self, hit: &Option<LookupHit>) -> Duration {
        match hit {
            Some(_) => self.found_ttl,
            None => self.unknown_ttl,
        }
    }

    /// How long an answer may stand in as the last known one.
    fn kept_for(&self, hit: &Option<LookupHit>) -> Duration {
        match hit {
            Some(_) => self.found_ttl.saturating_add(self.keep_stale),
            None => self.unknown_ttl,
        }
    }

    /// The longest any entry is of use, within what moka accepts (under 1000 years).
    fn longest_life(&self) -> Duration {
        const CENTURY: Duration = Duration::from_secs(100 * 365 * 24 * 3600);
        (self.found_ttl.saturating_add(self.keep_stale))
            .max(self.unknown_ttl)
            .min(CENTURY)
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
            // Lifetimes are checked when an entry is read; moka only drops entries nobody
            // asked for in the longest of them. Per-entry expiry would cost ~60 bytes per
            // entry (measured: 450 -> 385 bytes of resident memory).
            .time_to_idle(settings.longest_life())
            .build();
        Self {
            entries,
            settings,
            epoch: Instant::now(),
            generation: Arc::new(AtomicU32::new(0)),
            invalidations: Arc::new(AtomicU64::new(0)),
            watched: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Whether notifications reach this instance now (the listener's state).
    pub fn set_watched(&self, watched: bool) {
        self.watched.store(watched, Ordering::Release);
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn age(&self, cached: &Cached) -> Duration {
        Duration::from_millis(self.now_ms().saturating_sub(cached.loaded_ms))
    }

    fn is_fresh(&self, cached: &Cached) -> bool {
        self.watched.load(Ordering::Acquire)
            && cached.trusted
            && cached.generation == self.generation.load(Ordering::Acquire)
            && self.age(cached) < self.settings.fresh_for(&cached.hit)
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
        self.entries
            .get(key)
            .await
            .filter(|c| self.age(c) < self.settings.kept_for(&c.hit))
            .map(|c| c.hit)
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
                let loaded_ms = self.now_ms();
                let hit = load().await?;
                // A write that landed while we read may have been missed: keep the answer
                // as a fallback, but not as fresh.
                let trusted = self.invalidations.load(Ordering::Acquire) == invalidations;
                Ok(Op::Put(Cached {
                    hit,
                    loaded_ms,
                    trusted,
                    generation,
                }))
            })
            .await?;
        Ok(result.into_entry().and_then(|e| e.into_value().hit))
    }

    /// Drops the answers for these numbers of a tenant (after a write changed them).
    pub async fn invalidate<'a>(
        &self,
        tenant: TenantId,
        numbers: impl IntoIterator<Item = &'a String>,
    ) {
        self.invalidations.fetch_add(1, Ordering::AcqRel);
        for (done, number) in numbers.into_iter().enumerate() {
            // A batch changes thousands of numbers: let the lookups waiting on this
            // thread in between (a yield per slice costs nothing next to a slice).
            if done % INVALIDATE_SLICE == INVALIDATE_SLICE - 1 {
                tokio::task::yield_now().await;
            }
            // A caller who wrote the other form of the number may hold its answer.
            let alternate = alternate_form(number);
            for form in std::iter::once(number.as_str()).chain(alternate.as_deref()) {
                if let Some(key) = NumberKey::encode(form) {
                    self.entries.invalidate(&(tenant, key)).await;
                }
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

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: Duration = Duration::from_secs(3600);

    /// A cache whose listener is connected.
    fn cache(found_ttl: Duration, unknown_ttl: Duration, keep_stale: Duration) -> AnswerCache {
        let cache = AnswerCache::new(CacheSettings {
            max_bytes: 1 << 20,
            found_ttl,
            unknown_ttl,
            keep_stale,
        });
        cache.set_watched(true);
        cache
    }

    #[tokio::test]
    async fn nothing_is_fresh_while_no_listener_reports_writes() {
        let cache = cache(HOUR, HOUR, HOUR);
        cache
            .get_or_load(key(), || async { Ok(None) })
            .await
            .unwrap();
        assert_eq!(cache.fresh(&key()).await, Some(None));
        cache.set_watched(false);
        assert_eq!(cache.fresh(&key()).await, None);
        assert_eq!(
            cache.last_known(&key()).await,
            Some(None),
            "still a fallback"
        );
    }

    fn key() -> CacheKey {
        (TenantId(1), NumberKey::encode("+40721234567").unwrap())
    }

    fn ana() -> Option<LookupHit> {
        Some(LookupHit::new("7", "Ana", |_| None))
    }

    async fn load(cache: &AnswerCache, answer: Option<LookupHit>) {
        cache
            .get_or_load(key(), || async { Ok(answer) })
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn a_found_answer_is_fresh_for_its_ttl_then_kept_as_last_known() {
        let fresh = cache(HOUR, HOUR, Duration::ZERO);
        load(&fresh, ana()).await;
        assert_eq!(fresh.fresh(&key()).await, Some(ana()));

        let stale = cache(Duration::ZERO, HOUR, HOUR);
        load(&stale, ana()).await;
        assert_eq!(stale.fresh(&key()).await, None);
        assert_eq!(stale.last_known(&key()).await, Some(ana()));

        let gone = cache(Duration::ZERO, HOUR, Duration::ZERO);
        load(&gone, ana()).await;
        assert_eq!(gone.last_known(&key()).await, None);
    }

    #[tokio::test]
    async fn an_unknown_answer_lives_for_the_unknown_ttl_only() {
        let fresh = cache(Duration::ZERO, HOUR, Duration::ZERO);
        load(&fresh, None).await;
        assert_eq!(fresh.fresh(&key()).await, Some(None));

        let expired = cache(HOUR, Duration::ZERO, HOUR);
        load(&expired, None).await;
        assert_eq!(expired.fresh(&key()).await, None);
        assert_eq!(expired.last_known(&key()).await, None);
    }

    #[tokio::test]
    async fn absurdly_long_lifetimes_are_accepted() {
        let forever = Duration::from_secs(u64::MAX);
        let cache = cache(forever, forever, forever);
        load(&cache, ana()).await;
        assert_eq!(cache.fresh(&key()).await, Some(ana()));
    }

    #[tokio::test]
    async fn a_flush_or_a_racing_write_leaves_only_a_fallback() {
        let flushed = cache(HOUR, HOUR, HOUR);
        load(&flushed, ana()).await;
        flushed.flush();
        assert_eq!(flushed.fresh(&key()).await, None);
        assert_eq!(flushed.last_known(&key()).await, Some(ana()));

        let raced = cache(HOUR, HOUR, HOUR);
        raced
            .get_or_load(key(), || async {
                raced
                    .invalidate(TenantId(1), &["+40799999999".into()])
                    .await;
                Ok(ana())
            })
            .await
            .unwrap();
        assert_eq!(raced.fresh(&key()).await, None);
        assert_eq!(raced.last_known(&key()).await, Some(ana()));
    }
}
