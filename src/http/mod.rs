//! The HTTP surface: route table, shared state, extractors and middleware.

pub mod auth;
mod body;
pub mod client_ip;
pub mod routes;

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::DefaultHeaders;
use actix_web::middleware::Next;
use actix_web::{HttpMessage, HttpResponse, web};
use deadpool_postgres::Pool;
use ipnetwork::IpNetwork;
use tokio::sync::watch;
use url::Url;

use crate::cache::AnswerCache;
use crate::directory::Directory;
use crate::domain::TenantId;
use crate::error::ApiError;
use crate::known_numbers::KnownNumbers;
use crate::lookup::LookupService;
use crate::lookup_log::LookupLog;
use crate::metrics::{HttpLabels, Metrics, RouteLabels};
use crate::rate_limit::RateLimits;
use crate::store::notify::ChangedNumbers;
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
    pub limits: RateLimits,
    pub lookup_log: LookupLog,
    /// The read replica's pool (`DATABASE_READ_URL`), when lookups have one.
    pub read_pool: Option<Pool>,
    /// How long a sync API request may wait for the database.
    pub write_timeout: Duration,
    /// How long a sync API request may take to send its body.
    pub body_timeout: Duration,
    /// Peers whose forwarding header is believed, and which header that is.
    pub trusted_proxies: Arc<[IpNetwork]>,
    pub forwarded_header: client_ip::ForwardedHeader,
}

impl AppState {
    /// After a committed write: this instance forgets the affected answers at once and
    /// learns of new numbers; the NOTIFY sent in the transaction tells the others.
    /// Released numbers stay in the index until the listener has asked the database
    /// whether another contact still has them.
    pub async fn contacts_written(&self, tenant: TenantId, numbers: &ChangedNumbers) {
        self.cache.invalidate(tenant, numbers.all()).await;
        self.index.add(tenant, &numbers.claimed).await;
    }
}

/// The client's address: the TCP peer, or what trusted proxies say it is.
pub fn client_ip(req: &actix_web::HttpRequest) -> Option<std::net::IpAddr> {
    let peer = req.peer_addr().map(|a| a.ip());
    match req.app_data::<web::Data<AppState>>() {
        Some(state) => client_ip::resolve(
            peer,
            req.headers(),
            &state.trusted_proxies,
            state.forwarded_header,
        ),
        None => peer,
    }
}

/// When the request arrived; the lookup deadline counts from here.
#[derive(Debug, Clone, Copy)]
pub struct RequestStart(pub Instant);

/// The route table. Each resource is named by its path (metrics label requests by it
/// without formatting the pattern anew). Every resource answers 405 for methods it does
/// not serve, and everything else is a JSON 404.
pub fn configure(cfg: &mut web::ServiceConfig) {
    use routes::{contacts, health, lookup};
    // One resource per path: a resource with several paths is matched by regex, which
    // costs more than the rest of a cached lookup.
    for path in ["/api/lookup", "/api/while1voice"] {
        cfg.service(
            web::resource(path)
                .name(path)
                .route(web::get().to(lookup::lookup))
                .default_service(not_allowed("GET")),
        );
    }
    cfg.service(
        web::resource("/api/v1/contacts/batch")
            .name("/api/v1/contacts/batch")
            .route(web::post().to(contacts::batch))
            // A CRM contact may be called `batch` too.
            .route(web::put().to(contacts::put_contact))
            .route(web::get().to(contacts::get_contact))
            .route(web::delete().to(contacts::delete_contact))
            .default_service(not_allowed("GET, PUT, DELETE, POST")),
    )
    .service(
        web::resource("/api/v1/contacts/{id}")
            .name("/api/v1/contacts/{id}")
            .route(web::put().to(contacts::put_contact))
            .route(web::get().to(contacts::get_contact))
            .route(web::delete().to(contacts::delete_contact))
            .default_service(not_allowed("GET, PUT, DELETE")),
    );
    // Load balancers may probe with HEAD.
    cfg.service(
        web::resource("/healthz")
            .name("/healthz")
            .route(web::get().to(health::healthz))
            .route(web::head().to(health::healthz))
            .default_service(not_allowed("GET, HEAD")),
    )
    .service(
        web::resource("/readyz")
            .name("/readyz")
            .route(web::get().to(health::readyz))
            .route(web::head().to(health::readyz))
            .default_service(not_allowed("GET, HEAD")),
    );
    for (path, handler) in [
        ("/metrics", web::get().to(health::metrics)),
        ("/openapi.json", web::get().to(openapi)),
        ("/pop/style.css", web::get().to(routes::pop::style)),
        ("/pop/{link}", web::get().to(routes::pop::pop)),
    ] {
        cfg.service(
            web::resource(path)
                .name(path)
                .route(handler)
                .default_service(not_allowed("GET")),
        );
    }
    cfg.default_service(web::to(not_found));
}

/// The OpenAPI description of every operation above.
pub const OPENAPI: &str = include_str!("openapi.json");

/// Every operation the route table serves; the OpenAPI description lists exactly these
/// (a test keeps the two in step).
pub const OPERATIONS: &[(&str, &str)] = &[
    ("GET", "/api/lookup"),
    ("GET", "/api/while1voice"),
    ("POST", "/api/v1/contacts/batch"),
    ("PUT", "/api/v1/contacts/{id}"),
    ("GET", "/api/v1/contacts/{id}"),
    ("DELETE", "/api/v1/contacts/{id}"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
    ("GET", "/openapi.json"),
    ("GET", "/pop/style.css"),
    ("GET", "/pop/{link}"),
];

async fn openapi() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(OPENAPI)
}

/// The answer to a method a path does not serve: 405 naming the ones it does.
fn not_allowed(allow: &'static str) -> actix_web::Route {
    web::to(move || async move { Err::<HttpResponse, _>(ApiError::MethodNotAllowed(allow)) })
}

async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound("no such endpoint".into()))
}

/// Longest request target (path and query) accepted; PBX lookups are a few hundred bytes.
const MAX_TARGET_BYTES: usize = 8 * 1024;
/// Most header bytes accepted (names and values together).
const MAX_HEADER_BYTES: usize = 16 * 1024;

/// Refuses oversized requests before any work: 414 for a long URL, 431 for large headers.
/// (Far larger request heads are cut off by actix itself with a bare 431.)
pub async fn enforce_request_limits(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let target = req.uri().path_and_query().map_or(0, |pq| pq.as_str().len());
    let headers: usize = req
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    let refusal = if target > MAX_TARGET_BYTES {
        Some(ApiError::UriTooLong(MAX_TARGET_BYTES))
    } else if headers > MAX_HEADER_BYTES {
        Some(ApiError::HeadersTooLarge(MAX_HEADER_BYTES))
    } else {
        None
    };
    match refusal {
        Some(error) => Ok(req.error_response(error).map_into_right_body()),
        None => next
            .call(req)
            .await
            .map(ServiceResponse::map_into_left_body),
    }
}

/// CORS for the configured browser origins only; with none configured, no CORS headers
/// are sent and browsers keep other sites out.
pub fn cors(origins: &[String]) -> actix_web::middleware::Condition<actix_cors::Cors> {
    let mut cors = actix_cors::Cors::default()
        .allowed_methods(["GET", "PUT", "POST", "DELETE"])
        .allowed_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
        .max_age(600);
    for origin in origins {
        cors = cors.allowed_origin(origin);
    }
    actix_web::middleware::Condition::new(!origins.is_empty(), cors)
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
    let method = method_label(req.method());
    // Redacting costs an allocation per request: only when the line will be written.
    let query = tracing::enabled!(tracing::Level::INFO).then(|| redact_query(req.query_string()));
    let response = srv.call(req);
    async move {
        let response = response.await?;
        let elapsed = started.elapsed();
        let status = response.status().as_u16();
        let route = route_label(response.request().match_name());
        if let Some(metrics) = metrics {
            metrics
                .http_requests
                .get_or_create(&HttpLabels {
                    route,
                    method,
                    status,
                })
                .inc();
            metrics
                .http_duration
                .get_or_create(&RouteLabels { route })
                .observe(elapsed.as_secs_f64());
        }
        tracing::info!(
            method,
            route,
            query = query.as_deref().unwrap_or_default(),
            status,
            elapsed_us = elapsed.as_micros() as u64,
            "request"
        );
        Ok(response)
    }
}

/// The route's path pattern as a metric label; "unmatched" for the 404 fallback.
fn route_label(name: Option<&str>) -> &'static str {
    name.and_then(|name| OPERATIONS.iter().find(|(_, path)| *path == name))
        .map_or("unmatched", |(_, path)| path)
}

/// Methods as metric labels, so a client cannot mint new label values.
fn method_label(method: &actix_web::http::Method) -> &'static str {
    use actix_web::http::Method;
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_openapi_description_lists_exactly_the_served_operations() {
        let spec: serde_json::Value = serde_json::from_str(OPENAPI).unwrap();
        let mut documented: Vec<(String, String)> = spec["paths"]
            .as_object()
            .unwrap()
            .iter()
            .flat_map(|(path, item)| {
                item.as_object()
                    .unwrap()
                    .keys()
                    .filter(|k| *k != "parameters")
                    .map(move |method| (method.to_uppercase(), path.clone()))
            })
            .collect();
        let mut served: Vec<(String, String)> = OPERATIONS
            .iter()
            .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
            .collect();
        documented.sort();
        served.sort();
        assert_eq!(documented, served);
    }
}
