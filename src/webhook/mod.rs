//! Sending call data to CRMs (DESIGN §8): Standard Webhooks signing and the client
//! deliveries and `profile test` share (over `outbound`'s clients and SSRF guard).

pub mod client;
pub mod sign;
pub mod warn;

pub use crate::outbound::{Guard, Refused};
pub use client::{Attempt, ClientSettings, Signing, Verdict, WebhookClient};
pub mod deliver;
pub mod triggers;
pub mod worker;

pub use deliver::Deliverer;

use std::time::Duration;

use crate::config::webhooks::WebhookSettings;
use crate::jobs::retention::Step;
use crate::live::directory::Directory;
use crate::metrics::Metrics;
use crate::store;

/// Connections the delivery rounds use (their own: a busy queue never takes the
/// connections lookups and sync writes share).
const DELIVERY_POOL: usize = 6;
/// Each database step of a round.
const DB_TIMEOUT: Duration = Duration::from_secs(30);

/// The deliverer `serve` runs (and the API's `test` and `run` use).
pub fn deliverer(
    database_url: &str,
    settings: &WebhookSettings,
    popups: Option<(Directory, url::Url)>,
    metrics: Option<std::sync::Arc<Metrics>>,
    network: &crate::outbound::Network,
) -> anyhow::Result<Deliverer> {
    let client = WebhookClient::new(
        &ClientSettings {
            timeout: settings.client.timeout(),
            proxy: settings.client.webhook_proxy.clone(),
        },
        network,
    )?;
    Ok(Deliverer {
        pool: store::connect_pool(database_url, DELIVERY_POOL, Duration::from_secs(5))?,
        client,
        schedule: settings.webhook_retry_schedule.clone(),
        disable_after: settings.webhook_disable_after,
        db_timeout: DB_TIMEOUT,
        concurrency: settings.webhook_concurrency as usize,
        lease: Deliverer::lease_for(settings.client.timeout()),
        popups,
        metrics,
        warnings: Default::default(),
    })
}

/// The retention job's step for the delivery log.
pub fn retention_step(pool: &deadpool_postgres::Pool, days: u32) -> Step {
    let pool = pool.clone();
    Step::new("webhook_deliveries", move || {
        let pool = pool.clone();
        async move {
            store::with_client(&pool, Duration::from_secs(15 * 60), async |client| {
                store::deliveries::prune(&*client, days).await
            })
            .await
        }
    })
}
