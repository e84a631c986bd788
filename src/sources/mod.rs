//! CRM sources behind the lookup (issue 34): when the mirror does not know a number, the
//! tenant's sources are asked in order; what one finds is written into the mirror through
//! the one write path (`contacts::Writer`), marked with its source, and asked again after
//! a TTL; a number nobody knows is remembered as unknown for a shorter TTL.

pub mod admin;
pub mod ask;
pub mod health;
pub mod kinds;

use std::collections::HashSet;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use anyhow::Context;
use deadpool_postgres::Pool;
use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use serde_json::{Value, json};

use self::ask::{Failure, Found};
use self::health::Board;
use self::kinds::Mode;
use crate::contacts;
use crate::domain::{
    ContactInput, CrmId, LookupHit, PhoneNumber, Region, RoutingField, TenantId, WriteOp,
};
use crate::jobs::{Readiness, Supervisor};
use crate::lookup::Source;
use crate::outbound::{self, Clients, Network};
use crate::store::{self, sources::StoredSource};

/// How long a found contact is trusted before its source is asked again, and how long
/// a number no source knows is remembered as unknown.
#[derive(Debug, Clone, Copy)]
pub struct Ttls {
    pub found: Duration,
    pub unknown: Duration,
}

impl Default for Ttls {
    fn default() -> Self {
        Self {
            found: Duration::from_secs(24 * 3600),
            unknown: Duration::from_secs(3600),
        }
    }
}

/// The sources of every tenant, as the lookup asks them (cheap to clone).
#[derive(Clone)]
pub struct Sources {
    inner: Arc<Inner>,
}

struct Inner {
    pool: Pool,
    writer: contacts::Writer,
    clients: Clients,
    /// Tenants with at least one source: for every other tenant the number index decides.
    tenants: RwLock<HashSet<TenantId>>,
    board: Board,
    ttls: Ttls,
}

/// The attribute a written contact carries: the source that found it.
pub const SOURCE_ATTRIBUTE: &str = "cidgate_source";

/// The clients sources ask CRMs with (under each tenant's SSRF guard).
pub fn clients(network: &Network) -> anyhow::Result<Clients> {
    Clients::new(
        network,
        outbound::Settings {
            user_agent: concat!("cidgate/", env!("CARGO_PKG_VERSION"), " (CRM source)"),
            timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(5),
            proxy: None,
        },
    )
}

impl Sources {
    pub fn new(pool: Pool, writer: contacts::Writer, clients: Clients, ttls: Ttls) -> Self {
        Self {
            inner: Arc::new(Inner {
                pool,
                writer,
                clients,
                tenants: RwLock::default(),
                board: Board::default(),
                ttls,
            }),
        }
    }

    pub fn clients(&self) -> &Clients {
        &self.inner.clients
    }

    /// Whether `tenant` has sources (as last loaded): never waits.
    pub fn has(&self, tenant: TenantId) -> bool {
        let tenants = self.inner.tenants.read().unwrap_or_else(|e| e.into_inner());
        !tenants.is_empty() && tenants.contains(&tenant)
    }

    /// Loads which tenants have sources (after a change made here, and every few seconds
    /// for changes made elsewhere).
    pub async fn reload(&self) -> anyhow::Result<()> {
        let client = self.inner.pool.get().await.context("connecting")?;
        let loaded: HashSet<TenantId> = store::sources::tenants_with_sources(&client)
            .await?
            .into_iter()
            .collect();
        *self
            .inner
            .tenants
            .write()
            .unwrap_or_else(|e| e.into_inner()) = loaded;
        Ok(())
    }

    /// Every source this process asked, with its counts; for `/readyz`'s detail.
    pub fn report(&self) -> Vec<Value> {
        self.inner.board.report()
    }

    pub fn degraded(&self) -> bool {
        self.inner.board.degraded()
    }

    /// Keeps the set of tenants with sources current, and asks sources again about the
    /// numbers they found longer than the TTL ago.
    pub fn spawn(&self, jobs: &Supervisor) {
        let sources = self.clone();
        jobs.spawn("crm_sources", Readiness::Reported, move || {
            let sources = sources.clone();
            async move {
                let mut every = tokio::time::interval(RELOAD_EVERY);
                every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    every.tick().await;
                    sources.reload().await?;
                    sources.recheck().await?;
                }
            }
        });
    }

    async fn recheck(&self) -> anyhow::Result<()> {
        let due = {
            let client = self.inner.pool.get().await.context("connecting")?;
            store::sources::due_rechecks(&client, self.inner.ttls.found, 20).await?
        };
        for (tenant, number) in due {
            let number = PhoneNumber::from_stored(number);
            if let Err(e) = self.ask_sources(tenant, &number, true).await {
                tracing::warn!(%tenant, error = format!("{e:#}"), "re-checking a number failed");
            }
        }
        Ok(())
    }

    /// Asks `tenant`'s sources about a number the mirror lacks: inline ones now, the rest
    /// (from the first `background` one on) in a task of their own, for the next call.
    pub async fn find(
        &self,
        tenant: TenantId,
        number: &PhoneNumber,
    ) -> anyhow::Result<Option<LookupHit>> {
        self.ask_sources(tenant, number, false).await
    }

    async fn ask_sources(
        &self,
        tenant: TenantId,
        number: &PhoneNumber,
        everyone: bool,
    ) -> anyhow::Result<Option<LookupHit>> {
        let loaded = {
            let client = self.inner.pool.get().await.context("connecting")?;
            let ttl = self.inner.ttls.unknown;
            if !everyone
                && store::sources::known_unknown(&client, tenant, number.as_str(), ttl).await?
            {
                return Ok(None);
            }
            store::sources::for_lookup(&client, tenant).await?
        };
        let Some((slug, region, list)) = loaded else {
            return Ok(None);
        };
        let inline = if everyone {
            list.len()
        } else {
            list.iter()
                .position(|s| s.definition.mode == Mode::Background)
                .unwrap_or(list.len())
        };
        if inline < list.len() {
            let later = self.clone();
            let rest = list[inline..].to_vec();
            let (slug, number) = (slug.clone(), number.clone());
            tokio::spawn(async move {
                if let Err(e) = later
                    .in_order_boxed(tenant, &slug, region, &rest, &number)
                    .await
                {
                    tracing::warn!(%tenant, error = format!("{e:#}"), "background source failed");
                }
            });
        }
        if inline == 0 {
            return Ok(None);
        }
        let hit = self
            .in_order(tenant, &slug, region, &list[..inline], number)
            .await?;
        Ok(hit)
    }

    /// [`Self::in_order`] behind a box that is `Send` by its type (a spawned task's
    /// future must be, and the compiler cannot see it through the writer's closures).
    fn in_order_boxed<'a>(
        &'a self,
        tenant: TenantId,
        slug: &'a str,
        region: Region,
        list: &'a [StoredSource],
        number: &'a PhoneNumber,
    ) -> BoxFuture<'a, anyhow::Result<Option<LookupHit>>> {
        self.in_order(tenant, slug, region, list, number).boxed()
    }

    async fn in_order(
        &self,
        tenant: TenantId,
        slug: &str,
        region: Region,
        list: &[StoredSource],
        number: &PhoneNumber,
    ) -> anyhow::Result<Option<LookupHit>> {
        let http = self.inner.clients.for_tenant(slug)?;
        let mut answered_by_all = true;
        for source in list {
            let definition = &source.definition;
            let rate = definition.rate_per_minute();
            if let Err(skip) = self.inner.board.admit(source.id, &source.name, rate) {
                tracing::debug!(%tenant, source = %source.name, ?skip, "source skipped");
                answered_by_all = false;
                continue;
            }
            let started = Instant::now();
            let asked = ask::ask(&http, definition, number, definition.timeout).await;
            match asked.outcome {
                Ok(found) => {
                    let board = &self.inner.board;
                    board.answered(
                        source.id,
                        &source.name,
                        rate,
                        found.is_some(),
                        started.elapsed(),
                    );
                    if let Some(found) = found {
                        return self
                            .write(tenant, region, source, number, &found)
                            .await
                            .map(Some);
                    }
                }
                Err(failure) => {
                    answered_by_all = false;
                    let pause = match failure {
                        Failure::RateLimited(after) => Some(after.unwrap_or(health::BREAKER_OPEN)),
                        _ => None,
                    };
                    self.inner.board.failed(
                        source.id,
                        &source.name,
                        rate,
                        &failure.to_string(),
                        pause,
                    );
                    tracing::warn!(
                        %tenant, source = %source.name, number = %number.masked(),
                        error = %failure, "a CRM source gave no answer"
                    );
                }
            }
        }
        if answered_by_all {
            let client = self.inner.pool.get().await.context("connecting")?;
            store::sources::remember(&client, tenant, number.as_str(), None).await?;
        }
        Ok(None)
    }

    /// Writes what a source found into the mirror (keeping the numbers the contact
    /// already has there) and answers it as the lookup does.
    async fn write(
        &self,
        tenant: TenantId,
        region: Region,
        source: &StoredSource,
        number: &PhoneNumber,
        found: &Found,
    ) -> anyhow::Result<LookupHit> {
        let input = contact_input(region, source, number, found)?;
        let id = CrmId::parse_for_upsert(&found.id)
            .map_err(|e| anyhow::anyhow!("the source's contact id {e}"))?;
        let mut input = input;
        let client = self.inner.pool.get().await.context("connecting")?;
        // The numbers the mirror has for the contact already stay its numbers.
        if let Some(stored) = store::contacts::get(&client, tenant, &id).await? {
            for phone in stored.phones {
                let phone = PhoneNumber::from_stored(phone);
                if !input.phones.contains(&phone) {
                    input.phones.push(phone);
                }
            }
        }
        drop(client);
        let op = WriteOp::Upsert(id.clone(), Box::new(input.clone()));
        // On a thread of its own: the writer's future is not provably `Send` (its async
        // closures), and a lookup's load and the background sources run in spawned tasks.
        // A CRM's find is rare (the next call answers from the mirror), so this costs little.
        let writer = self.inner.writer.clone();
        let runtime = tokio::runtime::Handle::current();
        tokio::task::spawn_blocking(move || runtime.block_on(writer.write(tenant, &[op])))
            .await
            .context("the contact write task")?
            .map_err(contacts::WriteError::into_cause)?;
        let client = self.inner.pool.get().await.context("connecting")?;
        let found_by = Some((source.id, id.as_str()));
        store::sources::remember(&client, tenant, number.as_str(), found_by).await?;
        Ok(LookupHit::new(id.as_str(), &input.name, |f| {
            input.routing.get(f)
        }))
    }
}

/// How often the set of tenants with sources is reloaded (changes made on another
/// instance or by the command line show within this).
const RELOAD_EVERY: Duration = Duration::from_secs(5);

/// The contact a source found, as a contact write: the number asked about, the fields
/// the source gave (a field that does not fit is left out, and said so), the source's name.
fn contact_input(
    region: Region,
    source: &StoredSource,
    number: &PhoneNumber,
    found: &Found,
) -> anyhow::Result<ContactInput> {
    let mut body = serde_json::Map::new();
    body.insert("phones".into(), json!([number.as_str()]));
    body.insert(
        "attributes".into(),
        json!({ SOURCE_ATTRIBUTE: source.name }),
    );
    for (field, value) in &found.fields {
        if field == "name" || RoutingField::named(field).is_some() {
            body.insert(field.clone(), value.clone());
        }
    }
    match ContactInput::from_json(&body, region, &[]) {
        Ok(input) => Ok(input),
        Err(errors) => {
            for error in &errors {
                body.remove(&error.field);
            }
            tracing::warn!(
                source = %source.name,
                fields = ?errors.iter().map(|e| &e.field).collect::<Vec<_>>(),
                "fields of a CRM's answer did not fit and were left out"
            );
            ContactInput::from_json(&body, region, &[])
                .map_err(|e| anyhow::anyhow!("the CRM's answer does not fit: {e:?}"))
        }
    }
}

/// The mirror first, then the tenant's sources (issue 34).
pub struct Chain<M> {
    pub mirror: M,
    pub sources: Sources,
}

impl<M: Source> Source for Chain<M> {
    fn find<'a>(
        &'a self,
        tenant: TenantId,
        number: &'a PhoneNumber,
    ) -> BoxFuture<'a, anyhow::Result<Option<LookupHit>>> {
        async move {
            if let Some(hit) = self.mirror.find(tenant, number).await? {
                return Ok(Some(hit));
            }
            if !self.sources.has(tenant) {
                return Ok(None);
            }
            self.sources.find(tenant, number).await
        }
        .boxed()
    }

    fn index_decides(&self, tenant: TenantId) -> bool {
        self.mirror.index_decides(tenant) && !self.sources.has(tenant)
    }
}
