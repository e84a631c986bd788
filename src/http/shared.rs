//! What the route files share: the answer to a method a path does not serve, the pages'
//! Content-Security-Policy, and the agent's session cookie (set by `/agent/login`, read
//! by the screen pop and `/agent/call`). Here, so that no route imports another.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};

use super::error::ApiError;

/// A resource named by its path (metrics label requests by it without formatting the
/// pattern anew) that answers 405 naming `allow` to the methods it does not serve.
pub fn resource(path: &'static str, allow: &'static str) -> actix_web::Resource {
    web::resource(path)
        .name(path)
        .default_service(not_allowed(allow))
}

/// The answer to a method a path does not serve: 405 naming the ones it does.
pub fn not_allowed(allow: &'static str) -> actix_web::Route {
    web::to(move || async move { Err::<HttpResponse, _>(ApiError::MethodNotAllowed(allow)) })
}

/// The pages' Content-Security-Policy: no script, styles and images only from here, and
/// framing by `frame_ancestors` (`'none'`, or the tenant's list).
pub fn content_security_policy(frame_ancestors: &str) -> String {
    format!(
        "default-src 'none'; style-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors {frame_ancestors}"
    )
}

/// The cookie holding the agent's session secret.
pub const COOKIE: &str = "cidgate_agent";

/// The session secret the browser's cookie holds, if it sent one.
pub fn session_cookie(req: &HttpRequest) -> Option<String> {
    req.headers()
        .get_all(header::COOKIE)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.trim().to_owned())
}
