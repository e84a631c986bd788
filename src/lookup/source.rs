//! Where the lookup finds a tenant's contact by number (issue 26 item 6): the mirror
//! today; next, a tenant's CRM sources behind it (issue 34).

use futures_util::FutureExt;
use futures_util::future::BoxFuture;

use super::batcher::LookupBatcher;
use crate::domain::{LookupHit, PhoneNumber, TenantId};

/// Finds a tenant's contact by number.
pub trait Source: Send + Sync + 'static {
    /// The contact of `tenant` that has `number` now, if this source knows one.
    fn find<'a>(
        &'a self,
        tenant: TenantId,
        number: &'a PhoneNumber,
    ) -> BoxFuture<'a, anyhow::Result<Option<LookupHit>>>;

    /// Whether a number the number index lacks is unknown to this source for `tenant`,
    /// so the lookup may answer "unknown" without asking it. Called on the path of every
    /// such answer: it must not wait, nor allocate.
    fn index_decides(&self, tenant: TenantId) -> bool;
}

/// The mirror (PostgreSQL, asked in gathered statements): the number index holds every
/// number it has, so it decides for every tenant.
impl Source for LookupBatcher {
    fn find<'a>(
        &'a self,
        tenant: TenantId,
        number: &'a PhoneNumber,
    ) -> BoxFuture<'a, anyhow::Result<Option<LookupHit>>> {
        LookupBatcher::find(self, tenant, number).boxed()
    }

    fn index_decides(&self, _tenant: TenantId) -> bool {
        true
    }
}
