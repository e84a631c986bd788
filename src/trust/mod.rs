//! Caller trust (issue 36): the tenants' spam lists held in memory, and reading
//! complaint files into them. Screening an unknown caller asks this set, never the
//! database, so a list of millions costs a lookup nothing but a hash probe.

pub mod import;

use tokio_postgres::GenericClient;

use crate::domain::{MAX_SPAM_LABEL, PhoneNumber, Region, TenantId};
use crate::lookup::known_numbers::{KnownNumbers, Membership};
use crate::store;

/// Every tenant's flagged numbers. The same sharded sets as the number index (growing
/// them never holds lookups), filled from `spam_numbers` and kept current by the
/// notification listener (`store::spam::CHANNEL`).
#[derive(Clone, Default)]
pub struct SpamList {
    numbers: KnownNumbers,
}

impl SpamList {
    /// Whether the caller's number is flagged. Before the first load nothing is: a
    /// lookup never waits for the list (the listener loads it before `/readyz` is ready).
    pub fn is_flagged(&self, tenant: TenantId, number: &PhoneNumber) -> bool {
        let flagged = |n: &PhoneNumber| self.numbers.membership(tenant, n) == Membership::Known;
        flagged(number) || number.alternate().is_some_and(|other| flagged(&other))
    }

    /// Loads every tenant's flagged numbers and swaps them in whole.
    pub async fn reload(&self, client: &impl GenericClient) -> anyhow::Result<u64> {
        let mut loading = self.numbers.loading();
        let count =
            store::spam::for_each_flagged(client, |tenant, number| loading.insert(tenant, number))
                .await?;
        self.numbers.install(loading).await;
        Ok(count)
    }

    /// A notification: the tenant's `numbers` changed (none: reload every list).
    pub async fn heard(
        &self,
        client: &impl GenericClient,
        tenant: TenantId,
        numbers: &[String],
    ) -> anyhow::Result<()> {
        if numbers.is_empty() {
            let count = self.reload(client).await?;
            tracing::info!(%tenant, flagged = count, "spam lists reloaded");
            return Ok(());
        }
        let flagged = store::spam::flagged_among(client, tenant, numbers).await?;
        self.numbers.reconcile(tenant, numbers, &flagged).await;
        Ok(())
    }

    /// Flagged numbers held, all tenants.
    pub fn len(&self) -> usize {
        self.numbers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A number to list, normalized as lookups normalize callers; the error says why not.
pub fn listed_number(raw: &str, region: Region) -> Result<PhoneNumber, String> {
    PhoneNumber::parse(raw, region).map_err(|e| format!("`{raw}` is not a phone number: {e}"))
}

/// A listed number's label: at most 200 characters, no control characters.
pub fn label(raw: Option<&str>) -> Result<Option<&str>, String> {
    match raw.map(str::trim).filter(|l| !l.is_empty()) {
        Some(l) if l.chars().count() > MAX_SPAM_LABEL => {
            Err(format!("label is longer than {MAX_SPAM_LABEL} characters"))
        }
        Some(l) if l.chars().any(char::is_control) => {
            Err("label must not contain control characters".into())
        }
        other => Ok(other),
    }
}
