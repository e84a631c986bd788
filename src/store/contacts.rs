//! The contact mirror: lookups by number and idempotent, ordered bulk writes.

use std::collections::{HashMap, HashSet};

use anyhow::Context;
use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use tokio_postgres::Row;
use tokio_postgres::error::SqlState;

use super::contact_columns::{self, Columns};
use super::notify;

use crate::domain::OverNumberCap;
use crate::domain::{
    ChangedNumbers, ContactInput, ContactRecord, CrmId, LookupHit, RoutingFields, TenantId,
    WriteOp, WriteOutcome, WriteResult,
};

/// Finds the contact for each number, in one statement: `wanted` pairs every number
/// with its tenant, and the answer is aligned with it (`None`: no contact has the
/// number). When several contacts share a number, the most recently changed one wins
/// (by source time, else write time), then the smallest CRM id, so the answer is
/// deterministic.
pub async fn find_by_numbers(
    client: &impl GenericClient,
    wanted: &[(TenantId, &str)],
) -> anyhow::Result<Vec<Option<LookupHit>>> {
    let statement = client
        .prepare_cached(contact_columns::LOOKUP.as_str())
        .await
        .context("preparing the lookup")?;
    let (tenants, numbers): (Vec<i64>, Vec<&str>) = wanted.iter().map(|(t, n)| (t.0, *n)).unzip();
    let rows = client
        .query(&statement, &[&tenants, &numbers])
        .await
        .context("looking up numbers")?;
    let mut found = vec![None; wanted.len()];
    for r in rows {
        let ordinal: i64 = r.get("i");
        let slot = usize::try_from(ordinal - 1)
            .ok()
            .and_then(|i| found.get_mut(i))
            .context("the lookup answered for a number it was not asked")?;
        *slot = Some(LookupHit::new(r.get("crm_id"), r.get("name"), |field| {
            contact_columns::routing_value(&r, field)
        }));
    }
    Ok(found)
}

/// Which of `numbers` some contact of the tenant has now.
pub async fn present_numbers(
    client: &impl tokio_postgres::GenericClient,
    tenant: TenantId,
    numbers: &[String],
) -> anyhow::Result<Vec<String>> {
    let rows = client
        .query(
            "SELECT DISTINCT number FROM contact_phones WHERE tenant_id = $1 AND number = ANY($2)",
            &[&tenant.0, &numbers],
        )
        .await
        .context("checking numbers")?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// Streams every (tenant, number) of the mirror to `each`, without holding all rows.
pub async fn for_each_number(
    client: &impl tokio_postgres::GenericClient,
    mut each: impl FnMut(TenantId, &str),
) -> anyhow::Result<u64> {
    use futures_util::TryStreamExt;
    let params: [&str; 0] = [];
    let rows = client
        .query_raw("SELECT tenant_id, number FROM contact_phones", params)
        .await
        .context("reading known numbers")?;
    futures_util::pin_mut!(rows);
    let mut count = 0;
    while let Some(row) = rows.try_next().await.context("reading known numbers")? {
        each(TenantId(row.get(0)), row.get(1));
        count += 1;
    }
    Ok(count)
}

fn crm_id(row: &Row) -> anyhow::Result<CrmId> {
    let raw: String = row.get("crm_id");
    CrmId::parse(&raw).map_err(|e| anyhow::anyhow!("stored CRM id {raw:?} {e}"))
}

pub async fn get(
    client: &impl GenericClient,
    tenant: TenantId,
    id: &CrmId,
) -> anyhow::Result<Option<ContactRecord>> {
    let row = client
        .query_opt(
            "SELECT c.*, array(SELECT p.number FROM contact_phones p
                               WHERE p.tenant_id = c.tenant_id AND p.crm_id = c.crm_id
                               ORDER BY p.number) AS phones
             FROM contacts c WHERE c.tenant_id = $1 AND c.crm_id = $2",
            &[&tenant.0, &id.as_str()],
        )
        .await
        .context("reading contact")?;
    row.as_ref().map(record).transpose()
}

/// The stored contacts among `ids` (one index lookup per id, as the writes look).
pub async fn get_many(
    client: &impl GenericClient,
    tenant: TenantId,
    ids: &[&str],
) -> anyhow::Result<Vec<ContactRecord>> {
    let rows = client
        .query(
            "SELECT c.*, array(SELECT p.number FROM contact_phones p
                               WHERE p.tenant_id = c.tenant_id AND p.crm_id = c.crm_id
                               ORDER BY p.number) AS phones
             FROM unnest($2::text[]) AS i (id)
             CROSS JOIN LATERAL (SELECT * FROM contacts
                                 WHERE tenant_id = $1 AND crm_id = i.id) AS c",
            &[&tenant.0, &ids],
        )
        .await
        .context("reading contacts")?;
    rows.iter().map(record).collect()
}

/// A contact row with its `phones` array.
fn record(r: &Row) -> anyhow::Result<ContactRecord> {
    Ok(ContactRecord {
        id: crm_id(r)?,
        name: r.get("name"),
        phones: r.get("phones"),
        routing: RoutingFields::from_fn(|field| contact_columns::routing_value(r, field)),
        attributes: r
            .try_get("attributes")
            .context("stored attributes are not readable JSON")?,
        updated_at: r.get("source_updated_at"),
    })
}

/// Rows per statement when writing large batches. Past about 0.5% of a table, the
/// planner prefers scanning all of it to looking up `crm_id = ANY(ids)` by index.
pub const CHUNK: usize = 5_000;

/// Applies `ops` in order, as if one by one, with the ordering rule: an upsert or
/// delete older (by source `updated_at`) than the stored record is stale and ignored.
/// Run it inside a transaction: it locks the touched rows, then writes in bulk. When
/// it fails with [`worth_retrying`], run it again in a new transaction.
pub async fn apply(
    client: &impl GenericClient,
    tenant: TenantId,
    ops: &[WriteOp],
) -> anyhow::Result<WriteOutcome> {
    let mut writer = BatchWriter::begin(client, tenant).await?;
    writer.write(ops).await?;
    writer.finish().await
}

/// Writes one batch in pieces, for callers that produce the ops as they go (the
/// import parses the next piece of its file while this one is written). Everything runs
/// in the caller's transaction; `finish` sends the change notification.
pub struct BatchWriter<'a, C> {
    client: &'a C,
    tenant: TenantId,
    outcome: WriteOutcome,
    /// The numbers the tenant stored when the batch began.
    numbers_before: i64,
}

impl<'a, C: GenericClient> BatchWriter<'a, C> {
    /// Locks the tenant row until the transaction ends. Against deletion (what a foreign
    /// key check did for every row, done once), and against the tenant's other writers:
    /// they take turns. Row locks cannot order writes to contacts that do not exist yet
    /// (there is no row to lock), so a newer delete and an older create of one new
    /// contact could both commit, the older write winning. Waiting here, each writer
    /// reads what the one before it committed. `FOR NO KEY UPDATE` leaves rows that
    /// merely reference the tenant (new tokens, keys) unblocked.
    pub async fn begin(client: &'a C, tenant: TenantId) -> anyhow::Result<Self> {
        let found = client
            .query_opt(
                "SELECT coalesce(c.numbers, 0) FROM tenants t
                 LEFT JOIN tenant_number_counts c ON c.tenant_id = t.id
                 WHERE t.id = $1 FOR NO KEY UPDATE OF t",
                &[&tenant.0],
            )
            .await
            .context("locking the tenant")?;
        let Some(row) = found else {
            anyhow::bail!("tenant {} does not exist", tenant.0);
        };
        Ok(Self {
            client,
            tenant,
            outcome: WriteOutcome::default(),
            numbers_before: row.get(0),
        })
    }

    /// Applies the next ops, after every op given before.
    pub async fn write(&mut self, ops: &[WriteOp]) -> anyhow::Result<()> {
        for chunk in ops.chunks(CHUNK) {
            apply_chunk(self.client, self.tenant, chunk, &mut self.outcome).await?;
        }
        Ok(())
    }

    /// The transaction it writes in, for statements of the caller's own.
    pub fn client(&self) -> &'a C {
        self.client
    }

    /// Notifies the changed numbers; the outcome is final once the transaction commits.
    pub async fn finish(mut self) -> anyhow::Result<WriteOutcome> {
        self.check_number_cap().await?;
        self.outcome.numbers.settle();
        notify::contacts_changed(self.client, self.tenant, &self.outcome.numbers).await?;
        Ok(self.outcome)
    }
}

impl<C: GenericClient> BatchWriter<'_, C> {
    /// Refuses a write that grew the tenant's numbers past its cap. One that shrinks
    /// them passes, so a tenant over a lowered cap can still clean up.
    async fn check_number_cap(&self) -> anyhow::Result<()> {
        if self.outcome.numbers.claimed.is_empty() {
            return Ok(());
        }
        let row = self
            .client
            .query_one(
                "SELECT t.max_numbers, coalesce(c.numbers, 0) FROM tenants t
                 LEFT JOIN tenant_number_counts c ON c.tenant_id = t.id WHERE t.id = $1",
                &[&self.tenant.0],
            )
            .await
            .context("counting the tenant's numbers")?;
        let (cap, would_hold): (i64, i64) = (row.get(0), row.get(1));
        if would_hold > cap && would_hold > self.numbers_before {
            return Err(OverNumberCap { cap, would_hold }.into());
        }
        Ok(())
    }
}

/// The state of one contact while a batch is replayed in memory: absent (with the source
/// time of its deletion, if one is remembered) or present (with its source time).
#[derive(Clone, Copy)]
enum Stored {
    Absent(Option<DateTime<Utc>>),
    Present(Option<DateTime<Utc>>),
}

async fn apply_chunk(
    client: &impl GenericClient,
    tenant: TenantId,
    ops: &[WriteOp],
    outcome: &mut WriteOutcome,
) -> anyhow::Result<()> {
    let mut ids: Vec<&str> = ops.iter().map(|op| op.id().as_str()).collect();
    // Locks are taken in id order, so concurrent batches of one chunk cannot deadlock
    // (larger ones can, across chunks: see `worth_retrying`).
    ids.sort_unstable();
    ids.dedup();
    // One index lookup per id, whatever the statistics say: `crm_id = ANY(ids)` is
    // planned as a scan of the whole table once the ids are more than a sliver of it,
    // and during a first import the statistics do not know of the rows written so far
    // in the same transaction (such scans of a growing table made imports quadratic).
    let rows = client
        .query(
            "SELECT i.id, c.source_updated_at FROM unnest($2::text[]) AS i (id)
             CROSS JOIN LATERAL (SELECT source_updated_at FROM contacts
                                 WHERE tenant_id = $1 AND crm_id = i.id FOR UPDATE) AS c",
            &[&tenant.0, &ids],
        )
        .await
        .context("locking contacts")?;
    let tombstones = client
        .query(
            "SELECT i.id, t.deleted_at FROM unnest($2::text[]) AS i (id)
             CROSS JOIN LATERAL (SELECT deleted_at FROM contact_tombstones
                                 WHERE tenant_id = $1 AND crm_id = i.id FOR UPDATE) AS t",
            &[&tenant.0, &ids],
        )
        .await
        .context("reading deletions")?;
    // Keys borrow from `ops`, so the map outlives the rows it was read from.
    let known: HashSet<&str> = ids.iter().copied().collect();
    let mut state: HashMap<&str, Stored> = HashMap::with_capacity(rows.len() + tombstones.len());
    // Contacts that exist now (locked by us) and ids with a remembered deletion.
    let mut existing: HashSet<&str> = HashSet::with_capacity(rows.len());
    let mut tombstoned: HashSet<&str> = HashSet::with_capacity(tombstones.len());
    for (rows, present) in [(&tombstones, false), (&rows, true)] {
        for r in rows.iter() {
            if let Some(id) = known.get(r.get::<_, &str>(0)) {
                let at: Option<DateTime<Utc>> = r.get(1);
                if present {
                    existing.insert(id);
                    state.insert(id, Stored::Present(at));
                } else {
                    tombstoned.insert(id);
                    state.insert(id, Stored::Absent(at));
                }
            }
        }
    }

    // Replay in memory; the last effective op per id is what gets written.
    let mut last_effective: HashMap<&str, &WriteOp> = HashMap::with_capacity(ops.len());
    let mut result_index: HashMap<&str, usize> = HashMap::with_capacity(ops.len());
    for op in ops {
        let id = op.id().as_str();
        let stored = *state.get(id).unwrap_or(&Stored::Absent(None));
        let result = match (op, stored) {
            (WriteOp::Upsert(_, c), Stored::Present(at) | Stored::Absent(at))
                if is_older(c.updated_at, at) =>
            {
                WriteResult::Stale
            }
            (WriteOp::Upsert(_, c), Stored::Present(_)) => {
                state.insert(id, Stored::Present(c.updated_at));
                WriteResult::Updated
            }
            (WriteOp::Upsert(_, c), Stored::Absent(_)) => {
                state.insert(id, Stored::Present(c.updated_at));
                WriteResult::Created
            }
            (WriteOp::Delete(_, when), Stored::Absent(at)) => {
                // Nothing to delete; a later deletion time is still worth remembering.
                state.insert(id, Stored::Absent(at.max(*when)));
                WriteResult::Absent
            }
            (WriteOp::Delete(_, when), Stored::Present(at)) if is_older(*when, at) => {
                WriteResult::Stale
            }
            (WriteOp::Delete(_, when), Stored::Present(_)) => {
                state.insert(id, Stored::Absent(*when));
                WriteResult::Deleted
            }
        };
        if result != WriteResult::Stale {
            last_effective.insert(id, op);
            result_index.insert(id, outcome.results.len());
        }
        outcome.results.push(result);
    }

    let mut touched_ids: Vec<&str> = last_effective.keys().copied().collect();
    touched_ids.sort_unstable();
    let deletes: Vec<&str> = touched_ids
        .iter()
        .copied()
        .filter(|id| matches!(last_effective[id], WriteOp::Delete(..)))
        .collect();
    // Upserts of contacts that exist (and are locked) replace them; the others are new.
    let (updates, creates): (Vec<_>, Vec<_>) = touched_ids
        .iter()
        .filter_map(|id| match last_effective[id] {
            WriteOp::Upsert(_, c) => Some((*id, c.as_ref())),
            WriteOp::Delete(..) => None,
        })
        .partition(|(id, _)| existing.contains(id));

    if !deletes.is_empty() {
        remove_phones(client, tenant, &deletes, outcome).await?;
        client
            .execute(
                "DELETE FROM contacts WHERE tenant_id = $1 AND crm_id = ANY($2)",
                &[&tenant.0, &deletes],
            )
            .await
            .context("deleting contacts")?;
        remember_deletions(client, tenant, &deletes, &state).await?;
    }
    if !creates.is_empty() {
        // New contacts go in plainly: the upsert's conflict handling costs as much
        // again per row, and nothing of theirs exists, so there are no old numbers to
        // remove either. Should another writer create one of them after we looked, the
        // insert fails on the key and the caller runs the batch again (see
        // `worth_retrying`), when the ordering rule applies to it.
        insert_contacts(client, tenant, &creates).await?;
        let revived: Vec<&str> = creates
            .iter()
            .map(|(id, _)| *id)
            .filter(|id| tombstoned.contains(id))
            .collect();
        forget_deletions(client, tenant, &revived).await?;
        insert_phones(client, tenant, &creates, Conflicts::Fail, outcome).await?;
    }
    if !updates.is_empty() {
        // The rows are locked and their times checked; the SQL guard is a second line.
        let written = upsert_contacts(client, tenant, &updates).await?;
        let (kept, refused): (Vec<_>, Vec<_>) = updates
            .into_iter()
            .partition(|(id, _)| written.contains(*id));
        for (id, _) in &refused {
            outcome.results[result_index[id]] = WriteResult::Stale;
        }
        let kept_ids: Vec<&str> = kept.iter().map(|(id, _)| *id).collect();
        forget_deletions(client, tenant, &kept_ids).await?;
        remove_phones(client, tenant, &kept_ids, outcome).await?;
        insert_phones(client, tenant, &kept, Conflicts::Ignore, outcome).await?;
    }
    Ok(())
}

/// True when PostgreSQL aborted a write that wrote nothing, so running it again in a
/// new transaction is the answer: a unique violation, a deadlock or a serialization
/// conflict. A tenant's writers take turns (`BatchWriter::begin`), so these should not
/// happen between them; the retry stays for what PostgreSQL may abort regardless.
pub fn worth_retrying(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<tokio_postgres::Error>()
            .and_then(tokio_postgres::Error::code)
            .is_some_and(|code| {
                [
                    SqlState::UNIQUE_VIOLATION,
                    SqlState::T_R_DEADLOCK_DETECTED,
                    SqlState::T_R_SERIALIZATION_FAILURE,
                ]
                .contains(code)
            })
    })
}

/// Records the source time of deletions that carry one (the later time wins).
async fn remember_deletions(
    client: &impl GenericClient,
    tenant: TenantId,
    deletes: &[&str],
    state: &HashMap<&str, Stored>,
) -> anyhow::Result<()> {
    let (ids, times): (Vec<&str>, Vec<DateTime<Utc>>) = deletes
        .iter()
        .filter_map(|id| match state.get(id) {
            Some(Stored::Absent(Some(at))) => Some((*id, *at)),
            _ => None,
        })
        .unzip();
    if ids.is_empty() {
        return Ok(());
    }
    client
        .execute(
            "INSERT INTO contact_tombstones AS t (tenant_id, crm_id, deleted_at)
             SELECT $1, * FROM UNNEST($2::text[], $3::timestamptz[])
             ON CONFLICT (tenant_id, crm_id)
             DO UPDATE SET deleted_at = greatest(t.deleted_at, EXCLUDED.deleted_at)",
            &[&tenant.0, &ids, &times],
        )
        .await
        .context("remembering deletions")?;
    Ok(())
}

/// Drops the deletion times of contacts written again.
async fn forget_deletions(
    client: &impl GenericClient,
    tenant: TenantId,
    ids: &[&str],
) -> anyhow::Result<()> {
    if ids.is_empty() {
        return Ok(());
    }
    client
        .execute(
            "DELETE FROM contact_tombstones WHERE tenant_id = $1 AND crm_id = ANY($2)",
            &[&tenant.0, &ids],
        )
        .await
        .context("forgetting deletions")?;
    Ok(())
}

/// Forgets deletion times older than `days`, of every tenant (no sync is that late).
pub async fn prune_tombstones(client: &impl GenericClient, days: u32) -> anyhow::Result<u64> {
    client
        .execute(
            "DELETE FROM contact_tombstones WHERE deleted_at < now() - make_interval(days => $1)",
            &[&(days as i32)],
        )
        .await
        .context("pruning deletion times")
}

/// Deletes the numbers of these contacts, noting them as touched.
async fn remove_phones(
    client: &impl GenericClient,
    tenant: TenantId,
    ids: &[&str],
    outcome: &mut WriteOutcome,
) -> anyhow::Result<()> {
    if ids.is_empty() {
        return Ok(());
    }
    let old = client
        .query(
            "DELETE FROM contact_phones WHERE tenant_id = $1 AND crm_id = ANY($2) RETURNING number",
            &[&tenant.0, &ids],
        )
        .await
        .context("removing old phone numbers")?;
    outcome
        .numbers
        .released
        .extend(old.iter().map(|r| r.get::<_, String>(0)));
    Ok(())
}

/// True when an incoming source time is older than the stored one. Without both times
/// there is nothing to order by, and the write applies.
fn is_older(incoming: Option<DateTime<Utc>>, stored: Option<DateTime<Utc>>) -> bool {
    matches!((incoming, stored), (Some(i), Some(s)) if i < s)
}

/// Inserts contacts that did not exist when the batch looked.
async fn insert_contacts(
    client: &impl GenericClient,
    tenant: TenantId,
    rows: &[(&str, &ContactInput)],
) -> anyhow::Result<()> {
    let columns = Columns::new(rows);
    client
        .execute(contact_columns::INSERT.as_str(), &columns.params(&tenant.0))
        .await
        .context("inserting contacts")?;
    Ok(())
}

/// Upserts the contacts; returns the ids actually written (the SQL ordering guard may
/// refuse some).
async fn upsert_contacts(
    client: &impl GenericClient,
    tenant: TenantId,
    rows: &[(&str, &ContactInput)],
) -> anyhow::Result<HashSet<String>> {
    let columns = Columns::new(rows);
    let written = client
        .query(contact_columns::UPSERT.as_str(), &columns.params(&tenant.0))
        .await
        .context("upserting contacts")?;
    Ok(written.iter().map(|r| r.get(0)).collect())
}

/// What inserting a number that a contact already has does.
#[derive(Clone, Copy)]
enum Conflicts {
    /// Fails: the contacts are new, so they have no numbers yet.
    Fail,
    Ignore,
}

async fn insert_phones(
    client: &impl GenericClient,
    tenant: TenantId,
    rows: &[(&str, &ContactInput)],
    conflicts: Conflicts,
    outcome: &mut WriteOutcome,
) -> anyhow::Result<()> {
    let (ids, numbers): (Vec<&str>, Vec<&str>) = rows
        .iter()
        .flat_map(|(id, c)| c.phones.iter().map(move |p| (*id, p.as_str())))
        .unzip();
    if ids.is_empty() {
        return Ok(());
    }
    let statement = match conflicts {
        Conflicts::Fail => {
            "INSERT INTO contact_phones (tenant_id, crm_id, number)
             SELECT $1, * FROM UNNEST($2::text[], $3::text[])"
        }
        Conflicts::Ignore => {
            "INSERT INTO contact_phones (tenant_id, crm_id, number)
             SELECT $1, * FROM UNNEST($2::text[], $3::text[]) ON CONFLICT DO NOTHING"
        }
    };
    client
        .execute(statement, &[&tenant.0, &ids, &numbers])
        .await
        .context("inserting phone numbers")?;
    outcome
        .numbers
        .claimed
        .extend(numbers.iter().map(|n| (*n).to_owned()));
    Ok(())
}

/// Starts noting the ids a snapshot holds, in a temporary table of the writing
/// transaction (gone when it ends, committed or not): the contacts missing from the
/// snapshot are then found in one statement, whatever its size.
pub async fn begin_snapshot(client: &impl GenericClient) -> anyhow::Result<()> {
    client
        .batch_execute("CREATE TEMPORARY TABLE snapshot_ids (crm_id text NOT NULL) ON COMMIT DROP")
        .await
        .context("starting a snapshot")
}

/// Notes ids the snapshot holds (see [`begin_snapshot`]).
pub async fn note_snapshot_ids(client: &impl GenericClient, ids: &[&str]) -> anyhow::Result<()> {
    client
        .execute(
            "INSERT INTO snapshot_ids (crm_id) SELECT unnest($1::text[])",
            &[&ids],
        )
        .await
        .context("noting a snapshot's ids")?;
    Ok(())
}

/// The tenant's contacts the snapshot did not name, in id order.
pub async fn missing_from_snapshot(
    client: &impl GenericClient,
    tenant: TenantId,
) -> anyhow::Result<Vec<CrmId>> {
    // A temporary table has no statistics until asked: without them the planner takes it
    // for a few rows and may probe it once per contact.
    client
        .batch_execute("ANALYZE snapshot_ids")
        .await
        .context("counting a snapshot's ids")?;
    let rows = client
        .query(
            "SELECT c.crm_id FROM contacts c
             WHERE c.tenant_id = $1
               AND NOT EXISTS (SELECT 1 FROM snapshot_ids s WHERE s.crm_id = c.crm_id)
             ORDER BY c.crm_id",
            &[&tenant.0],
        )
        .await
        .context("finding contacts missing from a snapshot")?;
    rows.iter().map(crm_id).collect()
}

/// Removes every contact of a tenant (used when `demo` refreshes its data) and notifies
/// their numbers, so every instance forgets the answers it holds for them.
pub async fn delete_all(client: &impl GenericClient, tenant: TenantId) -> anyhow::Result<u64> {
    let phones = client
        .query(
            "DELETE FROM contact_phones WHERE tenant_id = $1 RETURNING number",
            &[&tenant.0],
        )
        .await
        .context("deleting phone numbers")?;
    let deleted = client
        .execute("DELETE FROM contacts WHERE tenant_id = $1", &[&tenant.0])
        .await
        .context("deleting contacts")?;
    let mut numbers = ChangedNumbers {
        released: phones.iter().map(|row| row.get(0)).collect(),
        claimed: Vec::new(),
    };
    numbers.settle();
    notify::contacts_changed(client, tenant, &numbers).await?;
    Ok(deleted)
}
