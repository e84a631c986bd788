//! `GET /openapi.json`: the OpenAPI description of every operation the route table serves.

use actix_web::{HttpResponse, web};

use crate::http::OPENAPI;
use crate::http::shared::resource;

async fn openapi() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(OPENAPI)
}

/// Registers `/openapi.json`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/openapi.json", "GET").route(web::get().to(openapi)));
}
