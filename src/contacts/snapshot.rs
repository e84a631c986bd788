//! Full snapshot sync: a CSV export of every contact of a tenant replaces its mirror in
//! one transaction. The rows are written as the import writes them, their ids noted on
//! the way; then every contact the snapshot does not name is deleted through the same
//! writes (released numbers, notifications to every instance). Lookups read the old
//! mirror until the commit and the new one after.

use std::collections::HashMap;
use std::io::Read;

use super::import::{self, ImportCounts, MalformedCsv, RejectedRow};
use super::{WriteError, Writer};
use crate::domain::{ContactRecord, Region, TenantId, WriteOp};
use crate::store::{self, contacts::CHUNK};

/// What a snapshot did; `updated` counts the rows identical to the stored contact too
/// (which are not written again).
pub type SnapshotCounts = ImportCounts;

/// Why a snapshot wrote nothing.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// Rows with invalid values, every one of them: a contact whose row was rejected
    /// would otherwise be deleted as missing.
    #[error("{} rows were rejected; nothing was written", .0.len())]
    Rejected(Vec<RejectedRow>),
    /// No data rows: most likely a failed export, which must not empty the mirror.
    #[error(
        "the snapshot holds no contacts; nothing was written (allow an empty snapshot to \
         delete every contact)"
    )]
    Empty,
    /// Not readable as CSV (the cause names the line).
    #[error("{0:#}")]
    Malformed(anyhow::Error),
    /// The input could not be read again for a second attempt (a request body).
    #[error("a concurrent write got in the way; send the snapshot again")]
    NotRepeatable,
    #[error(transparent)]
    Write(WriteError),
}

/// Replaces the tenant's mirror with the CSV `source` gives (asked once per attempt,
/// see [`Writer::write_with`]), in pieces of [`CHUNK`] rows. Nothing is written unless
/// every row is valid, and, unless `allow_empty`, the snapshot has at least one row.
pub async fn replace<R: Read + Send + 'static>(
    writer: &Writer,
    tenant: TenantId,
    region: Region,
    allow_empty: bool,
    mut source: impl FnMut() -> Result<R, SnapshotError>,
) -> Result<SnapshotCounts, SnapshotError> {
    let written = writer
        .write_with(tenant, async |tx| {
            let source = source()?;
            store::contacts::begin_snapshot(tx.transaction()).await?;
            let mut rejected: Vec<RejectedRow> = Vec::new();
            let mut rows = 0;
            let mut unchanged = 0;
            import::stream_csv(source, region, CHUNK, async |piece| {
                rows += piece.ops.len() + piece.rejected.len();
                rejected.extend(piece.rejected);
                // Once a row is rejected nothing will be written: the rest is only
                // parsed, so that every rejected line is reported.
                if rejected.is_empty() {
                    let ids: Vec<&str> = piece.ops.iter().map(|op| op.id().as_str()).collect();
                    store::contacts::note_snapshot_ids(tx.transaction(), &ids).await?;
                    let stored = store::contacts::get_many(tx.transaction(), tenant, &ids).await?;
                    let changed = without_unchanged(&piece.ops, &stored);
                    unchanged += piece.ops.len() - changed.len();
                    tx.write(&changed).await?;
                }
                Ok(())
            })
            .await
            .map_err(|e| match e.is::<MalformedCsv>() {
                true => SnapshotError::Malformed(e).into(),
                false => e,
            })?;
            if !rejected.is_empty() {
                return Err(SnapshotError::Rejected(rejected).into());
            }
            if rows == 0 && !allow_empty {
                return Err(SnapshotError::Empty.into());
            }
            let missing = store::contacts::missing_from_snapshot(tx.transaction(), tenant).await?;
            for ids in missing.chunks(CHUNK) {
                let deletes: Vec<WriteOp> = ids
                    .iter()
                    .map(|id| WriteOp::Delete(id.clone(), None))
                    .collect();
                tx.write(&deletes).await?;
            }
            Ok(unchanged)
        })
        .await;
    match written {
        Ok((outcome, unchanged)) => {
            let mut counts = SnapshotCounts::from_results(&outcome.results);
            counts.updated += unchanged;
            Ok(counts)
        }
        Err(WriteError::Failed(e)) => Err(e
            .downcast::<SnapshotError>()
            .unwrap_or_else(|e| SnapshotError::Write(WriteError::Failed(e)))),
        Err(contended) => Err(SnapshotError::Write(contended)),
    }
}

/// The ops of a piece minus the upserts that would store exactly what `stored` holds:
/// in a nightly export most rows are, and writing them again would cost as much as a
/// change and make every instance forget answers that did not change. An id named twice
/// in the piece is written as it comes (the order of its rows decides).
fn without_unchanged(ops: &[WriteOp], stored: &[ContactRecord]) -> Vec<WriteOp> {
    let stored: HashMap<&str, &ContactRecord> = stored.iter().map(|c| (c.id.as_str(), c)).collect();
    let mut named: HashMap<&str, usize> = HashMap::with_capacity(ops.len());
    for op in ops {
        *named.entry(op.id().as_str()).or_default() += 1;
    }
    ops.iter()
        .filter(|op| match op {
            WriteOp::Upsert(id, input) => {
                named[id.as_str()] > 1
                    || !stored
                        .get(id.as_str())
                        .is_some_and(|s| input.is_stored_as(s))
            }
            WriteOp::Delete(..) => true,
        })
        .cloned()
        .collect()
}
