//! Prometheus metrics, one registry per application (no globals, so tests can run
//! several gateways in one process).

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    pub route: &'static str,
    pub method: &'static str,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub route: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    pub reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ChannelLabels {
    pub channel: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LimitLabels {
    pub limit: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QueryLabels {
    pub query: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TaskLabels {
    pub task: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StepLabels {
    pub step: &'static str,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 50 µs .. ~3.3 s
    Histogram::new(exponential_buckets(0.000_05, 2.0, 17))
}

/// Gauges read from their sources when metrics are scraped.
#[derive(Default)]
pub struct Gauges {
    pub cache_entries: Gauge,
    pub cache_weighted_bytes: Gauge,
    pub known_numbers: Gauge,
    pub directory_tokens: Gauge,
    pub pool_size: Gauge,
    pub pool_available: Gauge,
    pub pool_waiting: Gauge,
    pub read_pool_size: Gauge,
    pub read_pool_available: Gauge,
    pub read_pool_waiting: Gauge,
    pub listener_connected: Gauge,
    /// Live, not read at scrape: batches being read and parsed now.
    pub batch_parses: Gauge,
    /// Live: bytes the number index holds (estimated).
    pub known_numbers_bytes: Gauge,
    /// Live: tenants whose numbers the index does not hold (over its budget).
    pub known_numbers_dropped_tenants: Gauge,
}

/// Label values known before anything happens. Their series are exported at zero from
/// start, so an `absent()` or `increase()` alert works before the first event (a series
/// that appears only at its first increment hides that increment from `rate()`). Tasks
/// and retention steps are created when they are spawned (`jobs`), being per role.
pub const LOOKUP_OUTCOMES: &[&str] = &[
    "cache",
    "index_unknown",
    "database",
    "unidentified",
    "degraded_stale",
    "degraded_unknown",
    "degraded_unverified",
];
/// `http::rate_limit::Limit` names (a test there keeps the two in step).
pub const RATE_LIMITS: &[&str] = &["lookups", "sync", "auth_failures", "pops"];
pub const NOTIFICATION_CHANNELS: &[&str] = &[
    "cidgate_contacts",
    "cidgate_config",
    "cidgate_deliveries",
    "cidgate_spam",
];
pub const DELIVERY_OUTCOMES: &[&str] = &["delivered", "retrying", "failed", "gone"];
/// The statements `db_query_duration_seconds` times.
pub const DB_QUERIES: &[&str] = &["lookup"];

pub struct Metrics {
    registry: Registry,
    pub http_requests: Family<HttpLabels, Counter>,
    pub http_duration: HistogramFamily<RouteLabels>,
    /// How lookups were answered: cache, index, database, or degraded.
    pub lookups: Family<OutcomeLabels, Counter>,
    /// Unknown callers answered with the tenant's screening route, by reason.
    pub lookups_screened: Family<ReasonLabels, Counter>,
    pub cache_hits: Counter,
    pub cache_misses: Counter,
    pub degraded: Counter,
    pub db_query_duration: HistogramFamily<QueryLabels>,
    /// Numbers asked per lookup statement (misses that waited together share one).
    pub lookup_batch_numbers: Histogram,
    /// How long a miss waited for a lookup statement to take it.
    pub lookup_queue_wait: Histogram,
    pub notifications: Family<ChannelLabels, Counter>,
    /// Notifications whose payload was not the gateway's, ignored.
    pub notifications_ignored: Counter,
    pub listener_reconnects: Counter,
    /// Requests refused by a rate limit, by limit.
    pub rate_limited: Family<LimitLabels, Counter>,
    /// Call events refused by a cap (`max_calls`, `max_legs`, `max_events`), by cap.
    pub call_events_capped: Family<LimitLabels, Counter>,
    pub lookup_log_written: Counter,
    /// Lookup log entries dropped (buffer full or write refused).
    pub lookup_log_dropped: Counter,
    /// Log lines dropped because the log writer thread fell behind.
    pub log_lines_dropped: Counter,
    /// Attempts to write a lookup log batch that found the database unreachable.
    pub lookup_log_write_failures: Counter,
    /// Background tasks that failed and were run again, by task.
    pub task_restarts: Family<TaskLabels, Counter>,
    /// Retention steps that failed, by step.
    pub retention_failures: Family<StepLabels, Counter>,
    pub gauges: Gauges,
    pub webhooks: WebhookMetrics,
    pub phones: PhoneMetrics,
}

impl Metrics {
    pub fn new() -> Arc<Self> {
        let mut registry = Registry::with_prefix("cidgate");
        let http_requests = Family::default();
        let http_duration: HistogramFamily<RouteLabels> =
            Family::new_with_constructor(latency_histogram);
        let lookups = Family::default();
        let lookups_screened: Family<ReasonLabels, Counter> = Family::default();
        let cache_hits = Counter::default();
        let cache_misses = Counter::default();
        let degraded = Counter::default();
        let db_query_duration: HistogramFamily<QueryLabels> =
            Family::new_with_constructor(latency_histogram);
        let lookup_batch_numbers = Histogram::new(exponential_buckets(1.0, 2.0, 9));
        let lookup_queue_wait = latency_histogram();
        let notifications = Family::default();
        let notifications_ignored = Counter::default();
        let listener_reconnects = Counter::default();
        let gauges = Gauges::default();
        let rate_limited = Family::default();
        let call_events_capped = Family::default();
        let lookup_log_written = Counter::default();
        let lookup_log_dropped = Counter::default();
        let log_lines_dropped = Counter::default();
        let lookup_log_write_failures = Counter::default();
        let task_restarts = Family::default();
        let retention_failures = Family::default();

        registry.register(
            "http_requests",
            "HTTP requests by route, method and status",
            http_requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency by route",
            http_duration.clone(),
        );
        registry.register(
            "lookups",
            "Lookups by how they were answered",
            lookups.clone(),
        );
        registry.register(
            "lookups_screened",
            "Unknown callers answered with the screening route, by reason (spam_list, failed_verstat)",
            lookups_screened.clone(),
        );
        for reason in crate::domain::ScreenReason::ALL {
            drop(lookups_screened.get_or_create(&ReasonLabels {
                reason: reason.as_str(),
            }));
        }
        registry.register(
            "cache_hits",
            "Lookups answered from a fresh cache entry",
            cache_hits.clone(),
        );
        registry.register(
            "cache_misses",
            "Lookups that needed the database",
            cache_misses.clone(),
        );
        registry.register(
            "degraded_answers",
            "Lookups answered past the deadline or without the database",
            degraded.clone(),
        );
        registry.register(
            "db_query_duration_seconds",
            "Database query latency by query (a lookup statement may answer several misses)",
            db_query_duration.clone(),
        );
        registry.register(
            "lookup_batch_numbers",
            "Numbers asked per lookup statement (misses waiting at once share one)",
            lookup_batch_numbers.clone(),
        );
        registry.register(
            "lookup_queue_wait_seconds",
            "How long a cache miss waited for a lookup statement to take it",
            lookup_queue_wait.clone(),
        );
        registry.register(
            "notifications",
            "Change notifications handled, by channel",
            notifications.clone(),
        );
        registry.register(
            "notifications_ignored",
            "Change notifications ignored: their payload was not the gateway's",
            notifications_ignored.clone(),
        );
        registry.register(
            "listener_reconnects",
            "Times the notification listener reconnected",
            listener_reconnects.clone(),
        );
        registry.register(
            "lookup_log_written",
            "Lookup log entries written",
            lookup_log_written.clone(),
        );
        registry.register(
            "lookup_log_dropped",
            "Lookup log entries dropped because the buffer was full or the database refused them",
            lookup_log_dropped.clone(),
        );
        registry.register(
            "log_lines_dropped",
            "Log lines dropped because the log writer fell behind (requests never wait for it)",
            log_lines_dropped.clone(),
        );
        registry.register(
            "lookup_log_write_failures",
            "Lookup log writes that found the database unreachable (the batch is retried)",
            lookup_log_write_failures.clone(),
        );
        registry.register(
            "task_restarts",
            "Background tasks that failed and were run again, by task",
            task_restarts.clone(),
        );
        registry.register(
            "retention_step_failures",
            "Retention steps that failed, by step (the others still ran)",
            retention_failures.clone(),
        );
        registry.register(
            "rate_limited",
            "Requests refused by a rate limit, by limit",
            rate_limited.clone(),
        );
        registry.register(
            "call_events_capped",
            "Call event requests refused by a cap (max_calls, max_legs, max_events), by cap",
            call_events_capped.clone(),
        );
        registry.register(
            "cache_entries",
            "Entries in the lookup cache",
            gauges.cache_entries.clone(),
        );
        registry.register(
            "cache_weighted_bytes",
            "Estimated bytes held by the lookup cache",
            gauges.cache_weighted_bytes.clone(),
        );
        registry.register(
            "known_numbers",
            "Numbers in the in-memory membership index",
            gauges.known_numbers.clone(),
        );
        registry.register(
            "directory_tokens",
            "Live API tokens in the in-memory auth directory (as of its last load)",
            gauges.directory_tokens.clone(),
        );
        registry.register(
            "db_pool_size",
            "Open database connections",
            gauges.pool_size.clone(),
        );
        registry.register(
            "db_pool_available",
            "Idle database connections",
            gauges.pool_available.clone(),
        );
        registry.register(
            "db_pool_waiting",
            "Requests waiting for a database connection",
            gauges.pool_waiting.clone(),
        );
        registry.register(
            "db_read_pool_size",
            "Open connections to the read replica (DATABASE_READ_URL; 0 without one)",
            gauges.read_pool_size.clone(),
        );
        registry.register(
            "db_read_pool_available",
            "Idle connections to the read replica",
            gauges.read_pool_available.clone(),
        );
        registry.register(
            "db_read_pool_waiting",
            "Lookup statements waiting for a read replica connection",
            gauges.read_pool_waiting.clone(),
        );
        registry.register(
            "batch_parses",
            "Batch bodies being read and parsed now (CIDGATE_BATCH_PARSES at most)",
            gauges.batch_parses.clone(),
        );
        registry.register(
            "known_numbers_bytes",
            "Estimated bytes held by the number index (CIDGATE_KNOWN_NUMBERS_MAX_BYTES at most)",
            gauges.known_numbers_bytes.clone(),
        );
        registry.register(
            "known_numbers_dropped_tenants",
            "Tenants whose numbers the index dropped to stay within its budget (their lookups ask the database)",
            gauges.known_numbers_dropped_tenants.clone(),
        );
        registry.register(
            "listener_connected",
            "1 while the notification listener is connected",
            gauges.listener_connected.clone(),
        );

        let webhooks = WebhookMetrics::registered(&mut registry);
        let phones = PhoneMetrics::registered(&mut registry);
        // Every known series exists from start, at zero (see `KNOWN`).
        for &outcome in LOOKUP_OUTCOMES {
            drop(lookups.get_or_create(&OutcomeLabels { outcome }));
        }
        for &limit in RATE_LIMITS {
            drop(rate_limited.get_or_create(&LimitLabels { limit }));
        }
        for &channel in NOTIFICATION_CHANNELS {
            drop(notifications.get_or_create(&ChannelLabels {
                channel: channel.to_owned(),
            }));
        }
        for &query in DB_QUERIES {
            drop(db_query_duration.get_or_create(&QueryLabels { query }));
        }
        for &outcome in DELIVERY_OUTCOMES {
            drop(
                webhooks
                    .deliveries
                    .get_or_create(&OutcomeLabels { outcome }),
            );
        }
        Arc::new(Self {
            registry,
            webhooks,
            phones,
            http_requests,
            http_duration,
            lookups,
            lookups_screened,
            cache_hits,
            cache_misses,
            degraded,
            db_query_duration,
            lookup_batch_numbers,
            lookup_queue_wait,
            notifications,
            notifications_ignored,
            listener_reconnects,
            rate_limited,
            call_events_capped,
            lookup_log_written,
            lookup_log_dropped,
            log_lines_dropped,
            lookup_log_write_failures,
            task_restarts,
            retention_failures,
            gauges,
        })
    }

    pub fn lookup_outcome(&self, outcome: &'static str) {
        self.lookups.get_or_create(&OutcomeLabels { outcome }).inc();
    }

    pub fn observe_query(&self, query: &'static str, seconds: f64) {
        self.db_query_duration
            .get_or_create(&QueryLabels { query })
            .observe(seconds);
    }

    /// The registry in Prometheus text format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if let Err(e) = encode(&mut out, &self.registry) {
            tracing::error!(error = %e, "could not encode metrics");
        }
        out
    }
}

/// Web-service deliveries (DESIGN §8).
pub struct WebhookMetrics {
    /// Attempts by what became of their delivery: delivered, retrying, failed, gone.
    pub deliveries: Family<OutcomeLabels, Counter>,
    pub attempt_duration: Histogram,
    /// Deliveries pending or being sent (all instances; read by the delivery job).
    pub queue_depth: Gauge,
    /// How long the oldest due delivery has waited (s).
    pub oldest_due_seconds: Gauge<f64, std::sync::atomic::AtomicU64>,
}

impl WebhookMetrics {
    fn registered(registry: &mut Registry) -> Self {
        let metrics = Self {
            deliveries: Family::default(),
            // 1 ms .. ~65 s
            attempt_duration: Histogram::new(exponential_buckets(0.001, 2.0, 17)),
            queue_depth: Gauge::default(),
            oldest_due_seconds: Gauge::default(),
        };
        registry.register(
            "webhook_deliveries",
            "Web-service delivery attempts by what became of the delivery",
            metrics.deliveries.clone(),
        );
        registry.register(
            "webhook_attempt_duration_seconds",
            "Web-service request latency",
            metrics.attempt_duration.clone(),
        );
        registry.register(
            "webhook_queue_depth",
            "Web-service deliveries pending or being sent",
            metrics.queue_depth.clone(),
        );
        registry.register(
            "webhook_oldest_due_seconds",
            "How long the oldest due web-service delivery has waited",
            metrics.oldest_due_seconds.clone(),
        );
        metrics
    }

    pub fn outcome(&self, outcome: &'static str) {
        self.deliveries
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PhoneLabels {
    pub vendor: &'static str,
    /// directory, input, phonebook or lookup.
    pub request: &'static str,
}

/// The (vendor, request) pairs desk phones' routes answer.
const PHONE_SERIES: &[(&str, &str)] = &[
    ("yealink", "directory"),
    ("cisco", "directory"),
    ("snom", "directory"),
    ("grandstream", "directory"),
    ("fanvil", "directory"),
    ("htek", "directory"),
    ("polycom", "directory"),
    ("cisco", "input"),
    ("snom", "input"),
    ("yealink", "phonebook"),
    ("grandstream", "phonebook"),
    ("gigaset", "lookup"),
];

/// Desk phones' requests (issue 35), by vendor and kind.
pub struct PhoneMetrics {
    pub requests: Family<PhoneLabels, Counter>,
}

impl PhoneMetrics {
    fn registered(registry: &mut Registry) -> Self {
        let metrics = Self {
            requests: Family::default(),
        };
        // Every series a phone can make exists from start, at zero, for dashboards.
        for &(vendor, request) in PHONE_SERIES {
            drop(
                metrics
                    .requests
                    .get_or_create(&PhoneLabels { vendor, request }),
            );
        }
        registry.register(
            "phone_requests",
            "Desk phones' directory, input, phone-book and caller-name answers by vendor",
            metrics.requests.clone(),
        );
        metrics
    }

    pub fn answered(&self, vendor: &'static str, request: &'static str) {
        self.requests
            .get_or_create(&PhoneLabels { vendor, request })
            .inc();
    }
}
