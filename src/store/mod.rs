//! All SQL lives here. Functions take `&impl GenericClient` so callers can run several
//! in one transaction, and a `TenantId` first so no query forgets whose data it touches.

pub mod agents;
pub mod allowlist;
pub mod call_partitions;
mod call_rows;
mod call_summaries;
pub mod calls;
pub mod cdr;
pub mod click2call;
mod contact_columns;
pub mod contacts;
pub mod deliveries;
pub mod directory;
pub mod leg_deliveries;
pub mod lookup_log;
pub mod notify;
pub mod phones;
pub mod profiles;
pub mod report_rows;
pub mod report_stats;
pub mod reports;
pub mod secrets;
pub mod service_users;
pub mod sessions;
pub mod signing_keys;
pub mod sources;
pub mod spam;
pub mod tenants;
pub mod tls;
pub mod tokens;

use std::time::Duration;

use anyhow::Context;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};

use tls::DatabaseTarget;

/// A database operation that did not finish in time: the database is hung or overloaded.
#[derive(Debug, thiserror::Error)]
#[error("the database did not answer within {} ms", .0.as_millis())]
pub struct TimedOut(pub Duration);

/// Whether `error` says the database could not be reached or did not answer (rather
/// than refusing what was asked): worth trying again later.
pub fn is_unreachable(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<deadpool_postgres::PoolError>()
            .is_some()
            || cause.downcast_ref::<TimedOut>().is_some()
            || cause
                .downcast_ref::<tokio_postgres::Error>()
                .is_some_and(|e| e.as_db_error().is_none())
    })
}

/// Whether the database refused a value itself (SQLSTATE class 22, "data exception": a
/// NUL in text, a number out of range): the request's fault, not the database's.
pub fn is_data_error(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<tokio_postgres::Error>()
            .and_then(tokio_postgres::Error::code)
            .is_some_and(|code| code.code().starts_with("22"))
    })
}

/// Runs `work` on a pooled connection within `limit` (the wait for the connection
/// included). A connection whose work timed out is closed, not handed to the next
/// caller: it may be mid-statement on a hung server.
pub async fn with_client<T>(
    pool: &Pool,
    limit: Duration,
    work: impl AsyncFnOnce(&mut deadpool_postgres::Object) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    // `Duration::MAX` (an import's "no limit") would overflow an instant.
    let now = tokio::time::Instant::now();
    let deadline = now
        .checked_add(limit)
        .unwrap_or_else(|| now + Duration::from_secs(u32::MAX.into()));
    let mut client = tokio::time::timeout_at(deadline, pool.get())
        .await
        .map_err(|_| TimedOut(limit))??;
    let outcome = tokio::time::timeout_at(deadline, work(&mut client)).await;
    match outcome {
        Ok(result) => result,
        Err(_) => {
            drop(deadpool_postgres::Object::take(client));
            Err(TimedOut(limit).into())
        }
    }
}

/// The cheapest question the database can answer: whether it answers at all.
pub async fn ping(client: &tokio_postgres::Client) -> Result<(), tokio_postgres::Error> {
    client.simple_query("SELECT 1").await.map(drop)
}

mod embedded {
    refinery::embed_migrations!("sql");
}

/// Builds a connection pool; connections are opened lazily, so this does not fail
/// when the database is down. `wait` bounds how long a caller waits for a free
/// connection: an exhausted pool fails fast rather than queueing requests.
pub fn connect_pool(database_url: &str, max_size: usize, wait: Duration) -> anyhow::Result<Pool> {
    let DatabaseTarget { mut config, tls } = DatabaseTarget::parse(database_url)?;
    if config.get_application_name().is_none() {
        config.application_name("cidgate");
    }
    config
        .connect_timeout(Duration::from_secs(2))
        .keepalives(true)
        .keepalives_idle(Duration::from_secs(30));
    let manager = Manager::from_config(
        config,
        tls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(max_size)
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(wait))
        .create_timeout(Some(Duration::from_secs(2)))
        .recycle_timeout(Some(Duration::from_secs(1)))
        .build()
        .context("building the database pool")
}

/// Applies pending migrations from `sql/`; a no-op when all are applied. Instances
/// starting together take turns (an advisory lock), so none fails on another's work.
pub async fn migrate(pool: &Pool) -> anyhow::Result<()> {
    let mut client = pool.get().await.context("connecting to the database")?;
    client
        .execute(
            "SELECT pg_advisory_lock(hashtext('cidgate_migrations'))",
            &[],
        )
        .await
        .context("waiting for the migration lock")?;
    let report = embedded::migrations::runner()
        .run_async(&mut **client)
        .await
        .context("running migrations");
    let unlocked = client
        .execute(
            "SELECT pg_advisory_unlock(hashtext('cidgate_migrations'))",
            &[],
        )
        .await;
    let report = report?;
    unlocked.context("releasing the migration lock")?;
    for migration in report.applied_migrations() {
        tracing::info!(migration = %migration, "applied migration");
    }
    Ok(())
}

/// The SQLSTATE of a database error, for turning named violations into client errors.
pub(crate) fn sql_state(error: &tokio_postgres::Error) -> Option<&tokio_postgres::error::SqlState> {
    error.as_db_error().map(|e| e.code())
}
