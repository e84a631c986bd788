//! The HTTP surface: route table, shared state, extractors and middleware.

pub mod auth;
mod body;
pub mod routes;

use std::sync::Arc;
use std::time::Instant;

use actix_web::dev::{Service, ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::DefaultHeaders;
use actix_web::{HttpMessage, HttpResponse, web};
use deadpool_postgres::Pool;
use tokio::sync::watch;
use url::Url;

use crate::cache::AnswerCache;
use crate::directory::Directory;
use crate::domain::TenantId;
use crate::error::ApiError;
use crate::known_numbers::KnownNumbers;
use crate::lookup::LookupService;
use crate::metrics::{HttpLabels, Metrics, RouteLabels};
use crate::telemetry::redact_query;

/// What every handler may use; cheap to clone (pools and services are handles).
#[derive(Clone)]
pub struct AppState {
    /// The primary: writes, and reads that must see them.
    pub pool: Pool,
    pub lookup: LookupService,
    pub cache: AnswerCache,
    pub index: KnownNumbers,
    pub directory: Directory,
    pub metrics: Arc<Metrics>,
    /// True while the notification listener is connected with its state loaded.
    pub listening: watch::Receiver<bool>,
    pub public_url: Url,
}

impl AppState {
    /// After a committed write: this instance forgets the affected answers at once and
    /// learns of new numbers; the NOTIFY sent in the transaction tells the others.
    pub async fn contacts_written(&self, tenant: TenantId, numbers: &[String]) {
        self.cache.invalidate(tenant, numbers).await;
        self.index.add(tenant, numbers);
    }
}

/// When the request arrived; the lookup deadline counts from here.
#[derive(Debug, Clone, Copy)]
pub struct RequestStart(pub Instant);

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
    );
    for (path, handler) in [
        ("/healthz", web::get().to(health::healthz)),
        ("/readyz", web::get().to(health::readyz)),
        ("/metrics", web::get().to(health::metrics)),
    ] {
        cfg.service(
            web::resource(path)
                .route(handler)
                .default_service(web::to(method_not_allowed)),
        );
    }
    cfg.default_service(web::to(not_found));
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

/// Counts and times every request by route, and logs one line with the query redacted
/// (tokens never reach a log) and the caller's number masked.
pub fn observe<S, B>(
    req: ServiceRequest,
    srv: &S,
) -> impl Future<Output = Result<ServiceResponse<B>, actix_web::Error>> + use<S, B>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error>,
{
    let started = Instant::now();
    req.extensions_mut().insert(RequestStart(started));
    let metrics = req
        .app_data::<web::Data<AppState>>()
        .map(|state| state.metrics.clone());
    let method = req.method().to_string();
    let query = redact_query(req.query_string());
    let response = srv.call(req);
    async move {
        let response = response.await?;
        let elapsed = started.elapsed();
        let status = response.status().as_u16();
        let route = response
            .request()
            .match_pattern()
            .unwrap_or_else(|| "unmatched".to_owned());
        if let Some(metrics) = metrics {
            metrics
                .http_requests
                .get_or_create(&HttpLabels {
                    route: route.clone(),
                    method: method.clone(),
                    status,
                })
                .inc();
            metrics
                .http_duration
                .get_or_create(&RouteLabels {
                    route: route.clone(),
                })
                .observe(elapsed.as_secs_f64());
        }
        tracing::info!(
            method,
            route,
            query,
            status,
            elapsed_us = elapsed.as_micros() as u64,
            "request"
        );
        Ok(response)
    }
}
