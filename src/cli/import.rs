//! `cidgate import`: a CRM export as CSV into a tenant's mirror, all or nothing.

use std::fs::File;
use std::io::BufReader;
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use deadpool_postgres::Pool;

use super::db::{find_tenant, migrated_pool};
use crate::config::DatabaseArgs;
use crate::contacts::import::{self, ImportCounts};
use crate::domain::{Tenant, WriteOutcome};
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
    let mut attempt = 1;
    let (outcome, rejected) = loop {
        match import_once(&pool, &tenant, &args.file).await {
            // Lost a race with another writer (a contact of the file created meanwhile,
            // or a deadlock with a concurrent batch): nothing was written, and the next
            // attempt sees what that writer did.
            Err(e) if attempt < 3 && store::contacts::worth_retrying(&e) => {
                eprintln!("a concurrent write got in the way; importing again");
                attempt += 1;
            }
            result => break result?,
        }
    };

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

/// One attempt at an import: the writes and the rejected rows, committed.
async fn import_once(
    pool: &Pool,
    tenant: &Tenant,
    path: &std::path::Path,
) -> anyhow::Result<(WriteOutcome, Vec<import::RejectedRow>)> {
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;

    // The parser runs on its own thread, one piece ahead: a bounded channel keeps it
    // from running further ahead of the writes.
    let (pieces, mut parsed) = tokio::sync::mpsc::channel::<import::ParsedImport>(1);
    let region = tenant.region;
    let parser = tokio::task::spawn_blocking(move || {
        import::read_csv(BufReader::new(file), region, IMPORT_PIECE, |piece| {
            pieces
                .blocking_send(piece)
                .map_err(|_| anyhow::anyhow!("the import stopped writing"))
        })
    });

    // All or nothing: one transaction, dropped (rolled back) on any error.
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    let mut writer = store::contacts::BatchWriter::begin(&tx, tenant.id).await?;
    let mut rejected = Vec::new();
    while let Some(piece) = parsed.recv().await {
        writer.write(&piece.ops).await?;
        rejected.extend(piece.rejected);
    }
    parser
        .await
        .context("the CSV parser failed")?
        .with_context(|| format!("{} is malformed; nothing was imported", path.display()))?;
    let outcome = writer.finish().await?;
    tx.commit().await?;
    Ok((outcome, rejected))
}
