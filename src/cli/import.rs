//! `cidgate import`: a CRM export as CSV into a tenant's mirror, all or nothing; with
//! `--replace`, a full export that replaces the mirror (see [`crate::contacts::snapshot`]).

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use clap::Args;

use super::db::TenantArgs;
use crate::contacts::import::{self, ImportCounts};
use crate::contacts::snapshot::{self, SnapshotError};
use crate::contacts::{WriteError, WriteTx, Writer};
use crate::domain::{Region, Tenant};
use crate::store;

#[derive(Debug, Args)]
pub struct ImportArgs {
    #[command(flatten)]
    at: TenantArgs,
    /// CSV with a header row: id,name,phones,… (phones separated by `;`)
    file: PathBuf,
    /// The file is a full snapshot: contacts it does not name are deleted, and any
    /// rejected row aborts the whole import
    #[arg(long)]
    replace: bool,
    /// With --replace, accept a file without data rows (it deletes every contact)
    #[arg(long, requires = "replace")]
    allow_empty: bool,
}

/// Rows parsed and written at a time: the file is parsed a piece ahead of the writes.
const IMPORT_PIECE: usize = store::contacts::CHUNK;

/// Imports the file; returns how many rows were rejected (the rest are written).
pub async fn run(args: ImportArgs) -> anyhow::Result<usize> {
    let (db, tenant) = args.at.open().await?;
    // No time limit: an import takes as long as its file. Nothing here to forget: the
    // gateways hear of the import through its notification.
    let writer = Writer::new(db.pool().clone(), Duration::MAX, None);
    if args.replace {
        replace(&writer, &tenant, &args).await?;
        return Ok(0);
    }
    let (outcome, rejected) = writer
        .write_with(tenant.id, async |tx| {
            // The attempt before lost a race with another writer (a contact of the file
            // created meanwhile, or a deadlock with a concurrent batch): nothing was
            // written, and this attempt sees what that writer did.
            if tx.attempt() > 1 {
                eprintln!("a concurrent write got in the way; importing again");
            }
            import_into(tx, tenant.region, &args.file).await
        })
        .await
        .map_err(WriteError::into_cause)?;

    let counts = ImportCounts::from_results(&outcome.results);
    report_rejected(&rejected);
    println!(
        "imported {} rows ({} created, {} updated, {} stale), rejected {} rows",
        outcome.results.len() - counts.stale,
        counts.created,
        counts.updated,
        counts.stale,
        rejected.len()
    );
    Ok(rejected.len())
}

/// `--replace`: the file replaces the tenant's contacts, or nothing is written.
async fn replace(writer: &Writer, tenant: &Tenant, args: &ImportArgs) -> anyhow::Result<()> {
    let path = &args.file;
    let replaced = snapshot::replace(writer, tenant.id, tenant.region, args.allow_empty, || {
        File::open(path)
            .map(BufReader::new)
            .with_context(|| format!("opening {}", path.display()))
            .map_err(SnapshotError::Malformed)
    })
    .await;
    let counts = match replaced {
        Ok(counts) => counts,
        Err(SnapshotError::Rejected(rows)) => {
            report_rejected(&rows);
            anyhow::bail!(
                "{} rows were rejected; nothing was imported or deleted",
                rows.len()
            );
        }
        Err(SnapshotError::Empty) => anyhow::bail!(
            "{} holds no contacts; nothing was deleted (--allow-empty deletes every contact)",
            path.display()
        ),
        Err(SnapshotError::Write(e)) => return Err(e.into_cause()),
        Err(other) => return Err(other.into()),
    };
    println!(
        "imported {} rows ({} created, {} updated, {} stale), rejected 0 rows, {} deleted",
        counts.created + counts.updated,
        counts.created,
        counts.updated,
        counts.stale,
        counts.deleted
    );
    Ok(())
}

fn report_rejected(rows: &[import::RejectedRow]) {
    for row in rows {
        for e in &row.errors {
            eprintln!("line {}: rejected: {} {}", row.line, e.field, e.message);
        }
    }
}

/// One attempt at an import: the file's writes into `tx`, all or nothing (an error drops
/// the transaction); answers the rejected rows.
async fn import_into(
    tx: &mut WriteTx<'_>,
    region: Region,
    path: &Path,
) -> anyhow::Result<Vec<import::RejectedRow>> {
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut rejected = Vec::new();
    import::stream_csv(BufReader::new(file), region, IMPORT_PIECE, async |piece| {
        tx.write(&piece.ops).await?;
        rejected.extend(piece.rejected);
        Ok(())
    })
    .await?;
    Ok(rejected)
}
