//! Middleware around every route: request limits, CORS, security headers, and the
//! request count, timing and log line.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::{DefaultHeaders, Next};
use actix_web::{HttpMessage, web};

use super::OPERATIONS;
use super::auth::RequestStart;
use super::error::ApiError;
use super::state::AppState;
use crate::metrics::{HttpLabels, RouteLabels};
use crate::telemetry::{self, RequestLine, redact_query};

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
    let query = telemetry::request_lines_enabled().then(|| redact_query(req.query_string()));
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
        if let Some(query) = &query {
            telemetry::log_request(&RequestLine {
                method,
                route,
                query,
                status,
                elapsed_us: u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX),
            });
        }
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
