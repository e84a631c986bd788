//! Screen-pop signing keys and the lookup log.

use anyhow::Context;
use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use rand::RngCore;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::Type;

use crate::domain::TenantId;

/// A tenant's signing key.
#[derive(Clone)]
pub struct PopupKey {
    pub tenant: TenantId,
    pub key_id: i32,
    pub secret: [u8; 32],
}

impl std::fmt::Debug for PopupKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PopupKey({}, {}, <secret>)", self.tenant, self.key_id)
    }
}

fn key_from_row(row: &tokio_postgres::Row) -> Option<PopupKey> {
    let secret: &[u8] = row.get("secret");
    Some(PopupKey {
        tenant: TenantId(row.get("tenant_id")),
        key_id: row.get("key_id"),
        secret: secret.try_into().ok()?,
    })
}

/// Adds a new signing key for the tenant (the one that signs from now on).
pub async fn rotate_key(client: &impl GenericClient, tenant: TenantId) -> anyhow::Result<i32> {
    let mut secret = [0u8; 32];
    rand::rng().fill_bytes(&mut secret);
    let row = client
        .query_one(
            "INSERT INTO popup_keys (tenant_id, key_id, secret)
             SELECT $1, coalesce(max(key_id), 0) + 1, $2 FROM popup_keys WHERE tenant_id = $1
             RETURNING key_id",
            &[&tenant.0, &secret.as_slice()],
        )
        .await
        .context("adding a popup key")?;
    super::notify::config_changed(client).await?;
    Ok(row.get(0))
}

/// Removes one of the tenant's older signing keys: links it signed stop verifying at once.
/// The newest key signs new links, so it stays until another replaces it.
pub async fn retire_key(
    client: &impl GenericClient,
    tenant: TenantId,
    key_id: i32,
) -> anyhow::Result<()> {
    let row = client
        .query_one(
            "WITH newest AS (SELECT max(key_id) AS key_id FROM popup_keys WHERE tenant_id = $1),
                  retired AS (
                      DELETE FROM popup_keys
                      WHERE tenant_id = $1 AND key_id = $2 AND key_id < (SELECT key_id FROM newest)
                      RETURNING key_id)
             SELECT (SELECT key_id FROM newest), EXISTS (SELECT 1 FROM retired)",
            &[&tenant.0, &key_id],
        )
        .await
        .context("retiring a popup key")?;
    let newest: Option<i32> = row.get(0);
    let retired: bool = row.get(1);
    if !retired {
        anyhow::ensure!(
            Some(key_id) != newest,
            "key {key_id} is the newest and signs new links: `popup rotate-key` first"
        );
        anyhow::bail!("the tenant has no key {key_id}");
    }
    super::notify::config_changed(client).await?;
    Ok(())
}

/// Gives every tenant without a signing key its first one.
pub async fn ensure_keys(client: &impl GenericClient) -> anyhow::Result<()> {
    let rows = client
        .query(
            "SELECT id FROM tenants t WHERE NOT EXISTS (SELECT 1 FROM popup_keys k WHERE k.tenant_id = t.id)",
            &[],
        )
        .await
        .context("finding tenants without popup keys")?;
    for row in rows {
        rotate_key(client, TenantId(row.get(0))).await?;
    }
    Ok(())
}

/// Every signing key of every tenant (for the in-memory directory).
pub async fn all_keys(client: &impl GenericClient) -> anyhow::Result<Vec<PopupKey>> {
    let rows = client
        .query(
            "SELECT tenant_id, key_id, secret FROM popup_keys ORDER BY tenant_id, key_id",
            &[],
        )
        .await
        .context("loading popup keys")?;
    Ok(rows.iter().filter_map(key_from_row).collect())
}

/// One key, to verify a link.
pub async fn key(
    client: &impl GenericClient,
    tenant: TenantId,
    key_id: i32,
) -> anyhow::Result<Option<PopupKey>> {
    let row = client
        .query_opt(
            "SELECT tenant_id, key_id, secret FROM popup_keys WHERE tenant_id = $1 AND key_id = $2",
            &[&tenant.0, &key_id],
        )
        .await
        .context("reading a popup key")?;
    Ok(row.as_ref().and_then(key_from_row))
}

/// The newest key of a tenant (signs new links).
pub async fn newest_key(
    client: &impl GenericClient,
    tenant: TenantId,
) -> anyhow::Result<Option<PopupKey>> {
    let row = client
        .query_opt(
            "SELECT tenant_id, key_id, secret FROM popup_keys WHERE tenant_id = $1 ORDER BY key_id DESC LIMIT 1",
            &[&tenant.0],
        )
        .await
        .context("reading a popup key")?;
    Ok(row.as_ref().and_then(key_from_row))
}

/// How a lookup went, as the log records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LookupOutcomeKind {
    Found,
    Unknown,
    Degraded,
}

impl LookupOutcomeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Found => "found",
            Self::Unknown => "unknown",
            Self::Degraded => "degraded",
        }
    }
}

/// One logged lookup.
#[derive(Debug, Clone)]
pub struct LogEntry {
    pub tenant: TenantId,
    pub at: DateTime<Utc>,
    pub number: Option<String>,
    pub dnid: Option<String>,
    pub crm_id: Option<String>,
    pub outcome: LookupOutcomeKind,
    pub latency_us: i32,
}

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
                "COPY lookup_log (tenant_id, at, number, dnid, crm_id, outcome, latency_us)
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

/// A past lookup of one number, for the screen pop.
#[derive(Debug, Clone)]
pub struct RecentCall {
    pub at: DateTime<Utc>,
    pub dnid: Option<String>,
    pub outcome: String,
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

/// Deletes log entries older than `days`; returns how many.
pub async fn prune_log(client: &impl GenericClient, days: u32) -> anyhow::Result<u64> {
    client
        .execute(
            "DELETE FROM lookup_log WHERE at < now() - make_interval(days => $1)",
            &[&(days as i32)],
        )
        .await
        .context("pruning the lookup log")
}
