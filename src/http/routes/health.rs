//! Liveness and readiness for load balancers and orchestrators.

use actix_web::{HttpResponse, web};
use serde_json::json;

use crate::http::AppState;

/// The process is up and serving HTTP; says nothing about the database on purpose, so
/// an orchestrator does not restart every instance during a database outage.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// Ready to take traffic: the database answers.
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let database_ok = match state.pool.get().await {
        Ok(client) => client.simple_query("SELECT 1").await.is_ok(),
        Err(_) => false,
    };
    if database_ok {
        HttpResponse::Ok().json(json!({"status": "ready"}))
    } else {
        HttpResponse::ServiceUnavailable()
            .insert_header(("Retry-After", "5"))
            .json(json!({"status": "unavailable", "database": "unreachable"}))
    }
}
