pub mod agent_login;
pub mod agents;
pub mod cdr;
pub mod click2call;
pub mod contacts;
pub mod events;
pub mod health;
pub mod historic;
pub mod lookup;
pub mod pop;
pub mod profiles;
pub mod snapshot;
pub mod sources;

use actix_web::{HttpResponse, web};

use super::error::ApiError;

/// The agents, sessions and click-to-call routes (issue 18), kept together so the route
/// table in `http/mod.rs` gains one line.
pub fn agents_and_click2call(cfg: &mut web::ServiceConfig) {
    let not_allowed = |allow: &'static str| {
        web::to(move || async move { Err::<HttpResponse, _>(ApiError::MethodNotAllowed(allow)) })
    };
    cfg.service(
        web::resource("/api/v1/agents")
            .name("/api/v1/agents")
            .route(web::get().to(agents::list))
            .default_service(not_allowed("GET")),
    )
    .service(
        web::resource("/api/v1/agents/{extension}")
            .name("/api/v1/agents/{extension}")
            .route(web::put().to(agents::put))
            .route(web::get().to(agents::get))
            .route(web::delete().to(agents::delete))
            .default_service(not_allowed("GET, PUT, DELETE")),
    )
    .service(
        web::resource("/api/v1/agents/{extension}/sessions")
            .name("/api/v1/agents/{extension}/sessions")
            .route(web::post().to(agents::start_session))
            .route(web::delete().to(agents::end_sessions))
            .default_service(not_allowed("POST, DELETE")),
    )
    .service(
        web::resource("/api/v1/click2call")
            .name("/api/v1/click2call")
            .route(web::get().to(click2call::get))
            .route(web::post().to(click2call::post))
            .default_service(not_allowed("GET, POST")),
    )
    .service(
        web::resource("/api/v1/click2call/{RequestID}")
            .name("/api/v1/click2call/{RequestID}")
            .route(web::get().to(click2call::status))
            .default_service(not_allowed("GET")),
    )
    .service(
        web::resource("/agent/login")
            .name("/agent/login")
            .route(web::get().to(agent_login::confirm))
            .route(web::post().to(agent_login::login))
            .default_service(not_allowed("GET, POST")),
    )
    .service(
        web::resource("/agent/call")
            .name("/agent/call")
            .route(web::post().to(agent_login::call))
            .default_service(not_allowed("POST")),
    );
}
