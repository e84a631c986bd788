//! A tenant's screen-pop signing key.

use super::tenant::TenantId;

/// A tenant's signing key.
#[derive(Clone)]
pub struct PopupKey {
    pub tenant: TenantId,
    pub key_id: i32,
    pub secret: [u8; 32],
}

impl std::fmt::Debug for PopupKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PopupKey({}, {}, <secret>)", self.tenant, self.key_id)
    }
}
