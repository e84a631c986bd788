//! `cidgate import`: a CRM export as CSV into a tenant's mirror, all or nothing.

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use clap::Args;

use super::db::{find_tenant, migrated_pool};
use crate::config::DatabaseArgs;
use crate::contacts::import::{self, ImportCounts};
use crate::contacts::{WriteError, WriteTx, Writer};
use crate::domain::Region;
use crate::store;

#[derive(Debug, Args)]
pub struct ImportArgs {
    #[arg(long)]
    tenant: String,
    /// CSV with a header row: id,name,phones,… (phones separated by `;`)
    file: PathBuf,
    #[command(flatten)]
    db: DatabaseArgs,
}

/// Rows parsed and written at a time: the file is parsed a piece ahead of the writes.
const IMPORT_PIECE: usize = store::contacts::CHUNK;

/// Imports the file; returns how many rows were rejected (the rest are written).
pub async fn run(args: ImportArgs) -> anyhow::Result<usize> {
    let pool = migrated_pool(&args.db).await?;
    let tenant = find_tenant(&pool, &args.tenant).await?;
    // No time limit: an import takes as long as its file. Nothing here to forget: the
    // gateways hear of the import through its notification.
    let writer = Writer::new(pool, Duration::MAX, None);
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
    for row in &rejected {
        for e in &row.errors {
            eprintln!("line {}: rejected: {} {}", row.line, e.field, e.message);
        }
    }
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

/// One attempt at an import: the file's writes into `tx`, all or nothing (an error drops
/// the transaction); answers the rejected rows.
async fn import_into(
    tx: &mut WriteTx<'_>,
    region: Region,
    path: &Path,
) -> anyhow::Result<Vec<import::RejectedRow>> {
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;

    // The parser runs on its own thread, one piece ahead: a bounded channel keeps it
    // from running further ahead of the writes.
    let (pieces, mut parsed) = tokio::sync::mpsc::channel::<import::ParsedImport>(1);
    let parser = tokio::task::spawn_blocking(move || {
        import::read_csv(BufReader::new(file), region, IMPORT_PIECE, |piece| {
            pieces
                .blocking_send(piece)
                .map_err(|_| anyhow::anyhow!("the import stopped writing"))
        })
    });

    let mut rejected = Vec::new();
    while let Some(piece) = parsed.recv().await {
        tx.write(&piece.ops).await?;
        rejected.extend(piece.rejected);
    }
    parser
        .await
        .context("the CSV parser failed")?
        .with_context(|| format!("{} is malformed; nothing was imported", path.display()))?;
    Ok(rejected)
}
