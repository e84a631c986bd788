//! Authentication from memory: every live token, tenant and allowlist, reloaded when a
//! `cidgate_config` notification says they changed. A PBX lookup then needs no database
//! round trip to authenticate, and keeps working while the database is down.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use deadpool_postgres::Pool;
use ipnetwork::IpNetwork;

use crate::domain::{TenantId, TokenHash, TokenScope};
use crate::store::{self, tenants::Tenant};

/// A tenant with what its authentication needs.
#[derive(Debug)]
pub struct TenantEntry {
    pub tenant: Tenant,
    pub allowlist: Vec<IpNetwork>,
}

impl TenantEntry {
    /// True when `ip` may call this tenant's lookup (an empty allowlist allows any).
    pub fn allows(&self, ip: Option<IpAddr>) -> bool {
        self.allowlist.is_empty()
            || ip.is_some_and(|ip| self.allowlist.iter().any(|n| n.contains(ip)))
    }
}

struct TokenEntry {
    id: i64,
    scope: TokenScope,
    tenant: Arc<TenantEntry>,
    /// Set on use, cleared when `last_used_at` is written: one write per token per flush.
    used: AtomicBool,
}

#[derive(Default)]
struct Snapshot {
    tokens: HashMap<TokenHash, TokenEntry>,
}

/// What the directory knows about a presented token.
pub enum TokenCheck {
    Valid(Arc<TenantEntry>),
    /// Not a live token of this scope (as of the last load).
    Invalid,
    /// Not loaded yet: ask the database.
    Unknown,
}

#[derive(Clone, Default)]
pub struct Directory {
    snapshot: Arc<RwLock<Option<Arc<Snapshot>>>>,
}

impl Directory {
    pub fn check(&self, hash: &TokenHash, scope: TokenScope) -> TokenCheck {
        let Some(snapshot) = self.current() else {
            return TokenCheck::Unknown;
        };
        match snapshot.tokens.get(hash) {
            Some(entry) if entry.scope == scope => {
                entry.used.store(true, Ordering::Relaxed);
                TokenCheck::Valid(entry.tenant.clone())
            }
            Some(_) => TokenCheck::Invalid,
            // A token created a moment ago may not be loaded yet.
            None => TokenCheck::Unknown,
        }
    }

    fn current(&self) -> Option<Arc<Snapshot>> {
        self.snapshot
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    pub fn is_loaded(&self) -> bool {
        self.current().is_some()
    }

    /// Reloads everything from the primary; keeps the old snapshot when that fails.
    pub async fn reload(&self, pool: &Pool) -> anyhow::Result<()> {
        let mut client = pool.get().await?;
        let rows = store::directory::load(&mut client).await?;
        let mut allowlists: HashMap<TenantId, Vec<IpNetwork>> = HashMap::new();
        for (tenant, network) in rows.allowlist {
            allowlists.entry(tenant).or_default().push(network);
        }
        let tenants: HashMap<TenantId, Arc<TenantEntry>> = rows
            .tenants
            .into_iter()
            .map(|tenant| {
                let allowlist = allowlists.remove(&tenant.id).unwrap_or_default();
                (tenant.id, Arc::new(TenantEntry { tenant, allowlist }))
            })
            .collect();
        let tokens = rows
            .tokens
            .into_iter()
            .filter_map(|t| {
                let tenant = tenants.get(&t.tenant)?.clone();
                let entry = TokenEntry {
                    id: t.id,
                    scope: t.scope,
                    tenant,
                    used: AtomicBool::new(false),
                };
                Some((t.hash, entry))
            })
            .collect();
        let previous = self.swap(Arc::new(Snapshot { tokens }));
        // Uses recorded in the old snapshot are written now rather than lost.
        if let Some(previous) = previous {
            record_uses(pool, &previous).await;
        }
        Ok(())
    }

    fn swap(&self, next: Arc<Snapshot>) -> Option<Arc<Snapshot>> {
        self.snapshot
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .replace(next)
    }

    /// Authenticates against the database when the directory cannot say (a token
    /// created since the last reload, or the directory not loaded yet).
    pub async fn check_in_database(
        &self,
        pool: &Pool,
        hash: &TokenHash,
        scope: TokenScope,
    ) -> anyhow::Result<Option<Arc<TenantEntry>>> {
        let client = pool.get().await?;
        let Some(tenant) = store::tokens::authenticate(&client, hash, scope).await? else {
            return Ok(None);
        };
        let allowlist = store::allowlist::list(&client, tenant.id).await?;
        Ok(Some(Arc::new(TenantEntry { tenant, allowlist })))
    }

    /// Writes `last_used_at` for tokens used since the previous call.
    pub async fn flush_token_use(&self, pool: &Pool) {
        if let Some(snapshot) = self.current() {
            record_uses(pool, &snapshot).await;
        }
    }
}

async fn record_uses(pool: &Pool, snapshot: &Snapshot) {
    let used: Vec<i64> = snapshot
        .tokens
        .values()
        .filter(|t| t.used.swap(false, Ordering::Relaxed))
        .map(|t| t.id)
        .collect();
    if used.is_empty() {
        return;
    }
    let result = async {
        let client = pool.get().await?;
        store::directory::touch_tokens(&client, &used).await
    }
    .await;
    if let Err(e) = result {
        tracing::warn!(error = format!("{e:#}"), "could not record token use");
    }
}
