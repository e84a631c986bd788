//! What every handler may use: pools, services and the settings handlers read.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use actix_web::HttpRequest;
use deadpool_postgres::Pool;
use ipnetwork::IpNetwork;
use tokio::sync::watch;
use url::Url;

use super::batch_gate::BatchGate;
use super::client_ip;
use super::rate_limit::RateLimits;
use crate::calls::ingest::EventWriter;
use crate::config::ForwardedHeader;
use crate::contacts;
use crate::jobs::Supervisor;
use crate::live::directory::Directory;
use crate::lookup::LookupService;
use crate::lookup::cache::AnswerCache;
use crate::lookup::known_numbers::KnownNumbers;
use crate::lookup::log::LookupLog;
use crate::metrics::Metrics;

/// One connection each to the primary and the replica (when there is one), for
/// `/readyz` alone.
#[derive(Clone)]
pub struct Probes {
    pub primary: Pool,
    pub replica: Option<Pool>,
}

impl Probes {
    pub fn connect(
        primary_url: &str,
        replica_url: Option<&str>,
        wait: Duration,
    ) -> anyhow::Result<Self> {
        Ok(Self {
            primary: crate::store::connect_pool(primary_url, 1, wait)?,
            replica: replica_url
                .map(|url| crate::store::connect_pool(url, 1, wait))
                .transpose()?,
        })
    }
}

/// What every handler may use; cheap to clone (pools and services are handles).
#[derive(Clone)]
pub struct AppState {
    /// The primary: writes, and reads that must see them.
    pub pool: Pool,
    /// Where a contact write commits; it forgets what the write changed in `cache` and
    /// `index`.
    pub contacts: contacts::Writer,
    pub lookup: LookupService,
    pub cache: AnswerCache,
    pub index: KnownNumbers,
    /// The tenants' flagged numbers: screening an unknown caller asks no database.
    pub spam: crate::trust::SpamList,
    pub directory: Directory,
    pub metrics: Arc<Metrics>,
    /// True while the notification listener is connected with its state loaded.
    pub listening: watch::Receiver<bool>,
    pub public_url: Url,
    pub limits: RateLimits,
    pub lookup_log: LookupLog,
    /// The background tasks, whose states readiness reports.
    pub jobs: Supervisor,
    /// Writes PBX call events in batches.
    pub events: EventWriter,
    /// Events older than this are refused: their month is no longer kept.
    pub call_retention_days: u32,
    /// The read replica's pool (`DATABASE_READ_URL`), when lookups have one.
    pub read_pool: Option<Pool>,
    /// Connections of readiness's own, so a pool that writes hold does not make the
    /// instance look down.
    pub probes: Probes,
    /// How long a sync API request may wait for the database.
    pub write_timeout: Duration,
    /// How long a sync API request may take to send its body (a snapshot: each chunk).
    pub body_timeout: Duration,
    /// Turns to read and parse a contact batch.
    pub batch_gate: BatchGate,
    /// The largest full snapshot taken, in bytes.
    pub snapshot_max_bytes: u64,
    /// Peers whose forwarding header is believed, and which header that is.
    pub trusted_proxies: Arc<[IpNetwork]>,
    pub forwarded_header: ForwardedHeader,
    /// Sends web-service deliveries (`profile test`, `profile run` through the API).
    pub deliverer: crate::webhook::Deliverer,
    /// Places click-to-calls and follows the PBX's later word on them.
    pub click2call: crate::dial::click2call::Click2Call,
    /// The tenants' CRM sources behind the lookup (issue 34).
    pub sources: crate::sources::Sources,
}

impl AppState {
    /// The primary as the admin services reach it, within the write timeout.
    pub fn admin_db(&self) -> crate::admin::Db {
        crate::admin::Db::new(self.pool.clone(), self.write_timeout)
    }

    /// The client's address: the TCP peer, or what trusted proxies say it is.
    pub fn client_ip(&self, req: &HttpRequest) -> Option<IpAddr> {
        client_ip::resolve(
            req.peer_addr().map(|a| a.ip()),
            req.headers(),
            &self.trusted_proxies,
            self.forwarded_header,
        )
    }
}
