//! The agent's browser (issue 18, items 2 and 6): `/agent/login?session=…` asks the
//! person to confirm, and the confirmation's post (from cidgate's own page: no login
//! CSRF, issue 28 item 10) signs it in once per shift with a cookie on cidgate's
//! origin, so the screen pop's call button
//! (a form post to `/agent/call`, no JavaScript) starts a click-to-call as that agent.
//!
//! The cookie is HttpOnly, Secure and SameSite=Strict: no script reads it, and no other
//! site's page can make the browser send it (a form on another site posting to
//! `/agent/call` arrives without it), which is the call button's CSRF protection.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, Responder, web};

use super::click2call::{Ask, click};
use crate::http::auth::agent_session;
use crate::http::error::ApiError;
use crate::http::shared::resource;
use crate::http::shared::{COOKIE, content_security_policy, session_cookie};
use crate::http::state::AppState;
use crate::popup::views::{AgentLoginPage, EN, ErrorPage};

/// The pages here sit at `/agent/…`, the stylesheet at `/pop/style.css`.
const CSS_HREF: &str = "../pop/style.css";
/// Most bytes of the call button's form.
const FORM_LIMIT: usize = 4 * 1024;

/// `GET /agent/login?session=…`: the link the CRM opens. Checks the session and asks the
/// person to confirm; it sets no cookie, so a page elsewhere that loads the link (login
/// CSRF: signing a browser in as another agent) changes nothing.
pub async fn confirm(req: HttpRequest) -> HttpResponse {
    let presented = form_urlencoded::parse(req.query_string().as_bytes())
        .find(|(k, _)| k == "session")
        .map(|(_, v)| v.into_owned());
    match agent_session(&req, presented.as_deref()).await {
        Ok((_, session)) => {
            let agent = session.extension.to_string();
            let until = session.expires_at.format("%Y-%m-%d %H:%M").to_string();
            let page = AgentLoginPage {
                s: &EN,
                css_href: CSS_HREF,
                agent: &agent,
                until: &until,
                session: presented.as_deref().unwrap_or_default().trim(),
            };
            headers(page.customize().with_status(StatusCode::OK), "'self'")
                .respond_to(&req)
                .map_into_boxed_body()
        }
        Err(e) => failure(&req, &e),
    }
}

/// `POST /agent/login` (form: `session`): the confirmation's post, from cidgate's own
/// page only (`Origin`, `Sec-Fetch-Site`); sets the cookie until the session expires.
pub async fn login(req: HttpRequest, body: web::Bytes, state: web::Data<AppState>) -> HttpResponse {
    if body.len() > FORM_LIMIT {
        return failure(&req, &ApiError::PayloadTooLarge(FORM_LIMIT));
    }
    if !same_origin(&req, &state) {
        return failure(
            &req,
            &ApiError::Forbidden(
                "an agent signs in from cidgate's own page: open /agent/login?session=… and confirm".into(),
            ),
        );
    }
    let presented = form_urlencoded::parse(&body)
        .find(|(k, _)| k == "session")
        .map(|(_, v)| v.into_owned());
    match agent_session(&req, presented.as_deref()).await {
        Ok((_, session)) => {
            let max_age = (session.expires_at - chrono::Utc::now())
                .num_seconds()
                .max(0);
            let cookie = format!(
                "{COOKIE}={}; Path=/; Max-Age={max_age}; HttpOnly; Secure; SameSite=Strict",
                presented.unwrap_or_default().trim()
            );
            let message = format!(
                "This browser is signed in as agent {} until {} UTC. Screen pops now offer call buttons.",
                session.extension,
                session.expires_at.format("%Y-%m-%d %H:%M")
            );
            let mut response = page(&req, StatusCode::OK, "Signed in", &message);
            match HeaderValue::from_str(&cookie) {
                Ok(value) => {
                    response.headers_mut().append(header::SET_COOKIE, value);
                }
                Err(_) => return failure(&req, &ApiError::SessionExpired),
            }
            response
        }
        Err(e) => failure(&req, &e),
    }
}

/// `POST /agent/call` (form: `number`, optional `queue`): the pop page's call button.
pub async fn call(req: HttpRequest, body: web::Bytes, state: web::Data<AppState>) -> HttpResponse {
    if body.len() > FORM_LIMIT {
        return failure(&req, &ApiError::PayloadTooLarge(FORM_LIMIT));
    }
    if !same_origin(&req, &state) {
        return failure(
            &req,
            &ApiError::Forbidden("the call button posts only from cidgate's own pages".into()),
        );
    }
    let mut ask = Ask {
        session: session_cookie(&req),
        number: None,
        queue: None,
    };
    for (name, value) in form_urlencoded::parse(&body) {
        match name.as_ref() {
            "number" => ask.number = Some(value.into_owned()),
            "queue" if !value.trim().is_empty() => ask.queue = Some(value.into_owned()),
            _ => {}
        }
    }
    match click(&req, &state, ask).await {
        Ok(placed) => {
            let request_id = placed.request_id;
            let message = format!(
                "Your phone rings first; pick it up and the number is dialled (RequestID {request_id})."
            );
            page(&req, StatusCode::OK, "Calling", &message)
        }
        Err(e) => failure(&req, &e),
    }
}

/// A browser names where a form was posted from (`Origin`; `Sec-Fetch-Site` too in
/// current browsers); another origin is refused (the SameSite cookie already stays
/// behind on the call button, this says so plainly; on the login form it is the guard).
/// A client that sends neither (curl, a CRM's server) is no browser to forge for.
fn same_origin(req: &HttpRequest, state: &AppState) -> bool {
    let fetch_site = req
        .headers()
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok());
    if fetch_site.is_some_and(|site| !matches!(site, "same-origin" | "none")) {
        return false;
    }
    let Some(origin) = req
        .headers()
        .get(header::ORIGIN)
        .and_then(|o| o.to_str().ok())
    else {
        return true;
    };
    let ours = state.public_url.origin().ascii_serialization();
    let host = req.connection_info().host().to_owned();
    origin == ours
        || origin
            .split_once("://")
            .is_some_and(|(_, rest)| rest == host)
}

fn failure(req: &HttpRequest, error: &ApiError) -> HttpResponse {
    use actix_web::ResponseError;
    let heading = match error {
        ApiError::SessionExpired => "Not signed in",
        ApiError::DialRefused { .. } => "Number refused",
        ApiError::TooManyRequests { .. } => "Too many calls",
        _ => "The call could not be started",
    };
    let message = match error {
        ApiError::SessionExpired => {
            "This browser has no live agent session: open the sign-in link your CRM gives you (/agent/login?session=…), then try again.".to_owned()
        }
        other => other.to_string(),
    };
    page(req, error.status_code(), heading, &message)
}

fn page(req: &HttpRequest, status: StatusCode, heading: &str, message: &str) -> HttpResponse {
    let page = ErrorPage {
        s: &EN,
        css_href: CSS_HREF,
        heading,
        message,
    };
    headers(page.customize().with_status(status), "'none'")
        .respond_to(req)
        .map_into_boxed_body()
}

/// The pages' headers: a strict CSP (forms posting to `form_action` only), no framing,
/// no caching (the confirmation holds the session).
fn headers<R: Responder>(
    page: actix_web::CustomizeResponder<R>,
    form_action: &str,
) -> actix_web::CustomizeResponder<R> {
    let csp = content_security_policy("'none'")
        .replace("form-action 'none'", &format!("form-action {form_action}"));
    page.insert_header((header::CONTENT_SECURITY_POLICY, csp))
        .insert_header((header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")))
        .insert_header((header::CACHE_CONTROL, "no-store"))
}

/// Registers the agent's sign-in and the pop's call button.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        resource("/agent/login", "GET, POST")
            .route(web::get().to(confirm))
            .route(web::post().to(login)),
    )
    .service(resource("/agent/call", "POST").route(web::post().to(call)));
}
