//! Authentication from memory: every live token, tenant and allowlist, reloaded when a
//! `cidgate_config` notification says they changed. A PBX lookup then needs no database
//! round trip to authenticate, and keeps working while the database is down.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use chrono::{DateTime, Utc};
use deadpool_postgres::Pool;
use ipnetwork::IpNetwork;
use std::time::Duration;
use tokio_postgres::GenericClient;

use crate::domain::{AuthPolicy, Tenant, TenantId, TokenHash, TokenScope, TokenScopes};
use crate::popup::LinkKey;
use crate::store;

/// A tenant with what its authentication needs.
#[derive(Debug)]
pub struct TenantEntry {
    pub tenant: Tenant,
    pub allowlist: Vec<IpNetwork>,
    /// Seals new screen-pop links: the tenant's newest key.
    pub signer: Option<Arc<LinkKey>>,
}

impl TenantEntry {
    /// True when a lookup from `ip` satisfies the tenant's address rule: under `token`
    /// an empty allowlist allows any address; `ip` and `token+ip` require a match.
    pub fn allows(&self, ip: Option<IpAddr>) -> bool {
        let listed = ip.is_some_and(|ip| self.allowlist.iter().any(|n| n.contains(ip)));
        match self.tenant.auth_policy {
            AuthPolicy::Token => self.allowlist.is_empty() || listed,
            AuthPolicy::Ip | AuthPolicy::TokenAndIp => listed,
        }
    }
}

struct TokenEntry {
    id: i64,
    scopes: TokenScopes,
    tenant: Arc<TenantEntry>,
    expires_at: Option<DateTime<Utc>>,
    /// Set on use, cleared when `last_used_at` is written: one write per token per flush.
    used: AtomicBool,
}

/// Most refused tokens remembered; past it the memory starts over.
const MAX_REFUSED: usize = 100_000;

#[derive(Default)]
struct Snapshot {
    tokens: HashMap<TokenHash, TokenEntry>,
    /// Networks of tenants identified by source address alone.
    ip_tenants: Vec<(IpNetwork, Arc<TenantEntry>)>,
    /// Every tenant's screen-pop keys, so a link is checked before any database work.
    link_keys: HashMap<(TenantId, i32), Arc<LinkKey>>,
}

/// What the directory knows about a presented token.
pub enum TokenCheck {
    /// A live token of the scope: its id and tenant.
    Valid(i64, Arc<TenantEntry>),
    /// Not a live token of this scope (as of the last load).
    Invalid,
    /// Not loaded yet, or a token created since: ask the database.
    Unknown,
}

#[derive(Clone, Default)]
pub struct Directory {
    snapshot: Arc<RwLock<Option<Arc<Snapshot>>>>,
    /// Tokens this instance saw revoked, or the database refused for a scope, so they
    /// are refused again without the database (which an outage would turn into an
    /// unverified answer).
    refused: Arc<RwLock<HashSet<(TokenHash, TokenScope)>>>,
}

impl Directory {
    pub fn check(&self, hash: &TokenHash, scope: TokenScope) -> TokenCheck {
        let Some(snapshot) = self.current() else {
            return TokenCheck::Unknown;
        };
        match snapshot.tokens.get(hash) {
            Some(entry) if !entry.scopes.contains(scope) => TokenCheck::Invalid,
            Some(entry) if entry.expires_at.is_some_and(|at| at <= Utc::now()) => {
                TokenCheck::Invalid
            }
            Some(entry) => {
                entry.used.store(true, Ordering::Relaxed);
                TokenCheck::Valid(entry.id, entry.tenant.clone())
            }
            None if self.was_refused(hash, scope) => TokenCheck::Invalid,
            None => TokenCheck::Unknown,
        }
    }

    /// The tenant identified by this source address (`ip` policy). The outer `None`
    /// means the directory is not loaded and the database must be asked.
    pub fn tenant_by_ip(&self, ip: IpAddr) -> Option<Option<Arc<TenantEntry>>> {
        let snapshot = self.current()?;
        Some(
            snapshot
                .ip_tenants
                .iter()
                .find(|(network, _)| network.contains(ip))
                .map(|(_, entry)| entry.clone()),
        )
    }

    /// The key a screen-pop link names, as last loaded. The outer `None` means the
    /// directory is not loaded; `Some(None)`, no such key: retired, never made, or made
    /// in the moments since the last load (a link made with it is refused until the
    /// change notification arrives).
    pub fn link_key(&self, tenant: TenantId, key_id: i32) -> Option<Option<Arc<LinkKey>>> {
        let snapshot = self.current()?;
        Some(snapshot.link_keys.get(&(tenant, key_id)).cloned())
    }

    /// A tenant as last loaded, if it has a live token (for what a page needs of its
    /// settings when the database cannot be asked).
    /// Live tokens as of the last load (none before the first).
    pub fn token_count(&self) -> usize {
        self.current().map_or(0, |s| s.tokens.len())
    }

    pub fn tenant(&self, id: TenantId) -> Option<Arc<TenantEntry>> {
        let snapshot = self.current()?;
        let by_token = snapshot.tokens.values().map(|t| &t.tenant);
        let by_ip = snapshot.ip_tenants.iter().map(|(_, t)| t);
        by_token.chain(by_ip).find(|t| t.tenant.id == id).cloned()
    }

    fn current(&self) -> Option<Arc<Snapshot>> {
        self.snapshot
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Reloads everything from the primary; keeps the old snapshot when that fails.
    pub async fn reload(&self, client: &mut tokio_postgres::Client) -> anyhow::Result<()> {
        let rows = store::directory::load(client).await?;
        let mut allowlists: HashMap<TenantId, Vec<IpNetwork>> = HashMap::new();
        for (tenant, network) in rows.allowlist {
            allowlists.entry(tenant).or_default().push(network);
        }
        // Keys come ordered by id, so the last one per tenant is the newest.
        let mut newest_keys: HashMap<TenantId, Arc<LinkKey>> = HashMap::new();
        let mut link_keys = HashMap::new();
        for key in &rows.popup_keys {
            let key = Arc::new(LinkKey::new(key));
            link_keys.insert((key.tenant(), key.key_id()), key.clone());
            newest_keys.insert(key.tenant(), key);
        }
        let tenants: HashMap<TenantId, Arc<TenantEntry>> = rows
            .tenants
            .into_iter()
            .map(|tenant| {
                let entry = TenantEntry {
                    allowlist: allowlists.remove(&tenant.id).unwrap_or_default(),
                    signer: newest_keys.remove(&tenant.id),
                    tenant,
                };
                (entry.tenant.id, Arc::new(entry))
            })
            .collect();
        let ip_tenants = tenants
            .values()
            .filter(|e| e.tenant.auth_policy == AuthPolicy::Ip)
            .flat_map(|e| e.allowlist.iter().map(move |n| (*n, e.clone())))
            .collect();
        let tokens: HashMap<TokenHash, TokenEntry> = rows
            .tokens
            .into_iter()
            .filter_map(|t| {
                let entry = TokenEntry {
                    id: t.id,
                    scopes: t.scopes,
                    tenant: tenants.get(&t.tenant)?.clone(),
                    expires_at: t.expires_at,
                    used: AtomicBool::new(false),
                };
                Some((t.hash, entry))
            })
            .collect();
        if let Some(previous) = self.current() {
            let revoked = previous
                .tokens
                .iter()
                .filter(|(h, _)| !tokens.contains_key(h));
            self.refuse(revoked.flat_map(|(hash, _)| TokenScope::ALL.map(|scope| (*hash, scope))));
        }
        let previous = self.swap(Arc::new(Snapshot {
            tokens,
            ip_tenants,
            link_keys,
        }));
        // Uses recorded in the old snapshot are written now rather than lost.
        if let Some(previous) = previous {
            record_uses(&*client, &previous).await;
        }
        Ok(())
    }

    fn was_refused(&self, hash: &TokenHash, scope: TokenScope) -> bool {
        let refused = self.refused.read().unwrap_or_else(|p| p.into_inner());
        refused.contains(&(*hash, scope))
    }

    fn refuse(&self, tokens: impl IntoIterator<Item = (TokenHash, TokenScope)>) {
        let mut refused = self.refused.write().unwrap_or_else(|p| p.into_inner());
        for token in tokens {
            // Only ever a memory of recent refusals: the database knows the rest.
            if refused.len() >= MAX_REFUSED {
                refused.clear();
            }
            refused.insert(token);
        }
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
        limit: Duration,
        hash: &TokenHash,
        scope: TokenScope,
    ) -> anyhow::Result<Option<(i64, Arc<TenantEntry>)>> {
        let found = store::with_client(pool, limit, async |client| {
            let Some((token_id, tenant)) =
                store::tokens::authenticate(&*client, hash, scope).await?
            else {
                return Ok(None);
            };
            Ok(Some((token_id, entry_from_database(client, tenant).await?)))
        })
        .await?;
        if found.is_none() {
            self.refuse([(*hash, scope)]);
        }
        Ok(found)
    }

    /// `tenant_by_ip` against the database, for when the directory is not loaded.
    pub async fn tenant_by_ip_in_database(
        &self,
        pool: &Pool,
        limit: Duration,
        ip: IpAddr,
    ) -> anyhow::Result<Option<Arc<TenantEntry>>> {
        store::with_client(pool, limit, async |client| {
            let Some(tenant) = store::directory::tenant_by_ip(&*client, ip).await? else {
                return Ok(None);
            };
            Ok(Some(entry_from_database(client, tenant).await?))
        })
        .await
    }

    /// Writes `last_used_at` for tokens used since the previous call.
    pub async fn flush_token_use(&self, client: &impl GenericClient) {
        if let Some(snapshot) = self.current() {
            record_uses(client, &snapshot).await;
        }
    }
}

async fn entry_from_database(
    client: &deadpool_postgres::Object,
    tenant: Tenant,
) -> anyhow::Result<Arc<TenantEntry>> {
    let allowlist = store::allowlist::list(client, tenant.id).await?;
    let signer = store::signing_keys::newest(client, tenant.id)
        .await?
        .as_ref()
        .map(|key| Arc::new(LinkKey::new(key)));
    Ok(Arc::new(TenantEntry {
        tenant,
        allowlist,
        signer,
    }))
}

async fn record_uses(client: &impl GenericClient, snapshot: &Snapshot) {
    let used: Vec<(TenantId, i64)> = snapshot
        .tokens
        .values()
        .filter(|t| t.used.swap(false, Ordering::Relaxed))
        .map(|t| (t.tenant.tenant.id, t.id))
        .collect();
    if used.is_empty() {
        return;
    }
    if let Err(e) = store::directory::touch_tokens(client, &used).await {
        tracing::warn!(error = format!("{e:#}"), "could not record token use");
    }
}
