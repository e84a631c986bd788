//! An exact in-memory set of every number in the mirror, per tenant. Most callers are
//! unknown; with this set an unknown number is answered without a database query, and
//! with certainty while the database is down.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

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

#[derive(Clone, Default)]
pub struct KnownNumbers {
    sets: Arc<RwLock<HashMap<TenantId, FxHashSet<u64>>>>,
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
        let sets = self.sets.read().unwrap_or_else(|p| p.into_inner());
        match sets.get(&tenant) {
            Some(set) if set.contains(&key.raw()) => Membership::Known,
            _ => Membership::Unknown,
        }
    }

    /// Adds numbers at once after a local write: a number present too early only costs
    /// a database query, one missing would answer a known caller as unknown.
    pub fn add(&self, tenant: TenantId, numbers: &[String]) {
        let mut sets = self.sets.write().unwrap_or_else(|p| p.into_inner());
        let set = sets.entry(tenant).or_default();
        set.extend(
            numbers
                .iter()
                .filter_map(|n| NumberKey::encode(n))
                .map(NumberKey::raw),
        );
    }

    /// Sets the membership of `numbers` to what the database says now (`present`).
    /// Only the notification listener calls this, one change after another, so the last
    /// check always wins.
    pub fn reconcile(&self, tenant: TenantId, numbers: &[String], present: &[String]) {
        let mut sets = self.sets.write().unwrap_or_else(|p| p.into_inner());
        let set = sets.entry(tenant).or_default();
        for number in numbers {
            if let Some(key) = NumberKey::encode(number) {
                if present.contains(number) {
                    set.insert(key.raw());
                } else {
                    set.remove(&key.raw());
                }
            }
        }
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
        *self.sets.write().unwrap_or_else(|p| p.into_inner()) = sets;
        self.loaded.store(true, Ordering::Release);
        Ok(count)
    }

    /// How many numbers the index holds, for metrics.
    pub fn len(&self) -> usize {
        let sets = self.sets.read().unwrap_or_else(|p| p.into_inner());
        sets.values().map(FxHashSet::len).sum()
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

    #[test]
    fn an_unloaded_index_is_unsure_and_a_loaded_one_is_exact() {
        let index = KnownNumbers::default();
        let t = TenantId(1);
        assert_eq!(
            index.membership(t, &number("0721234567")),
            Membership::Unsure
        );

        index.loaded.store(true, Ordering::Release);
        index.add(t, &["+40721234567".into()]);
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

        index.reconcile(
            t,
            &["+40721234567".into(), "+40721234568".into()],
            &["+40721234568".into()],
        );
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
}
