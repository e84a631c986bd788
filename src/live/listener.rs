//! Keeps this instance's in-memory state current with PostgreSQL `LISTEN`: contact
//! changes invalidate cache entries and reconcile the number index; configuration
//! changes reload the auth directory. Listens on a dedicated connection (not the pool, and
//! not through a transaction-pooling PgBouncer) and loads on a second one of its own: a
//! pool held by a burst of writes must not delay them. When that connection drops, the cache
//! is flushed — notifications may have been missed — and everything reloads once it is
//! back.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use deadpool_postgres::Pool;
use futures_util::StreamExt;
use tokio::sync::{mpsc, watch};
use tokio_postgres::{AsyncMessage, Notification};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::directory::Directory;
use crate::contacts::LocalCopies;
use crate::jobs::{Readiness, Supervisor};
use crate::metrics::{ChannelLabels, Metrics};
use crate::store::tls::DatabaseTarget;
use crate::store::{self, notify};
use crate::trust::SpamList;

const HEARTBEAT: Duration = Duration::from_secs(10);
const HEARTBEAT_TIMEOUT: Duration = Duration::from_secs(5);
const TOKEN_USE_FLUSH: Duration = Duration::from_secs(30);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// The listener's name in `/readyz` and the logs.
pub const TASK: &str = "listener";

#[derive(Clone)]
pub struct Listener {
    pub config: tokio_postgres::Config,
    pub tls: MakeRustlsConnect,
    /// The listener's own connection for loads (not the shared pool).
    pub pool: Pool,
    /// The cache and number index: what contact notifications make stale.
    pub local: LocalCopies,
    pub directory: Directory,
    pub metrics: Arc<Metrics>,
    /// Woken when deliveries are queued (`cidgate_deliveries`), on a delivering instance.
    pub deliveries: Option<Wake>,
    /// The tenants' flagged numbers (`cidgate_spam`).
    pub spam: SpamList,
}

impl Listener {
    pub fn new(
        database_url: &str,
        pool: Pool,
        local: LocalCopies,
        directory: Directory,
        metrics: Arc<Metrics>,
    ) -> anyhow::Result<Self> {
        let DatabaseTarget { mut config, tls } =
            DatabaseTarget::parse(database_url).context("DATABASE_URL")?;
        config
            .application_name("cidgate-listener")
            .connect_timeout(Duration::from_secs(5))
            .keepalives(true)
            .keepalives_idle(Duration::from_secs(10));
        Ok(Self {
            config,
            tls,
            pool,
            local,
            directory,
            metrics,
            deliveries: None,
            spam: SpamList::default(),
        })
    }

    /// Keeps `spam` current with the spam lists.
    pub fn keeping_spam(mut self, spam: SpamList) -> Self {
        self.spam = spam;
        self
    }

    /// Wakes `wake` whenever any instance queues web-service deliveries.
    pub fn waking_deliveries(mut self, wake: Wake) -> Self {
        self.deliveries = Some(wake);
        self
    }

    /// Runs under `jobs` until the process ends. `connected` is true while listening
    /// with state loaded.
    pub fn spawn(self, jobs: &Supervisor) -> watch::Receiver<bool> {
        let (connected_tx, connected) = watch::channel(false);
        let (listener, connected_tx) = (Arc::new(self), Arc::new(connected_tx));
        jobs.spawn(TASK, Readiness::Required, move || {
            listener.clone().run(connected_tx.clone())
        });
        connected
    }

    /// Listens, and after each lost connection reconnects with backoff. Only a panic
    /// ends it (the supervisor then runs it again).
    async fn run(self: Arc<Self>, connected: Arc<watch::Sender<bool>>) -> anyhow::Result<()> {
        // However this run ends, even by a panic or an abort, nothing stays marked as
        // listening: the cache stops trusting its entries, and readiness says so.
        let _unwatched = Unwatched {
            listener: &self,
            connected: &connected,
        };
        let mut backoff = Duration::from_millis(100);
        loop {
            let result = self.session(&connected).await;
            let was_connected = self.stopped_listening(&connected);
            match result {
                Ok(()) => {
                    tracing::warn!("notification listener connection closed; cache flushed")
                }
                Err(e) => tracing::warn!(
                    error = format!("{e:#}"),
                    "notification listener failed; cache flushed"
                ),
            }
            if was_connected {
                backoff = Duration::from_millis(100);
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
            self.metrics.listener_reconnects.inc();
        }
    }

    /// Notifications may be missed from now on: flushes the cache and stops trusting
    /// it. Answers whether it was listening.
    fn stopped_listening(&self, connected: &watch::Sender<bool>) -> bool {
        let was_connected = connected.send_replace(false);
        self.metrics.gauges.listener_connected.set(0);
        self.local.cache.set_watched(false);
        self.local.cache.flush();
        was_connected
    }

    async fn session(&self, connected: &watch::Sender<bool>) -> anyhow::Result<()> {
        let (mut client, mut connection) = self
            .config
            .connect(self.tls.clone())
            .await
            .context("connecting the listener")?;
        let (sender, mut notifications) = mpsc::unbounded_channel::<Notification>();
        let driver = tokio::spawn(async move {
            let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
            while let Some(message) = messages.next().await {
                if let AsyncMessage::Notification(n) = message? {
                    // The receiver only goes away when the session ends.
                    let _closing = sender.send(n);
                }
            }
            Ok::<_, tokio_postgres::Error>(())
        });

        notify::listen(&client).await?;
        // Listening now; whatever changed before may have been missed, so start clean.
        self.local.cache.flush();
        // Loaded on the listener's own connection, not the shared pool: writes that hold
        // every pooled connection must not keep a revoked token working here.
        let numbers = {
            let mut loader = self.pool.get().await.context("the listener's connection")?;
            self.directory
                .reload(&mut loader)
                .await
                .context("loading the auth directory")?;
            let flagged = self
                .spam
                .reload(&**loader)
                .await
                .context("loading spam lists")?;
            tracing::info!(flagged, "spam lists loaded");
            self.local
                .index
                .reload(&**loader)
                .await
                .context("loading known numbers")?
        };
        tracing::info!(
            numbers,
            "listening for changes; directory and number index loaded"
        );
        self.local.cache.set_watched(true);
        connected.send_replace(true);
        self.metrics.gauges.listener_connected.set(1);

        let mut heartbeat = tokio::time::interval(HEARTBEAT);
        let mut token_use = tokio::time::interval(TOKEN_USE_FLUSH);
        loop {
            tokio::select! {
                received = notifications.recv() => match received {
                    Some(n) => self.handle(&mut client, &n).await?,
                    None => break,
                },
                _ = heartbeat.tick() => {
                    tokio::time::timeout(HEARTBEAT_TIMEOUT, store::ping(&client))
                        .await
                        .context("listener heartbeat timed out")?
                        .context("listener heartbeat")?;
                }
                _ = token_use.tick() => {
                    let flushed = store::with_client(&self.pool, HEARTBEAT_TIMEOUT, async |loader| {
                        self.directory.flush_token_use(&***loader).await;
                        Ok(())
                    });
                    if let Err(e) = flushed.await {
                        tracing::debug!(error = format!("{e:#}"), "token use not recorded this time");
                    }
                }
            }
        }
        driver
            .await
            .context("listener connection task")?
            .context("listener connection")?;
        Ok(())
    }

    async fn handle(
        &self,
        client: &mut tokio_postgres::Client,
        n: &Notification,
    ) -> anyhow::Result<()> {
        let handled = self.apply(client, n).await;
        self.metrics
            .notifications
            .get_or_create(&ChannelLabels {
                channel: n.channel().to_owned(),
            })
            .inc();
        handled
    }

    async fn apply(
        &self,
        client: &mut tokio_postgres::Client,
        n: &Notification,
    ) -> anyhow::Result<()> {
        match n.channel() {
            notify::CONTACTS_CHANNEL => {
                let Some((tenant, numbers)) = notify::parse_contacts_payload(n.payload()) else {
                    self.ignore(n);
                    return Ok(());
                };
                self.local.heard(&*client, tenant, &numbers).await?;
            }
            notify::CONFIG_CHANNEL if notify::is_config_payload(n.payload()) => {
                let mut loader = self.pool.get().await.context("the listener's connection")?;
                self.directory.reload(&mut loader).await?
            }
            notify::CONFIG_CHANNEL => self.ignore(n),
            store::spam::CHANNEL => {
                let Some((tenant, numbers)) = store::spam::parse_payload(n.payload()) else {
                    self.ignore(n);
                    return Ok(());
                };
                let loader = self.pool.get().await.context("the listener's connection")?;
                self.spam.heard(&**loader, tenant, &numbers).await?;
            }
            store::deliveries::CHANNEL => {
                if let Some(wake) = &self.deliveries {
                    wake.poke();
                }
            }
            other => tracing::debug!(channel = other, "ignoring notification"),
        }
        Ok(())
    }
}

impl Listener {
    /// A notification that is not one of ours (any database user may send one): counted
    /// and logged by channel, its payload neither used nor logged.
    fn ignore(&self, n: &Notification) {
        self.metrics.notifications_ignored.inc();
        tracing::warn!(
            channel = n.channel(),
            bytes = n.payload().len(),
            "ignoring a notification that is not the gateway's"
        );
    }
}

/// Wakes the web-service delivery workers; the listener pokes it when any instance
/// queues deliveries. Each worker remembers what it has seen, so a poke while it was
/// busy is not lost.
#[derive(Clone)]
pub struct Wake(Arc<watch::Sender<u64>>);

impl Default for Wake {
    fn default() -> Self {
        Self(Arc::new(watch::Sender::new(0)))
    }
}

impl Wake {
    pub fn poke(&self) {
        self.0.send_modify(|n| *n = n.wrapping_add(1));
    }

    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.0.subscribe()
    }
}

/// Marks the listener stopped when a run ends.
struct Unwatched<'a> {
    listener: &'a Listener,
    connected: &'a watch::Sender<bool>,
}

impl Drop for Unwatched<'_> {
    fn drop(&mut self) {
        self.listener.stopped_listening(self.connected);
    }
}
