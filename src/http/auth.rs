//! Extractors that authenticate a request and resolve its tenant, so handlers never
//! see an unauthenticated request. Tokens are checked against the in-memory directory
//! first; the database is asked only about tokens the directory does not know.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};
use futures_util::future::LocalBoxFuture;

use super::{AppState, RequestStart};
use crate::directory::{TenantEntry, TokenCheck};
use crate::domain::{ApiToken, TokenScope};
use crate::error::ApiError;

const INVALID_TOKEN: ApiError = ApiError::Unauthorized("the token is not valid for this API");

/// A lookup by a PBX: a `lookup` token (query `token` or Bearer header) of a tenant,
/// from an address on that tenant's allowlist when it has one.
pub enum LookupAuth {
    Tenant(Arc<TenantEntry>),
    /// The database could not be asked in time about an unfamiliar token. The PBX still
    /// gets an answer (the unknown one, which holds no data) so the call is routed.
    Unverifiable,
}

/// A CRM sync job: a `sync` token as a Bearer header.
pub struct SyncAuth(pub Arc<TenantEntry>);

impl FromRequest for LookupAuth {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let started = request_start(&req);
            let state = state(&req);
            let presented = match bearer_token(&req)? {
                Some(token) => Some(token),
                None => query_token(&req),
            };
            let hash = parse_token(presented)?.hash();
            let entry = match state.directory.check(&hash, TokenScope::Lookup) {
                TokenCheck::Valid(entry) => entry,
                TokenCheck::Invalid => return Err(INVALID_TOKEN),
                TokenCheck::Unknown => {
                    let remaining = state.lookup.deadline().saturating_sub(started.elapsed());
                    let check =
                        state
                            .directory
                            .check_in_database(&state.pool, &hash, TokenScope::Lookup);
                    match tokio::time::timeout(remaining, check).await {
                        Ok(Ok(Some(entry))) => entry,
                        Ok(Ok(None)) => return Err(INVALID_TOKEN),
                        Ok(Err(e)) => {
                            tracing::warn!(error = format!("{e:#}"), "token check failed");
                            return Ok(Self::Unverifiable);
                        }
                        Err(_) => return Ok(Self::Unverifiable),
                    }
                }
            };
            let ip = client_ip(&req);
            if !entry.allows(ip) {
                let shown = ip.map_or_else(|| "unknown".to_owned(), |ip| ip.to_string());
                return Err(ApiError::Forbidden(format!(
                    "source address {shown} is not on this tenant's allowlist"
                )));
            }
            Ok(Self::Tenant(entry))
        })
    }
}

impl FromRequest for SyncAuth {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let state = state(&req);
            let token = parse_token(bearer_token(&req)?)?;
            match state.directory.check(&token.hash(), TokenScope::Sync) {
                TokenCheck::Valid(entry) => Ok(Self(entry)),
                TokenCheck::Invalid => Err(INVALID_TOKEN),
                TokenCheck::Unknown => state
                    .directory
                    .check_in_database(&state.pool, &token.hash(), TokenScope::Sync)
                    .await?
                    .map(Self)
                    .ok_or(INVALID_TOKEN),
            }
        })
    }
}

/// When the request arrived (set by the `observe` middleware; now, without it).
pub fn request_start(req: &HttpRequest) -> Instant {
    req.extensions()
        .get::<RequestStart>()
        .map_or_else(Instant::now, |start| start.0)
}

fn state(req: &HttpRequest) -> web::Data<AppState> {
    req.app_data::<web::Data<AppState>>()
        .expect("AppState is registered in the route table")
        .clone()
}

fn parse_token(presented: Option<String>) -> Result<ApiToken, ApiError> {
    let presented = presented.ok_or(ApiError::Unauthorized("a token is required"))?;
    // Wrong, revoked and other-scope tokens get one answer, so a probe learns nothing.
    ApiToken::from_presented(&presented).ok_or(INVALID_TOKEN)
}

/// The token of an `Authorization: Bearer …` header, if one was sent.
fn bearer_token(req: &HttpRequest) -> Result<Option<String>, ApiError> {
    let Some(value) = req.headers().get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value
        .to_str()
        .map_err(|_| ApiError::Unauthorized("the Authorization header is not readable text"))?;
    match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => {
            Ok(Some(token.trim().to_owned()))
        }
        _ => Err(ApiError::Unauthorized(
            "the Authorization header must be `Bearer <token>`",
        )),
    }
}

fn query_token(req: &HttpRequest) -> Option<String> {
    serde_urlencoded::from_str::<Vec<(String, String)>>(req.query_string())
        .ok()?
        .into_iter()
        .find(|(name, _)| name == "token")
        .map(|(_, value)| value)
}

/// The address the request came from (the TCP peer).
pub fn client_ip(req: &HttpRequest) -> Option<IpAddr> {
    req.peer_addr().map(|addr| addr.ip().to_canonical())
}
