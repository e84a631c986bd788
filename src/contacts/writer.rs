//! Committing contact writes: one transaction each, run again when PostgreSQL aborts it
//! for a race, and this process's copies of the changed answers forgotten once it commits.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use deadpool_postgres::{Pool, Transaction};
use tokio_postgres::GenericClient;

use crate::domain::{ChangedNumbers, TenantId, WriteOp, WriteOutcome};
use crate::lookup::cache::AnswerCache;
use crate::lookup::known_numbers::KnownNumbers;
use crate::store::{self, contacts::BatchWriter};

/// Attempts at a write that keeps losing races, in all.
const ATTEMPTS: u32 = 3;

/// Commits contact writes; cheap to clone (the pool and the copies are handles).
#[derive(Clone)]
pub struct Writer {
    pool: Pool,
    limit: Duration,
    local: Option<LocalCopies>,
    turns: TenantTurns,
}

/// A tenant's writes take turns on its row in PostgreSQL anyway (see
/// [`BatchWriter::begin`]); queueing them here first keeps the waiting ones from each
/// holding a pool connection, so one tenant's burst of writes cannot take every
/// connection that other tenants' writes, pop pages and readiness need.
#[derive(Clone, Default)]
struct TenantTurns(Arc<Mutex<HashMap<TenantId, Arc<tokio::sync::Mutex<()>>>>>);

impl TenantTurns {
    fn of(&self, tenant: TenantId) -> Arc<tokio::sync::Mutex<()>> {
        let mut turns = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        turns.entry(tenant).or_default().clone()
    }
}

/// Why a write did not commit. Nothing of it was written, unless the database stopped
/// answering after the commit was sent.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// Every attempt lost a race with concurrent writes (the last attempt's error).
    #[error("concurrent writes to the same contacts got in the way {ATTEMPTS} times")]
    Contended(#[source] anyhow::Error),
    /// Anything else, an unreachable database ([`store::is_unreachable`]) included.
    #[error("writing contacts failed")]
    Failed(#[source] anyhow::Error),
}

impl WriteError {
    /// The last attempt's error, as a caller writing on its own would have met it.
    pub fn into_cause(self) -> anyhow::Error {
        match self {
            Self::Contended(cause) | Self::Failed(cause) => cause,
        }
    }
}

/// One attempt at a write: its transaction, with the tenant's writers taking turns
/// (see [`BatchWriter::begin`]).
pub struct WriteTx<'t> {
    batch: BatchWriter<'t, Transaction<'t>>,
    attempt: u32,
}

impl<'t> WriteTx<'t> {
    /// Applies the next ops, after every op given before (see [`store::contacts::apply`]).
    pub async fn write(&mut self, ops: &[WriteOp]) -> anyhow::Result<()> {
        self.batch.write(ops).await
    }

    /// The transaction, for statements of the write's own (a snapshot's list of ids).
    pub fn transaction(&self) -> &'t Transaction<'t> {
        self.batch.client()
    }

    /// Which attempt this is, from 1: a later one follows a race that wrote nothing.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }
}

impl Writer {
    /// Each attempt may wait up to `limit` for the database (`Duration::MAX`: no limit).
    /// `local` is what a serving process holds in memory; a one-shot command has none,
    /// and the serving processes hear of its writes through NOTIFY.
    pub fn new(pool: Pool, limit: Duration, local: Option<LocalCopies>) -> Self {
        Self {
            pool,
            limit,
            local,
            turns: TenantTurns::default(),
        }
    }

    /// The same writer (sharing its turns and copies) without a time limit, for writes
    /// as long as their input: a snapshot streamed from a request.
    pub fn unlimited(&self) -> Self {
        Self {
            limit: Duration::MAX,
            ..self.clone()
        }
    }

    /// Applies `ops` in order in one transaction.
    pub async fn write(
        &self,
        tenant: TenantId,
        ops: &[WriteOp],
    ) -> Result<WriteOutcome, WriteError> {
        let (outcome, ()) = self
            .write_with(tenant, async |tx| tx.write(ops).await)
            .await?;
        Ok(outcome)
    }

    /// Runs `work` in one transaction, which sends the change notification and commits
    /// when `work` succeeds; `work` hands its ops to [`WriteTx::write`] as it produces
    /// them (the import so streams its file) and answers whatever else it gathered. When
    /// PostgreSQL aborts the transaction for a race ([`store::contacts::worth_retrying`]:
    /// a unique violation, a deadlock) nothing was written, and `work` runs again in a
    /// new one, which sees what the other writer did: three attempts in all.
    pub async fn write_with<T>(
        &self,
        tenant: TenantId,
        mut work: impl AsyncFnMut(&mut WriteTx<'_>) -> anyhow::Result<T>,
    ) -> Result<(WriteOutcome, T), WriteError> {
        let turn = self.turns.of(tenant);
        let _turn = match self.limit {
            Duration::MAX => turn.lock().await,
            limit => tokio::time::timeout(limit, turn.lock())
                .await
                .map_err(|_| WriteError::Failed(store::TimedOut(limit).into()))?,
        };
        let mut attempt = 1;
        let (outcome, gathered) = loop {
            let tried = store::with_client(&self.pool, self.limit, async |client| {
                let transaction = client.transaction().await?;
                let batch = BatchWriter::begin(&transaction, tenant).await?;
                let mut tx = WriteTx { batch, attempt };
                let gathered = work(&mut tx).await?;
                let outcome = tx.batch.finish().await?;
                transaction.commit().await?;
                Ok((outcome, gathered))
            })
            .await;
            match tried {
                Ok(done) => break done,
                Err(e) if store::contacts::worth_retrying(&e) => {
                    if attempt == ATTEMPTS {
                        return Err(WriteError::Contended(e));
                    }
                    attempt += 1;
                }
                Err(e) => return Err(WriteError::Failed(e)),
            }
        };
        if let Some(local) = &self.local {
            local.forget(tenant, &outcome.numbers).await;
        }
        Ok((outcome, gathered))
    }
}

/// What a serving process holds in memory about contacts, which a committed write makes
/// stale: the answer cache and the number index.
#[derive(Clone)]
pub struct LocalCopies {
    pub cache: AnswerCache,
    pub index: KnownNumbers,
}

impl LocalCopies {
    /// After a committed write, this process's or (through [`Self::heard`]) another's:
    /// forgets the answers for the changed numbers and learns the claimed ones. Released
    /// numbers stay in the index until the listener asks whether another contact still
    /// has them: one there too long costs a query, one missing would lose a caller.
    pub async fn forget(&self, tenant: TenantId, numbers: &ChangedNumbers) {
        self.cache.invalidate(tenant, numbers.all()).await;
        self.index.add(tenant, &numbers.claimed).await;
    }

    /// After a write heard of through NOTIFY (every instance's, this one's included),
    /// one notification after another: forgets, then asks `client` which released
    /// numbers some contact has now rather than trusting the payloads' order, so the last
    /// check after the last change wins.
    pub async fn heard(
        &self,
        client: &impl GenericClient,
        tenant: TenantId,
        numbers: &ChangedNumbers,
    ) -> anyhow::Result<()> {
        self.forget(tenant, numbers).await;
        let released = &numbers.released;
        if !released.is_empty() {
            let present = store::contacts::present_numbers(client, tenant, released).await?;
            self.index.reconcile(tenant, released, &present).await;
        }
        Ok(())
    }
}
