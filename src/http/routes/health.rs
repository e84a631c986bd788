//! Liveness, readiness and metrics for load balancers, orchestrators and Prometheus.

use actix_web::{HttpResponse, web};
use serde_json::json;

use crate::http::AppState;

/// The process is up and serving HTTP; says nothing about the database on purpose, so
/// an orchestrator does not restart every instance during a database outage.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// Ready to take traffic: the database answers and the number index is loaded.
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let database = match state.pool.get().await {
        Ok(client) => client.simple_query("SELECT 1").await.is_ok(),
        Err(_) => false,
    };
    let listening = *state.listening.borrow();
    let body = json!({
        "status": if database { "ready" } else { "unavailable" },
        "database": if database { "up" } else { "unreachable" },
        "listener": if listening { "connected" } else { "disconnected" },
    });
    if database && listening {
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
    let pool = state.pool.status();
    m.gauges.pool_size.set(gauge(pool.size));
    m.gauges.pool_available.set(gauge(pool.available));
    m.gauges.pool_waiting.set(gauge(pool.waiting));
    HttpResponse::Ok()
        .content_type("application/openmetrics-text; version=1.0.0; charset=utf-8")
        .body(m.render())
}
