//! The HTTP surface: the route table here; shared state, extractors, middleware, errors
//! and the handlers (`routes/`) in the modules below.

pub mod auth;
pub mod batch_gate;
pub(crate) mod body;
pub mod client_ip;
pub mod error;
pub mod middleware;
pub mod rate_limit;
pub mod routes;
pub mod state;
mod stream;

use actix_web::{HttpResponse, web};

use self::error::ApiError;

/// The route table. Each resource is named by its path (metrics label requests by it
/// without formatting the pattern anew). Every resource answers 405 for methods it does
/// not serve, and everything else is a JSON 404.
pub fn configure(cfg: &mut web::ServiceConfig) {
    use routes::{contacts, health, lookup};
    // A query string a typed extractor cannot read is a JSON 400 like every other.
    cfg.app_data(web::QueryConfig::default().error_handler(|error, _| {
        ApiError::BadRequest(format!("the query string: {error}")).into()
    }));
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
        web::resource("/api/v1/contacts/snapshot")
            .name("/api/v1/contacts/snapshot")
            .route(web::put().to(routes::snapshot::replace))
            // A CRM contact called `snapshot` can still be read and deleted (written
            // through a batch).
            .route(web::get().to(contacts::get_contact))
            .route(web::delete().to(contacts::delete_contact))
            .default_service(not_allowed("GET, PUT, DELETE")),
    )
    .service(
        web::resource("/api/v1/contacts/{id}")
            .name("/api/v1/contacts/{id}")
            .route(web::put().to(contacts::put_contact))
            .route(web::get().to(contacts::get_contact))
            .route(web::delete().to(contacts::delete_contact))
            .default_service(not_allowed("GET, PUT, DELETE")),
    );
    probes(cfg);
    cfg.service(
        web::resource("/api/v1/events")
            .name("/api/v1/events")
            .route(web::post().to(routes::events::post))
            .route(web::get().to(routes::events::get))
            .default_service(not_allowed("GET, POST")),
    );
    cfg.service(
        web::resource("/rest/api/v1/historic-data/{historicDataKey}")
            .name("/rest/api/v1/historic-data/{historicDataKey}")
            .route(web::post().to(routes::historic::run))
            .default_service(not_allowed("POST")),
    );
    profile_routes(cfg);
    routes::sources::configure(cfg);
    routes::agents_and_click2call(cfg);
    for (path, handler) in [
        (
            "/api/v1/events/focalscope",
            web::get().to(routes::events::focalscope),
        ),
        (
            "/api/v1/events/call-end",
            web::get().to(routes::events::call_end),
        ),
        (
            "/api/v1/reportsCDRLogs",
            web::get().to(routes::cdr::cdr_logs),
        ),
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

/// The admin API of web-service profiles and deliveries.
fn profile_routes(cfg: &mut web::ServiceConfig) {
    use routes::profiles;
    cfg.service(
        web::resource("/api/v1/profiles")
            .name("/api/v1/profiles")
            .route(web::get().to(profiles::list))
            .route(web::post().to(profiles::create))
            .default_service(not_allowed("GET, POST")),
    )
    .service(
        web::resource("/api/v1/profiles/{name}")
            .name("/api/v1/profiles/{name}")
            .route(web::get().to(profiles::show))
            .route(web::patch().to(profiles::update))
            .route(web::delete().to(profiles::delete))
            .default_service(not_allowed("GET, PATCH, DELETE")),
    )
    .service(
        web::resource("/api/v1/deliveries")
            .name("/api/v1/deliveries")
            .route(web::get().to(profiles::deliveries))
            .default_service(not_allowed("GET")),
    )
    .service(
        web::resource("/api/v1/deliveries/replay")
            .name("/api/v1/deliveries/replay")
            .route(web::post().to(profiles::replay_failed))
            .default_service(not_allowed("POST")),
    )
    .service(
        web::resource("/api/v1/deliveries/{id}")
            .name("/api/v1/deliveries/{id}")
            .route(web::get().to(profiles::delivery))
            .default_service(not_allowed("GET")),
    );
    for (path, handler) in [
        (
            "/api/v1/profiles/{name}/enable",
            web::post().to(profiles::enable),
        ),
        (
            "/api/v1/profiles/{name}/disable",
            web::post().to(profiles::disable),
        ),
        (
            "/api/v1/profiles/{name}/rotate-secret",
            web::post().to(profiles::rotate_secret),
        ),
        (
            "/api/v1/profiles/{name}/test",
            web::post().to(profiles::test),
        ),
        ("/api/v1/profiles/{name}/run", web::post().to(profiles::run)),
        (
            "/api/v1/deliveries/{id}/replay",
            web::post().to(profiles::replay_one),
        ),
    ] {
        cfg.service(
            web::resource(path)
                .name(path)
                .route(handler)
                .default_service(not_allowed("POST")),
        );
    }
}

/// The routes of an instance that only delivers (`CIDGATE_ROLES=deliver`): probes and
/// metrics; everything else is a JSON 404.
pub fn configure_operations(cfg: &mut web::ServiceConfig) {
    use routes::health;
    probes(cfg);
    cfg.service(
        web::resource("/metrics")
            .name("/metrics")
            .route(web::get().to(health::metrics))
            .default_service(not_allowed("GET")),
    );
    cfg.default_service(web::to(not_found));
}

/// `/healthz` and `/readyz`, alike on every role's instance: load balancers and
/// orchestrators may probe with HEAD (issue 28 item 12).
fn probes(cfg: &mut web::ServiceConfig) {
    use routes::health;
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
