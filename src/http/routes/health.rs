//! Liveness, readiness and metrics for load balancers, orchestrators and Prometheus.

use std::time::Duration;

use actix_web::{HttpResponse, web};
use deadpool_postgres::Pool;
use serde_json::json;

use crate::http::shared::resource;
use crate::http::state::AppState;
use crate::store;

/// Readiness answers within this even when the database hangs (probes time out at 2 s).
pub const CHECK_WITHIN: Duration = Duration::from_secs(1);

async fn answers(pool: &Pool) -> bool {
    let check = store::with_client(pool, CHECK_WITHIN, async |client| {
        Ok(store::ping(client).await?)
    });
    check.await.is_ok()
}

/// The process is up and serving HTTP; says nothing about the database on purpose, so
/// an orchestrator does not restart every instance during a database outage.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// Ready to take traffic: the database (and the read replica, when lookups use one)
/// answers on readiness's own connection (the pools may be busy with writes), the notification listener is connected with the number index loaded, and
/// the background tasks lookups need are running. Every background task is named with
/// its state; why one failed is logged, not shown here.
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let replica = async {
        match &state.probes.replica {
            Some(pool) => Some(answers(pool).await),
            None => None,
        }
    };
    let (database, replica) = futures_util::join!(answers(&state.probes.primary), replica);
    let listening = *state.listening.borrow();
    let tasks = state.jobs.statuses();
    let tasks_up = !tasks.values().any(|task| task.holds_up_readiness());
    let ready = database && listening && replica != Some(false) && tasks_up;
    let up = |up: bool| if up { "up" } else { "unreachable" };
    let mut body = json!({
        "status": if ready { "ready" } else { "unavailable" },
        "database": up(database),
        "listener": if listening { "connected" } else { "disconnected" },
        "tasks": tasks
            .iter()
            .map(|(name, task)| {
                let status = json!({"state": task.state.as_str(), "restarts": task.restarts});
                ((*name).to_owned(), status)
            })
            .collect::<serde_json::Map<_, _>>(),
    });
    if let Some(replica) = replica {
        body["replica"] = up(replica).into();
    }
    // A degraded CRM source is shown, never a reason to be unready: lookups answer without it.
    let sources = state.sources.report();
    if !sources.is_empty() {
        body["sources"] = sources.into();
    }
    if ready {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable()
            .insert_header(("Retry-After", "5"))
            .json(body)
    }
}

/// Prometheus text exposition.
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    let m = &state.metrics;
    state.cache.run_pending_tasks().await;
    let gauge = |v: usize| i64::try_from(v).unwrap_or(i64::MAX);
    m.gauges
        .cache_entries
        .set(gauge(state.cache.entry_count() as usize));
    m.gauges
        .cache_weighted_bytes
        .set(gauge(state.cache.weighted_size() as usize));
    m.gauges.known_numbers.set(gauge(state.index.len()));
    m.gauges
        .directory_tokens
        .set(gauge(state.directory.token_count()));
    let dropped = crate::telemetry::dropped_lines();
    if let Some(new) = dropped.checked_sub(m.log_lines_dropped.get()) {
        m.log_lines_dropped.inc_by(new);
    }
    let pool = state.pool.status();
    m.gauges.pool_size.set(gauge(pool.size));
    m.gauges.pool_available.set(gauge(pool.available));
    m.gauges.pool_waiting.set(gauge(pool.waiting));
    if let Some(read_pool) = &state.read_pool {
        let pool = read_pool.status();
        m.gauges.read_pool_size.set(gauge(pool.size));
        m.gauges.read_pool_available.set(gauge(pool.available));
        m.gauges.read_pool_waiting.set(gauge(pool.waiting));
    }
    let mut text = m.render();
    let sources = crate::sources::health::metrics_text(&state.sources.report());
    if let Some(end) = text.rfind("# EOF") {
        text.insert_str(end, &sources);
    }
    HttpResponse::Ok()
        .content_type("application/openmetrics-text; version=1.0.0; charset=utf-8")
        .body(text)
}

/// Registers `/healthz` and `/readyz`, alike on every role's instance (load balancers
/// and orchestrators may probe with HEAD, issue 28 item 12), and `/metrics`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        resource("/healthz", "GET, HEAD")
            .route(web::get().to(healthz))
            .route(web::head().to(healthz)),
    )
    .service(
        resource("/readyz", "GET, HEAD")
            .route(web::get().to(readyz))
            .route(web::head().to(readyz)),
    )
    .service(resource("/metrics", "GET").route(web::get().to(metrics)));
}
