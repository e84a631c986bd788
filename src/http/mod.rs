//! The HTTP surface: shared state, extractors, middleware, errors, the helpers routes
//! share (`shared`), and the handlers (`routes/`, each file registering its own routes).

pub mod auth;
pub mod batch_gate;
pub(crate) mod body;
pub mod client_ip;
pub mod error;
pub mod middleware;
pub mod rate_limit;
pub mod routes;
pub mod shared;
pub mod state;
mod stream;

use actix_web::{HttpResponse, web};

use self::error::ApiError;

/// The routes of a serving instance: each area's file registers its own
/// (`routes::configure`); everything else is a JSON 404.
pub fn configure(cfg: &mut web::ServiceConfig) {
    // A query string a typed extractor cannot read is a JSON 400 like every other.
    cfg.app_data(web::QueryConfig::default().error_handler(|error, _| {
        ApiError::BadRequest(format!("the query string: {error}")).into()
    }));
    routes::configure(cfg);
    cfg.default_service(web::to(not_found));
}

/// The routes of an instance that only delivers (`CIDGATE_ROLES=deliver`): probes and
/// metrics; everything else is a JSON 404.
pub fn configure_operations(cfg: &mut web::ServiceConfig) {
    routes::health::configure(cfg);
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
    ("PUT", "/api/v1/contacts/snapshot"),
    ("PUT", "/api/v1/contacts/{id}"),
    ("GET", "/api/v1/contacts/{id}"),
    ("DELETE", "/api/v1/contacts/{id}"),
    ("POST", "/api/v1/events"),
    ("GET", "/api/v1/events"),
    ("GET", "/api/v1/events/focalscope"),
    ("GET", "/api/v1/events/call-end"),
    ("GET", "/api/v1/reportsCDRLogs"),
    ("POST", "/rest/api/v1/historic-data/{historicDataKey}"),
    ("GET", "/api/v1/profiles"),
    ("POST", "/api/v1/profiles"),
    ("GET", "/api/v1/profiles/{name}"),
    ("PATCH", "/api/v1/profiles/{name}"),
    ("DELETE", "/api/v1/profiles/{name}"),
    ("GET", "/api/v1/sources"),
    ("POST", "/api/v1/sources"),
    ("GET", "/api/v1/sources/{name}"),
    ("PATCH", "/api/v1/sources/{name}"),
    ("DELETE", "/api/v1/sources/{name}"),
    ("POST", "/api/v1/sources/{name}/test"),
    ("POST", "/api/v1/profiles/{name}/enable"),
    ("POST", "/api/v1/profiles/{name}/disable"),
    ("POST", "/api/v1/profiles/{name}/rotate-secret"),
    ("POST", "/api/v1/profiles/{name}/test"),
    ("POST", "/api/v1/profiles/{name}/run"),
    ("GET", "/api/v1/deliveries"),
    ("POST", "/api/v1/deliveries/replay"),
    ("GET", "/api/v1/deliveries/{id}"),
    ("POST", "/api/v1/deliveries/{id}/replay"),
    ("GET", "/api/v1/agents"),
    ("PUT", "/api/v1/agents/{extension}"),
    ("GET", "/api/v1/agents/{extension}"),
    ("DELETE", "/api/v1/agents/{extension}"),
    ("POST", "/api/v1/agents/{extension}/sessions"),
    ("DELETE", "/api/v1/agents/{extension}/sessions"),
    ("GET", "/api/v1/click2call"),
    ("POST", "/api/v1/click2call"),
    ("GET", "/api/v1/click2call/{RequestID}"),
    ("GET", "/agent/login"),
    ("POST", "/agent/login"),
    ("POST", "/agent/call"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
    ("GET", "/openapi.json"),
    ("GET", "/pop/style.css"),
    ("GET", "/pop/{link}"),
    ("GET", "/phones/{vendor}/directory"),
    ("GET", "/phones/{vendor}/input"),
    ("GET", "/phones/yealink/phonebook.xml"),
    ("GET", "/phones/grandstream/phonebook.xml"),
    ("GET", "/phones/gigaset/lookup"),
    ("PUT", "/api/v1/spam/{number}"),
    ("DELETE", "/api/v1/spam/{number}"),
];

async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound("no such endpoint".into()))
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
