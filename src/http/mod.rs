//! The HTTP surface: route table, shared state, extractors and middleware.

pub mod auth;
mod body;
pub mod routes;

use std::time::Instant;

use actix_web::dev::Service;
use actix_web::http::header;
use actix_web::middleware::DefaultHeaders;
use actix_web::{HttpResponse, web};
use deadpool_postgres::Pool;
use url::Url;

use crate::error::ApiError;
use crate::lookup::LookupService;
use crate::telemetry::redact_query;

/// What every handler may use; cheap to clone (pools and services are handles).
#[derive(Clone)]
pub struct AppState {
    pub pool: Pool,
    pub lookup: LookupService,
    pub public_url: Url,
}

/// The route table. Every resource answers 405 for methods it does not serve and
/// everything else is a JSON 404.
pub fn configure(cfg: &mut web::ServiceConfig) {
    use routes::{contacts, health, lookup};
    cfg.service(
        web::resource(["/api/lookup", "/api/while1voice"])
            .route(web::get().to(lookup::lookup))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/api/v1/contacts/batch")
            .route(web::post().to(contacts::batch))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/api/v1/contacts/{id}")
            .route(web::put().to(contacts::put_contact))
            .route(web::get().to(contacts::get_contact))
            .route(web::delete().to(contacts::delete_contact))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/healthz")
            .route(web::get().to(health::healthz))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/readyz")
            .route(web::get().to(health::readyz))
            .default_service(web::to(method_not_allowed)),
    )
    .default_service(web::to(not_found));
}

async fn method_not_allowed() -> Result<HttpResponse, ApiError> {
    Err(ApiError::MethodNotAllowed)
}

async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound("no such endpoint".into()))
}

/// Headers every answer carries: API answers are personal data, never cached or sniffed.
pub fn security_headers() -> DefaultHeaders {
    DefaultHeaders::new()
        .add((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .add((header::REFERRER_POLICY, "no-referrer"))
        .add((header::CACHE_CONTROL, "no-store"))
}

/// Logs one line per request with the query redacted (tokens never reach a log).
pub fn access_log<S, B>(
    req: actix_web::dev::ServiceRequest,
    srv: &S,
) -> impl Future<Output = Result<actix_web::dev::ServiceResponse<B>, actix_web::Error>> + use<S, B>
where
    S: Service<
            actix_web::dev::ServiceRequest,
            Response = actix_web::dev::ServiceResponse<B>,
            Error = actix_web::Error,
        >,
{
    let started = Instant::now();
    let method = req.method().to_string();
    let path = req.path().to_owned();
    let query = redact_query(req.query_string());
    let response = srv.call(req);
    async move {
        let response = response.await?;
        tracing::info!(
            method,
            path,
            query,
            status = response.status().as_u16(),
            elapsed_us = started.elapsed().as_micros() as u64,
            "request"
        );
        Ok(response)
    }
}
