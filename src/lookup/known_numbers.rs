//! An exact in-memory set of every number in the mirror, per tenant. Most callers are
//! unknown; with this set an unknown number is answered without a database query, and
//! with certainty while the database is down.
//!
//! Its memory is bounded (`CIDGATE_KNOWN_NUMBERS_MAX_BYTES`): past the budget the
//! largest tenants' sets are dropped, and those tenants' lookups ask the database, as
//! before the index is loaded, until the next full load (when the listener reconnects).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use prometheus_client::metrics::gauge::Gauge;
use rustc_hash::FxHashSet;
use tokio_postgres::GenericClient;

use crate::domain::{NumberKey, PhoneNumber, TenantId};
use crate::store;

/// What the index says about a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Membership {
    /// Some contact has it: ask the cache or the database.
    Known,
    /// No contact has it.
    Unknown,
    /// The index is not loaded, does not hold the tenant's numbers, or the number has no
    /// compact key: ask the database.
    Unsure,
}

/// Shards per tenant: growing a set copies one shard at a time, a 64th of the set,
/// never the whole of it.
const SHARDS: usize = 64;

fn shard_of(key: u64) -> usize {
    // The top bits of a multiplicative hash: keys are digits, not evenly spread bits.
    (key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - SHARDS.trailing_zeros())) as usize
}

/// Estimated bytes of one shard: hashbrown keeps a bucket per 7/8 of its capacity, each
/// a key and a control byte.
fn shard_bytes(shard: &FxHashSet<u64>) -> usize {
    shard.capacity() * 8 / 7 * (std::mem::size_of::<u64>() + 1)
}

/// One tenant's numbers.
#[derive(Clone)]
struct NumberSet {
    shards: Vec<FxHashSet<u64>>,
}

impl Default for NumberSet {
    fn default() -> Self {
        Self {
            shards: vec![FxHashSet::default(); SHARDS],
        }
    }
}

impl NumberSet {
    fn contains(&self, key: u64) -> bool {
        self.shards[shard_of(key)].contains(&key)
    }

    fn len(&self) -> usize {
        self.shards.iter().map(FxHashSet::len).sum()
    }

    fn bytes(&self) -> usize {
        self.shards.iter().map(shard_bytes).sum()
    }
}

/// The sets, the tenants dropped from them, and what they hold in all.
#[derive(Default)]
struct Sets {
    sets: HashMap<TenantId, NumberSet>,
    /// Tenants whose numbers the index does not hold, to stay within its budget.
    dropped: HashSet<TenantId>,
    bytes: usize,
}

impl Sets {
    /// Drops the largest tenants' sets until the index is within `budget`; answers
    /// which ones it dropped.
    fn fit(&mut self, budget: usize) -> Vec<(TenantId, usize)> {
        let mut dropped = Vec::new();
        while self.bytes > budget {
            let largest = self
                .sets
                .iter()
                .map(|(tenant, set)| (*tenant, set.bytes()))
                .max_by_key(|(_, bytes)| *bytes);
            let Some((tenant, bytes)) = largest else {
                break;
            };
            let numbers = self.sets.remove(&tenant).map_or(0, |set| set.len());
            self.bytes -= bytes;
            self.dropped.insert(tenant);
            dropped.push((tenant, numbers));
        }
        dropped
    }

    /// Inserts while loading, keeping count of the bytes.
    fn load(&mut self, tenant: TenantId, key: u64, budget: usize) -> Vec<(TenantId, usize)> {
        if self.dropped.contains(&tenant) {
            return Vec::new();
        }
        let shard = &mut self.sets.entry(tenant).or_default().shards[shard_of(key)];
        let before = shard_bytes(shard);
        shard.insert(key);
        self.bytes = self.bytes - before + shard_bytes(shard);
        self.fit(budget)
    }
}

/// The index's metrics, kept current as it changes.
#[derive(Clone, Default)]
pub struct IndexGauges {
    pub bytes: Gauge,
    pub dropped_tenants: Gauge,
}

#[derive(Clone)]
pub struct KnownNumbers {
    sets: Arc<RwLock<Sets>>,
    /// Held by whoever changes a set, so a shard can be grown on a copy while lookups go
    /// on reading the original, without losing another change meanwhile.
    changing: Arc<tokio::sync::Mutex<()>>,
    loaded: Arc<AtomicBool>,
    budget: usize,
    gauges: IndexGauges,
}

impl Default for KnownNumbers {
    fn default() -> Self {
        Self::new(usize::MAX, IndexGauges::default())
    }
}

/// A change to one number: inserted (`true`) or removed.
type Change = (u64, bool);

impl KnownNumbers {
    /// An index that holds at most `budget` bytes (estimated).
    pub fn new(budget: usize, gauges: IndexGauges) -> Self {
        Self {
            sets: Arc::default(),
            changing: Arc::default(),
            loaded: Arc::default(),
            budget,
            gauges,
        }
    }

    pub fn membership(&self, tenant: TenantId, number: &PhoneNumber) -> Membership {
        if !self.loaded.load(Ordering::Acquire) {
            return Membership::Unsure;
        }
        let Some(key) = number.key() else {
            return Membership::Unsure;
        };
        let sets = self.read();
        match sets.sets.get(&tenant) {
            Some(set) if set.contains(key.raw()) => Membership::Known,
            _ if sets.dropped.contains(&tenant) => Membership::Unsure,
            _ => Membership::Unknown,
        }
    }

    /// Adds numbers after a local write: a number present too early only costs a
    /// database query, one missing would answer a known caller as unknown.
    pub async fn add(&self, tenant: TenantId, numbers: &[String]) {
        let changes: Vec<Change> = numbers
            .iter()
            .filter_map(|n| NumberKey::encode(n))
            .map(|k| (k.raw(), true))
            .collect();
        self.change(tenant, changes).await;
    }

    /// Sets the membership of `numbers` to what the database says now (`present`).
    /// Only the notification listener calls this, one change after another, so the last
    /// check always wins.
    pub async fn reconcile(&self, tenant: TenantId, numbers: &[String], present: &[String]) {
        let present: HashSet<&str> = present.iter().map(String::as_str).collect();
        let changes: Vec<Change> = numbers
            .iter()
            .filter_map(|n| NumberKey::encode(n).map(|k| (k.raw(), present.contains(n.as_str()))))
            .collect();
        self.change(tenant, changes).await;
    }

    /// Applies `changes` to the tenant's set. Growing a shard rehashes all of it, too
    /// long to hold lookups (which wait for the lock without a deadline) once a set
    /// holds millions; so a shard without room is copied, grown and changed on a
    /// blocking thread, and only swapped in under the lock. One shard at a time: the
    /// copy costs a 64th of the set, not the set again.
    async fn change(&self, tenant: TenantId, changes: Vec<Change>) {
        if changes.is_empty() {
            return;
        }
        let changing = self.changing.clone().lock_owned().await;
        let mut by_shard: Vec<Vec<Change>> = vec![Vec::new(); SHARDS];
        for change in changes {
            by_shard[shard_of(change.0)].push(change);
        }
        let must_grow: Vec<bool> = {
            let sets = self.read();
            if sets.dropped.contains(&tenant) {
                return;
            }
            let set = sets.sets.get(&tenant);
            by_shard
                .iter()
                .enumerate()
                .map(|(i, changes)| {
                    let inserts = changes.iter().filter(|(_, insert)| *insert).count();
                    let room = set.map_or(0, |set| {
                        let shard = &set.shards[i];
                        shard.capacity() - shard.len()
                    });
                    inserts > room
                })
                .collect()
        };
        if !must_grow.contains(&true) {
            let mut sets = self.write();
            let set = sets.sets.entry(tenant).or_default();
            for (i, changes) in by_shard.into_iter().enumerate() {
                apply(&mut set.shards[i], changes);
            }
            return;
        }
        let index = self.clone();
        let grown = tokio::task::spawn_blocking(move || {
            let _changing = changing;
            for (i, changes) in by_shard.into_iter().enumerate() {
                if changes.is_empty() {
                    continue;
                }
                if !must_grow[i] {
                    // Absent: only removals, or the tenant was dropped meanwhile.
                    if let Some(set) = index.write().sets.get_mut(&tenant) {
                        apply(&mut set.shards[i], changes);
                    }
                    continue;
                }
                let Some(mut copy) = index.copy_of(tenant, i) else {
                    return;
                };
                copy.reserve(changes.len());
                apply(&mut copy, changes);
                // The old shard is freed here, after the lock is released.
                let _old = index.swap_in(tenant, i, copy);
            }
        })
        .await;
        if let Err(e) = grown {
            // Without the change the index could call a known number unknown: stop
            // trusting it until the next reload.
            self.loaded.store(false, Ordering::Release);
            tracing::error!(error = %e, "could not grow the number index; asking the database");
        }
    }

    /// A copy of one of the tenant's shards; `None` once the tenant is dropped.
    fn copy_of(&self, tenant: TenantId, shard: usize) -> Option<FxHashSet<u64>> {
        let sets = self.read();
        if sets.dropped.contains(&tenant) {
            return None;
        }
        Some(
            sets.sets
                .get(&tenant)
                .map(|set| set.shards[shard].clone())
                .unwrap_or_default(),
        )
    }

    /// Puts a grown shard in place of the old one (answered, to be freed by the
    /// caller), then keeps the index within its budget.
    fn swap_in(&self, tenant: TenantId, shard: usize, grown: FxHashSet<u64>) -> FxHashSet<u64> {
        let mut sets = self.write();
        let added = shard_bytes(&grown);
        let old = std::mem::replace(
            &mut sets.sets.entry(tenant).or_default().shards[shard],
            grown,
        );
        sets.bytes = sets.bytes + added - shard_bytes(&old);
        let dropped = sets.fit(self.budget);
        self.publish(&sets, &dropped);
        old
    }

    /// Updates the metrics, and says which tenants were dropped and why.
    fn publish(&self, sets: &Sets, dropped: &[(TenantId, usize)]) {
        let gauge = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        self.gauges.bytes.set(gauge(sets.bytes));
        self.gauges.dropped_tenants.set(gauge(sets.dropped.len()));
        for (tenant, numbers) in dropped {
            tracing::warn!(
                tenant = tenant.0,
                numbers,
                budget_bytes = self.budget,
                "the number index is over its budget (CIDGATE_KNOWN_NUMBERS_MAX_BYTES): dropped this tenant's numbers; its lookups ask the database until the next full load"
            );
        }
    }

    fn read(&self) -> RwLockReadGuard<'_, Sets> {
        self.sets.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Sets> {
        self.sets.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Loads every number from the primary and swaps the new sets in whole, within the
    /// budget. The old sets serve lookups until then, so a reload briefly holds both.
    pub async fn reload(&self, client: &impl GenericClient) -> anyhow::Result<u64> {
        let mut loading = self.loading();
        let count = store::contacts::for_each_number(client, |tenant, number| {
            loading.insert(tenant, number)
        })
        .await?;
        self.install(loading).await;
        Ok(count)
    }

    /// A full load from any source (the spam lists load the same way): fill it, then
    /// `install` it.
    pub fn loading(&self) -> Loading {
        Loading {
            fresh: Sets::default(),
            dropped: Vec::new(),
            budget: self.budget,
        }
    }

    /// Swaps a full load in for the current sets, whole.
    pub async fn install(&self, loading: Loading) {
        let Loading {
            mut fresh, dropped, ..
        } = loading;
        for set in fresh.sets.values_mut() {
            for shard in &mut set.shards {
                shard.shrink_to_fit();
            }
        }
        fresh.bytes = fresh.sets.values().map(NumberSet::bytes).sum();
        let _changing = self.changing.lock().await;
        let mut sets = self.write();
        self.publish(&fresh, &dropped);
        // The old sets are freed after the lock is released.
        let _old = std::mem::replace(&mut *sets, fresh);
        drop(sets);
        self.loaded.store(true, Ordering::Release);
    }

    /// How many numbers the index holds, for metrics.
    pub fn len(&self) -> usize {
        self.read().sets.values().map(NumberSet::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Fresh sets being filled by a full load, within the index's budget.
pub struct Loading {
    fresh: Sets,
    dropped: Vec<(TenantId, usize)>,
    budget: usize,
}

impl Loading {
    /// Adds a stored number (numbers without a compact key are left out).
    pub fn insert(&mut self, tenant: TenantId, number: &str) {
        if let Some(key) = NumberKey::encode(number) {
            let mut dropped = self.fresh.load(tenant, key.raw(), self.budget);
            self.dropped.append(&mut dropped);
        }
    }
}

fn apply(shard: &mut FxHashSet<u64>, changes: Vec<Change>) {
    for (key, insert) in changes {
        if insert {
            shard.insert(key);
        } else {
            shard.remove(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Region;

    fn number(raw: &str) -> PhoneNumber {
        PhoneNumber::parse(raw, Region::parse("RO").unwrap()).unwrap()
    }

    #[tokio::test]
    async fn an_unloaded_index_is_unsure_and_a_loaded_one_is_exact() {
        let index = KnownNumbers::default();
        let t = TenantId(1);
        assert_eq!(
            index.membership(t, &number("0721234567")),
            Membership::Unsure
        );

        index.loaded.store(true, Ordering::Release);
        index.add(t, &["+40721234567".into()]).await;
        assert_eq!(
            index.membership(t, &number("0721234567")),
            Membership::Known
        );
        assert_eq!(
            index.membership(t, &number("0721234568")),
            Membership::Unknown
        );
        assert_eq!(
            index.membership(TenantId(2), &number("0721234567")),
            Membership::Unknown
        );

        index
            .reconcile(
                t,
                &["+40721234567".into(), "+40721234568".into()],
                &["+40721234568".into()],
            )
            .await;
        assert_eq!(
            index.membership(t, &number("0721234567")),
            Membership::Unknown
        );
        assert_eq!(
            index.membership(t, &number("0721234568")),
            Membership::Known
        );
        assert_eq!(index.len(), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sets_grown_on_a_copy_keep_every_number_and_every_concurrent_change() {
        const N: u32 = 100_000;
        let index = KnownNumbers::default();
        index.loaded.store(true, Ordering::Release);
        let t = TenantId(1);
        let numbers = |from: u32, n: u32| -> Vec<String> {
            (from..from + n).map(|i| format!("+4072{i:07}")).collect()
        };
        index.add(t, &numbers(0, N)).await;
        index.add(TenantId(2), &numbers(0, 10)).await;
        // Batches that outgrow the set, racing with each other and with a removal.
        let adds: Vec<_> = (1..=8)
            .map(|b| {
                let index = index.clone();
                tokio::spawn(async move { index.add(t, &numbers(b * N, N)).await })
            })
            .collect();
        let removal = {
            let index = index.clone();
            tokio::spawn(async move { index.reconcile(t, &numbers(0, N / 2), &[]).await })
        };
        for task in adds.into_iter().chain([removal]) {
            task.await.unwrap();
        }
        assert_eq!(index.len() as u32, 8 * N + N / 2 + 10);
        assert_eq!(
            index.membership(t, &number("0720000499")),
            Membership::Unknown
        );
        for known in ["0720050000", "0720100000", "0720899999"] {
            assert_eq!(
                index.membership(t, &number(known)),
                Membership::Known,
                "{known}"
            );
        }
        assert_eq!(
            index.membership(t, &number("0720900000")),
            Membership::Unknown
        );
        assert_eq!(
            index.membership(TenantId(2), &number("0720000009")),
            Membership::Known
        );
    }

    #[tokio::test]
    async fn growing_a_set_copies_one_shard_never_the_whole_set() {
        let index = KnownNumbers::default();
        index.loaded.store(true, Ordering::Release);
        let t = TenantId(1);
        let numbers: Vec<String> = (0..100_000).map(|i| format!("+4072{i:07}")).collect();
        index.add(t, &numbers).await;
        let sets = index.read();
        let set = &sets.sets[&t];
        // What a grown shard's copy costs, at most: the largest shard, twice.
        let largest = set.shards.iter().map(shard_bytes).max().unwrap();
        assert!(largest * 32 < set.bytes(), "{largest} of {}", set.bytes());
        assert_eq!(sets.bytes, set.bytes());
    }

    #[tokio::test]
    async fn over_its_budget_the_index_drops_the_largest_tenant_and_is_unsure_of_it() {
        let gauges = IndexGauges::default();
        let index = KnownNumbers::new(8 * 1024, gauges.clone());
        index.loaded.store(true, Ordering::Release);
        let (small, large) = (TenantId(1), TenantId(2));
        index.add(small, &["+40721234567".into()]).await;
        let many: Vec<String> = (0..2_000).map(|i| format!("+4073{i:07}")).collect();
        index.add(large, &many).await;

        assert_eq!(gauges.dropped_tenants.get(), 1);
        assert!(gauges.bytes.get() <= 8 * 1024);
        for (tenant, raw, says) in [
            (large, "0730000001", Membership::Unsure),
            (large, "0739999999", Membership::Unsure),
            (small, "0721234567", Membership::Known),
            (small, "0721234568", Membership::Unknown),
        ] {
            assert_eq!(index.membership(tenant, &number(raw)), says, "{raw}");
        }
        // Later writes of a dropped tenant are not indexed either.
        index.add(large, &["+40731111111".into()]).await;
        assert_eq!(index.len(), 1);
    }
}
