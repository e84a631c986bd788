//! An exact in-memory set of every number in the mirror, per tenant. Most callers are
//! unknown; with this set an unknown number is answered without a database query, and
//! with certainty while the database is down.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use deadpool_postgres::Pool;
use rustc_hash::FxHashSet;

use crate::domain::{NumberKey, PhoneNumber, TenantId};
use crate::store;

/// What the index says about a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Membership {
    /// Some contact has it: ask the cache or the database.
    Known,
    /// No contact has it.
    Unknown,
    /// The index is not loaded, or the number has no compact key: ask the database.
    Unsure,
}

type Sets = HashMap<TenantId, FxHashSet<u64>>;

#[derive(Clone, Default)]
pub struct KnownNumbers {
    sets: Arc<RwLock<Sets>>,
    /// Held by whoever changes a set, so a set can be grown on a copy while lookups go
    /// on reading the original, without losing another change meanwhile.
    changing: Arc<tokio::sync::Mutex<()>>,
    loaded: Arc<AtomicBool>,
}

impl KnownNumbers {
    pub fn membership(&self, tenant: TenantId, number: &PhoneNumber) -> Membership {
        if !self.loaded.load(Ordering::Acquire) {
            return Membership::Unsure;
        }
        let Some(key) = number.key() else {
            return Membership::Unsure;
        };
        match self.read().get(&tenant) {
            Some(set) if set.contains(&key.raw()) => Membership::Known,
            _ => Membership::Unknown,
        }
    }

    /// Adds numbers after a local write: a number present too early only costs a
    /// database query, one missing would answer a known caller as unknown.
    pub async fn add(&self, tenant: TenantId, numbers: &[String]) {
        let keys: Vec<u64> = numbers
            .iter()
            .filter_map(|n| NumberKey::encode(n))
            .map(NumberKey::raw)
            .collect();
        self.change(tenant, keys.len(), move |set| set.extend(keys))
            .await;
    }

    /// Sets the membership of `numbers` to what the database says now (`present`).
    /// Only the notification listener calls this, one change after another, so the last
    /// check always wins.
    pub async fn reconcile(&self, tenant: TenantId, numbers: &[String], present: &[String]) {
        let present: HashSet<&str> = present.iter().map(String::as_str).collect();
        let changes: Vec<(u64, bool)> = numbers
            .iter()
            .filter_map(|n| NumberKey::encode(n).map(|k| (k.raw(), present.contains(n.as_str()))))
            .collect();
        self.change(tenant, changes.len(), move |set| {
            for (key, present) in changes {
                if present {
                    set.insert(key);
                } else {
                    set.remove(&key);
                }
            }
        })
        .await;
    }

    /// Applies `change` (which inserts at most `inserts` keys) to the tenant's set.
    /// Growing a set rehashes all of it (measured: 40 ms at 1.8M numbers, 380 ms at
    /// 15M), far too long to hold lookups, which wait for the lock without a deadline;
    /// so a set without room is copied, grown and changed on a blocking thread, and only
    /// swapped in under the lock.
    async fn change(
        &self,
        tenant: TenantId,
        inserts: usize,
        change: impl FnOnce(&mut FxHashSet<u64>) + Send + 'static,
    ) {
        if inserts == 0 {
            return;
        }
        let changing = self.changing.clone().lock_owned().await;
        let has_room = self
            .read()
            .get(&tenant)
            .is_some_and(|set| set.capacity() - set.len() >= inserts);
        if has_room {
            change(self.write().entry(tenant).or_default());
            return;
        }
        let index = self.clone();
        let grown = tokio::task::spawn_blocking(move || {
            let _changing = changing;
            let mut copy = index.read().get(&tenant).cloned().unwrap_or_default();
            copy.reserve(inserts);
            change(&mut copy);
            // The old set is freed here, after the lock is released.
            let _old = index.write().insert(tenant, copy);
        })
        .await;
        if let Err(e) = grown {
            // Without the change the index could call a known number unknown: stop
            // trusting it until the next reload.
            self.loaded.store(false, Ordering::Release);
            tracing::error!(error = %e, "could not grow the number index; asking the database");
        }
    }

    fn read(&self) -> RwLockReadGuard<'_, Sets> {
        self.sets.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Sets> {
        self.sets.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Loads every number from the primary and swaps the new sets in whole.
    pub async fn reload(&self, pool: &Pool) -> anyhow::Result<u64> {
        let client = pool.get().await?;
        let mut sets: HashMap<TenantId, FxHashSet<u64>> = HashMap::new();
        let count = store::contacts::for_each_number(&client, |tenant, number| {
            if let Some(key) = NumberKey::encode(number) {
                sets.entry(tenant).or_default().insert(key.raw());
            }
        })
        .await?;
        for set in sets.values_mut() {
            set.shrink_to_fit();
        }
        let _changing = self.changing.lock().await;
        // The old sets are freed after the lock is released.
        let _old = std::mem::replace(&mut *self.write(), sets);
        self.loaded.store(true, Ordering::Release);
        Ok(count)
    }

    /// How many numbers the index holds, for metrics.
    pub fn len(&self) -> usize {
        self.read().values().map(FxHashSet::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
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
}
