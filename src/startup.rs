//! Builds the application the same way for production and tests: pools, migrations,
//! in-memory state and its listener, supervised background tasks, route table and
//! listener socket.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::{App, HttpServer, web};
use anyhow::Context;
use url::Url;

use crate::calls::ingest::EventWriter;
use crate::config::ServeSettings;
use crate::contacts::{self, LocalCopies};
use crate::dial::click2call::Click2Call;
use crate::http::batch_gate::{self, BatchGate};
use crate::http::rate_limit::RateLimits;
use crate::http::state::{AppState, Probes};
use crate::http::{self, middleware};
use crate::jobs::{Supervisor, retention};
use crate::live::directory::Directory;
use crate::live::listener::{Listener, Wake};
use crate::lookup::LookupService;
use crate::lookup::batcher::LookupBatcher;
use crate::lookup::cache::AnswerCache;
use crate::lookup::known_numbers::{IndexGauges, KnownNumbers};
use crate::lookup::log::{LogWriter, LookupLog};
use crate::metrics::Metrics;
use crate::outbound::{self, Resolver};
use crate::store;
use crate::webhook;

/// How long start-up waits for the directory and number index before serving anyway
/// (lookups then ask the database until they are loaded).
const INITIAL_LOAD_WAIT: Duration = Duration::from_secs(30);
/// Writes and administrative reads may wait this long for a connection.
const PRIMARY_POOL_WAIT: Duration = Duration::from_secs(1);
/// How long a stopping gateway waits for the lookup log's last entries to be written.
const LOG_FLUSH_WAIT: Duration = Duration::from_secs(10);

pub struct Application {
    server: Server,
    port: u16,
    log_writer: LogWriter,
    jobs: Supervisor,
}

impl Application {
    /// Migrates the database, loads in-memory state and binds the listener;
    /// `run_until_stopped` serves.
    pub async fn build(settings: &ServeSettings) -> anyhow::Result<Self> {
        Self::build_resolving(settings, outbound::resolve::system()).await
    }

    /// As [`Application::build`], with the names of outbound targets (web services, HTTP
    /// dialers) resolved by `resolver` (the system's in production).
    pub async fn build_resolving(
        settings: &ServeSettings,
        resolver: Arc<dyn Resolver>,
    ) -> anyhow::Result<Self> {
        outbound::tls::install_default_provider();
        match store::secrets::keys().context("the secrets key")? {
            Some(_) => tracing::info!("secrets at rest are sealed with CIDGATE_SECRETS_KEY"),
            None => tracing::warn!(
                "no CIDGATE_SECRETS_KEY (or CIDGATE_SECRETS_KEY_FILE): webhook signing secrets, \
                 secret headers and dialer credentials are stored in plaintext"
            ),
        }
        // Before any work: a budget too small for one batch parse is not started.
        let batch_parses = batch_gate::parses_within_budget(settings)?;
        let pool_size = settings.db_pool_size.into();
        let primary_url = settings.database.database_url.expose();
        let pool = store::connect_pool(primary_url, pool_size, PRIMARY_POOL_WAIT)?;
        migrate_when_reachable(&pool, Duration::from_secs(settings.db_start_wait_secs)).await?;
        let start_wait = Duration::from_secs(settings.db_start_wait_secs.max(1));
        store::with_client(&pool, start_wait, async |client| {
            store::signing_keys::ensure(&*client).await
        })
        .await
        .context("creating screen-pop signing keys")?;
        let read_pool = match &settings.database_read_url {
            Some(url) => Some(
                store::connect_pool(url.expose(), pool_size, settings.lookup_deadline())
                    .context("DATABASE_READ_URL")?,
            ),
            None => None,
        };
        let lookup_pool = read_pool.clone().unwrap_or_else(|| pool.clone());

        // The phone-number metadata loads on first use (about half a second): load it now,
        // not during the first call's lookup.
        crate::domain::PhoneNumber::warm_up();
        let metrics = Metrics::new();
        let jobs = Supervisor::new(metrics.clone());
        let cache = AnswerCache::new(settings.cache_settings());
        let index = KnownNumbers::new(
            usize::try_from(settings.known_numbers_max_bytes).unwrap_or(usize::MAX),
            IndexGauges {
                bytes: metrics.gauges.known_numbers_bytes.clone(),
                dropped_tenants: metrics.gauges.known_numbers_dropped_tenants.clone(),
            },
        );
        let directory = Directory::default();
        let local = LocalCopies {
            cache: cache.clone(),
            index: index.clone(),
        };
        let roles = settings.webhooks.roles;
        let delivery_wake = Wake::default();
        // Its loads run on a connection of its own beside its LISTEN connection: a pool
        // held by a burst of writes must not delay them, and the LISTEN connection stays
        // free of transactions and updates.
        let listener_pool = store::connect_pool(primary_url, 1, PRIMARY_POOL_WAIT)?;
        let mut listener = Listener::new(
            primary_url,
            listener_pool,
            local.clone(),
            directory.clone(),
            metrics.clone(),
        )?;
        if roles.deliver {
            listener = listener.waking_deliveries(delivery_wake.clone());
        }
        let spam = crate::trust::SpamList::default();
        listener = listener.keeping_spam(spam.clone());
        let mut listening = listener.spawn(&jobs);
        if tokio::time::timeout(INITIAL_LOAD_WAIT, listening.wait_for(|ready| *ready))
            .await
            .is_err()
        {
            tracing::warn!(
                "serving before the number index loaded; lookups ask the database meanwhile"
            );
        }

        let listener = TcpListener::bind(settings.listen)
            .with_context(|| format!("binding CIDGATE_LISTEN={}", settings.listen))?;
        let port = listener.local_addr()?.port();
        let public_url = match &settings.public_url {
            Some(url) => url.clone(),
            None => derived_public_url(settings.listen.ip(), port)?,
        };
        let database = LookupBatcher::spawn(
            &jobs,
            lookup_pool,
            settings.lookup_statements.into(),
            Duration::from_millis(settings.db_timeout_ms),
            metrics.clone(),
        );
        // Contact writes (sync API, and what CRM sources find) share one writer.
        let write_timeout = Duration::from_millis(settings.write_timeout_ms);
        let writer = contacts::Writer::new(pool.clone(), write_timeout, Some(local));
        let network = outbound::Network::new(
            settings.webhooks.client.webhook_allow_networks.clone(),
            resolver,
        );
        let sources = crate::sources::Sources::new(
            pool.clone(),
            writer.clone(),
            crate::sources::clients(&network)?,
            crate::sources::Ttls::default(),
        );
        sources.reload().await.context("loading CRM sources")?;
        sources.spawn(&jobs);
        let lookup = LookupService::new(
            Arc::new(crate::sources::Chain {
                mirror: database,
                sources: sources.clone(),
            }),
            cache.clone(),
            index.clone(),
            settings.lookup_deadline(),
            metrics.clone(),
        );
        // Its own connections: the writer keeps a statement open most of the time under
        // traffic, which would otherwise take one of the connections lookups and sync
        // writes share (one for the writer, one for the retention job).
        let log_pool = store::connect_pool(primary_url, 2, PRIMARY_POOL_WAIT)?;
        let (lookup_log, log_writer) = LookupLog::spawn(
            &jobs,
            log_pool.clone(),
            settings.lookup_log_buffer as usize,
            Duration::from_millis(settings.lookup_log_gather_ms.into()),
            metrics.clone(),
        );
        // The partitions for calls arriving now exist before the first request.
        retention::maintain_call_partitions(&pool, settings.call_retention_days)
            .await
            .context("creating call partitions")?;
        let mut steps = retention::standard_steps(&log_pool, settings.lookup_log_retention_days);
        steps.push(retention::call_partitions_step(
            &pool,
            settings.call_retention_days,
        ));
        steps.push(webhook::retention_step(
            &log_pool,
            settings.webhooks.webhook_log_retention_days,
        ));
        retention::spawn(&jobs, retention::Schedule::HOURLY, steps, metrics.clone());
        let deliverer = webhook::deliverer(
            primary_url,
            &settings.webhooks,
            Some((directory.clone(), public_url.clone())),
            Some(metrics.clone()),
            &network,
        )?;
        if roles.deliver {
            webhook::worker::spawn(&jobs, deliverer.clone(), delivery_wake);
        }
        let events = EventWriter::spawn(
            &jobs,
            pool.clone(),
            Duration::from_millis(settings.write_timeout_ms),
            crate::domain::CallCaps {
                max_legs: settings.call_max_legs as usize,
                max_events: settings.call_max_events as usize,
            },
        );
        let write_timeout = Duration::from_millis(settings.write_timeout_ms);
        let click2call = Click2Call::spawn(
            &jobs,
            pool.clone(),
            write_timeout,
            events.clone(),
            crate::dial::http::clients(&network)?,
        );
        let probes = Probes::connect(
            primary_url,
            settings.database_read_url.as_ref().map(|url| url.expose()),
            http::routes::health::CHECK_WITHIN,
        )?;
        let batch_gate = BatchGate::new(
            batch_parses,
            Duration::from_millis(settings.batch_parse_wait_ms),
            metrics.gauges.batch_parses.clone(),
        );
        let state = web::Data::new(AppState {
            contacts: writer,
            pool,
            lookup,
            cache,
            index,
            spam,
            directory,
            metrics,
            listening,
            public_url,
            limits: RateLimits::new(settings.rate_settings()),
            lookup_log,
            jobs: jobs.clone(),
            events,
            call_retention_days: settings.call_retention_days,
            read_pool,
            probes,
            write_timeout,
            body_timeout: Duration::from_millis(settings.body_timeout_ms),
            batch_gate,
            snapshot_max_bytes: settings.snapshot_max_bytes,
            trusted_proxies: settings.trusted_proxies.clone().into(),
            forwarded_header: settings.forwarded_header,
            deliverer,
            click2call,
            sources,
        });
        let cors_origins = settings.cors_origins.clone();
        let mut server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .configure(if roles.http {
                    http::configure
                } else {
                    http::configure_operations
                })
                .wrap(middleware::cors(&cors_origins))
                .wrap(actix_web::middleware::from_fn(
                    middleware::enforce_request_limits,
                ))
                .wrap(middleware::security_headers())
                .wrap_fn(middleware::observe)
        })
        .listen(listener)?;
        if let Some(workers) = settings.workers {
            server = server.workers(workers.into());
        }
        tracing::info!(port, "cidgate listening");
        Ok(Self {
            server: server.run(),
            port,
            log_writer,
            jobs,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The background tasks: their statuses, and (for tests) a way to kill one.
    pub fn jobs(&self) -> Supervisor {
        self.jobs.clone()
    }

    /// Serves until SIGINT/SIGTERM; in-flight requests finish first, then the lookup
    /// log's buffered entries are written and the other background tasks end.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let served = self.server.await;
        self.log_writer.stop(LOG_FLUSH_WAIT).await;
        self.jobs.shutdown();
        served
    }
}

/// Migrates, waiting up to `wait` for a database that cannot be reached yet (one that
/// starts after the gateway, or a short outage during a deploy).
async fn migrate_when_reachable(
    pool: &deadpool_postgres::Pool,
    wait: Duration,
) -> anyhow::Result<()> {
    let give_up = tokio::time::Instant::now() + wait;
    let mut pause = Duration::from_millis(250);
    loop {
        match store::migrate(pool).await {
            Err(e)
                if store::is_unreachable(&e) && tokio::time::Instant::now() + pause < give_up =>
            {
                tracing::warn!(
                    error = format!("{e:#}"),
                    retry_in_ms = pause.as_millis() as u64,
                    "waiting for the database"
                );
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(5));
            }
            migrated => return migrated,
        }
    }
}

/// The public URL when none is configured: the listening address itself (a socket
/// address brackets an IPv6 host, `http://[::1]:8080`).
fn derived_public_url(ip: std::net::IpAddr, port: u16) -> anyhow::Result<Url> {
    Url::parse(&format!("http://{}", std::net::SocketAddr::new(ip, port)))
        .context("deriving the public URL from CIDGATE_LISTEN")
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_derived_public_url_brackets_ipv6() {
        let url = |ip: &str| super::derived_public_url(ip.parse().unwrap(), 8080).unwrap();
        assert_eq!(url("::1").as_str(), "http://[::1]:8080/");
        assert_eq!(url("127.0.0.1").as_str(), "http://127.0.0.1:8080/");
    }
}
