//! Extractors that authenticate a request and resolve its tenant, so handlers never
//! see an unauthenticated request.

use std::net::IpAddr;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, web};
use futures_util::future::LocalBoxFuture;

use super::AppState;
use crate::domain::{ApiToken, TokenScope};
use crate::error::ApiError;
use crate::store::{self, tenants::Tenant};

/// A lookup by a PBX: a `lookup` token (query `token` or Bearer header) of a tenant,
/// from an address on that tenant's allowlist when it has one.
pub struct LookupAuth(pub Tenant);

/// A CRM sync job: a `sync` token as a Bearer header.
pub struct SyncAuth(pub Tenant);

impl FromRequest for LookupAuth {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let token = match bearer_token(&req)? {
                Some(token) => Some(token),
                None => query_token(&req),
            };
            let tenant = authenticate(&req, token, TokenScope::Lookup).await?;
            check_allowlist(&req, &tenant).await?;
            Ok(Self(tenant))
        })
    }
}

impl FromRequest for SyncAuth {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let token = bearer_token(&req)?;
            authenticate(&req, token, TokenScope::Sync).await.map(Self)
        })
    }
}

fn state(req: &HttpRequest) -> &AppState {
    req.app_data::<web::Data<AppState>>()
        .expect("AppState is registered in the route table")
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

async fn authenticate(
    req: &HttpRequest,
    presented: Option<String>,
    scope: TokenScope,
) -> Result<Tenant, ApiError> {
    let presented = presented.ok_or(ApiError::Unauthorized("a token is required"))?;
    // Wrong, revoked and other-scope tokens get one answer, so a probe learns nothing.
    let invalid = ApiError::Unauthorized("the token is not valid for this API");
    let token = ApiToken::from_presented(&presented).ok_or(invalid)?;
    let client = state(req).pool.get().await?;
    store::tokens::authenticate(&client, &token.hash(), scope)
        .await?
        .ok_or(ApiError::Unauthorized(
            "the token is not valid for this API",
        ))
}

/// The address the request came from (the TCP peer).
pub fn client_ip(req: &HttpRequest) -> Option<IpAddr> {
    req.peer_addr().map(|addr| addr.ip().to_canonical())
}

async fn check_allowlist(req: &HttpRequest, tenant: &Tenant) -> Result<(), ApiError> {
    let client = state(req).pool.get().await?;
    let networks = store::allowlist::list(&client, tenant.id).await?;
    if networks.is_empty() {
        return Ok(());
    }
    match client_ip(req) {
        Some(ip) if networks.iter().any(|n| n.contains(ip)) => Ok(()),
        Some(ip) => Err(ApiError::Forbidden(format!(
            "source address {ip} is not on this tenant's allowlist"
        ))),
        None => Err(ApiError::Forbidden("source address unknown".into())),
    }
}
