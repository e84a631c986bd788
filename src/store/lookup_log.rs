//! The lookup log: written by binary `COPY`, read for a number's recent calls, pruned.

use anyhow::Context;
use deadpool_postgres::GenericClient;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::Type;

use crate::domain::{LogEntry, RecentCall, TenantId};

/// One binary `COPY` into the lookup log, open while entries stream in: the log takes a
/// row per call, and COPY costs PostgreSQL about half of what an `INSERT … UNNEST` of the
/// same rows does. Rows reach the server in small chunks as they are written, so neither
/// side does a whole batch's work in one burst; they become visible at `finish`.
pub struct LogCopy {
    writer: std::pin::Pin<Box<BinaryCopyInWriter>>,
}

impl LogCopy {
    pub async fn start(client: &tokio_postgres::Client) -> anyhow::Result<Self> {
        let sink = client
            .copy_in(
                "COPY lookup_log (tenant_id, at, number, dnid, crm_id, outcome, latency_us,
                                  verstat, attest, screened)
                 FROM STDIN (FORMAT binary)",
            )
            .await
            .context("starting the lookup log copy")?;
        let writer = BinaryCopyInWriter::new(
            sink,
            &[
                Type::INT8,
                Type::TIMESTAMPTZ,
                Type::TEXT,
                Type::TEXT,
                Type::TEXT,
                Type::TEXT,
                Type::INT4,
                Type::TEXT,
                Type::TEXT,
                Type::TEXT,
            ],
        );
        Ok(Self {
            writer: Box::pin(writer),
        })
    }

    pub async fn write(&mut self, entries: &[LogEntry]) -> anyhow::Result<()> {
        for e in entries {
            self.writer
                .as_mut()
                .write(&[
                    &e.tenant.0,
                    &e.at,
                    &e.number,
                    &e.dnid,
                    &e.crm_id,
                    &e.outcome.as_str(),
                    &e.latency_us,
                    &e.verstat,
                    &e.attest,
                    &e.screened,
                ])
                .await
                .context("writing the lookup log")?;
        }
        Ok(())
    }

    /// Ends the statement: every row written is stored, or none.
    pub async fn finish(mut self) -> anyhow::Result<()> {
        self.writer
            .as_mut()
            .finish()
            .await
            .context("writing the lookup log")?;
        Ok(())
    }
}

pub async fn recent_calls(
    client: &impl GenericClient,
    tenant: TenantId,
    number: &str,
    limit: i64,
) -> anyhow::Result<Vec<RecentCall>> {
    let rows = client
        .query(
            // The first condition is the index's key (sql/V13); the others drop the rows
            // of a hash collision.
            "SELECT at, dnid, outcome FROM lookup_log
             WHERE hashtextextended(number, tenant_id) = hashtextextended($2, $1)
               AND tenant_id = $1 AND number = $2
             ORDER BY at DESC LIMIT $3",
            &[&tenant.0, &number, &limit],
        )
        .await
        .context("reading recent calls")?;
    Ok(rows
        .iter()
        .map(|r| RecentCall {
            at: r.get(0),
            dnid: r.get(1),
            outcome: r.get(2),
        })
        .collect())
}

/// Deletes log entries older than their tenant's retention (`days` unless the tenant
/// set its own); returns how many.
pub async fn prune(client: &impl GenericClient, days: u32) -> anyhow::Result<u64> {
    // Each tenant's own retention where it set one; the bound on the newest cutoff lets
    // the BRIN index on `at` skip the recent blocks.
    client
        .execute(
            "WITH cutoffs AS (
                 SELECT id, now() - make_interval(days => coalesce(
                     (settings->>'lookup_log_retention_days')::int, $1)) AS cutoff
                 FROM tenants)
             DELETE FROM lookup_log l USING cutoffs c
             WHERE l.tenant_id = c.id AND l.at < c.cutoff
               AND l.at < (SELECT max(cutoff) FROM cutoffs)",
            &[&(days as i32)],
        )
        .await
        .context("pruning the lookup log")
}
