//! Extractors that authenticate a request and resolve its tenant, so handlers never
//! see an unauthenticated request. Tokens are checked against the in-memory directory
//! first; the database is asked only about what the directory does not know. Failed
//! attempts are counted per source address. An address that fails too often is served
//! from memory alone until its block ends: a token the directory holds as valid still
//! passes (behind a shared proxy or NAT, other clients' guessing must not lock a tenant
//! out), anything else gets the 429 without reaching the database.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};
use futures_util::future::LocalBoxFuture;

use super::error::ApiError;
use super::rate_limit::Limited;
use super::state::AppState;
use crate::domain::{ApiToken, TokenHash, TokenScope};
use crate::live::directory::{TenantEntry, TokenCheck};
use crate::metrics::LimitLabels;

const INVALID_TOKEN: ApiError = ApiError::Unauthorized("the token is not valid for this API");
const TOKEN_REQUIRED: ApiError = ApiError::Unauthorized("a token is required");

/// A lookup by a PBX, identified by its token or (for `ip`-policy tenants) its address.
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
            let presented = presented_lookup_token(&req);
            rated_pbx(&req, presented, TokenScope::Lookup).await
        })
    }
}

/// A PBX or phone by the token of `scope` it presented or, without one, its address;
/// then the tenant's allowlist and lookup rate.
async fn rated_pbx(
    req: &HttpRequest,
    presented: Result<Option<String>, ApiError>,
    scope: TokenScope,
) -> Result<LookupAuth, ApiError> {
    let state = state(req);
    let ip = state.client_ip(req);
    let guard = Guard::new(&state, ip.or_else(|| peer_ip(req)));
    let identified = match presented {
        Ok(Some(token)) => lookup_by_token(req, &state, &guard, token, scope).await,
        Ok(None) => lookup_by_address(req, &state, &guard, ip).await,
        Err(e) => Err(e),
    };
    let entry = match identified {
        Ok(LookupAuth::Tenant(entry)) => entry,
        Ok(LookupAuth::Unverifiable) => return Ok(LookupAuth::Unverifiable),
        Err(e) => return Err(guard.failed(&state, e)),
    };
    allowed(&entry, ip)?;
    let tenant = &entry.tenant;
    state
        .limits
        .lookup(tenant.id, tenant.lookup_rate)
        .map_err(|over| limited(&state, over))?;
    Ok(LookupAuth::Tenant(entry))
}

async fn lookup_by_token(
    req: &HttpRequest,
    state: &AppState,
    guard: &Guard,
    presented: String,
    scope: TokenScope,
) -> Result<LookupAuth, ApiError> {
    let hash = parse_token(Some(presented), scope)?.hash();
    match state.directory.check(&hash, scope) {
        TokenCheck::Valid(_, entry) => Ok(LookupAuth::Tenant(entry)),
        TokenCheck::Invalid => Err(INVALID_TOKEN),
        TokenCheck::Unknown if guard.is_blocked() => Err(INVALID_TOKEN),
        TokenCheck::Unknown => {
            let check = async |limit| {
                let directory = &state.directory;
                directory
                    .check_in_database(&state.pool, limit, &hash, scope)
                    .await
            };
            match within_deadline(req, state, check).await {
                Some(Ok(Some((_, entry)))) => Ok(LookupAuth::Tenant(entry)),
                Some(Ok(None)) => Err(INVALID_TOKEN),
                Some(Err(e)) => {
                    tracing::warn!(error = format!("{e:#}"), "token check failed");
                    Ok(LookupAuth::Unverifiable)
                }
                None => Ok(LookupAuth::Unverifiable),
            }
        }
    }
}

/// No token: the source address may name an `ip`-policy tenant.
async fn lookup_by_address(
    req: &HttpRequest,
    state: &AppState,
    guard: &Guard,
    ip: Option<IpAddr>,
) -> Result<LookupAuth, ApiError> {
    let ip = ip.ok_or(TOKEN_REQUIRED)?;
    let found = match state.directory.tenant_by_ip(ip) {
        Some(found) => found,
        None if guard.is_blocked() => return Err(TOKEN_REQUIRED),
        None => {
            let check = async |limit| {
                let directory = &state.directory;
                directory
                    .tenant_by_ip_in_database(&state.pool, limit, ip)
                    .await
            };
            match within_deadline(req, state, check).await {
                Some(Ok(found)) => found,
                Some(Err(_)) | None => return Ok(LookupAuth::Unverifiable),
            }
        }
    };
    found.map(LookupAuth::Tenant).ok_or(TOKEN_REQUIRED)
}

/// Runs a database check within what is left of the lookup deadline; `None` when it
/// did not answer in time.
async fn within_deadline<T>(
    req: &HttpRequest,
    state: &AppState,
    check: impl AsyncFnOnce(std::time::Duration) -> anyhow::Result<T>,
) -> Option<anyhow::Result<T>> {
    let remaining = state
        .lookup
        .deadline()
        .saturating_sub(request_start(req).elapsed());
    match check(remaining).await {
        Err(e) if e.downcast_ref::<crate::store::TimedOut>().is_some() => None,
        outcome => Some(outcome),
    }
}

impl FromRequest for SyncAuth {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move { Ok(Self(bearer_of(&req, &[TokenScope::Sync]).await?)) })
    }
}

/// The tenant of a Bearer token holding one of `scopes`, under the token's rate limit.
async fn bearer_of(req: &HttpRequest, scopes: &[TokenScope]) -> Result<Arc<TenantEntry>, ApiError> {
    let state = state(req);
    let guard = Guard::new(&state, state.client_ip(req).or_else(|| peer_ip(req)));
    let mut found = Err(INVALID_TOKEN);
    for scope in scopes {
        found = scoped_token(&state, &guard, bearer_token(req), *scope).await;
        if !matches!(found, Err(ApiError::Unauthorized(_))) {
            break;
        }
    }
    let (token_id, entry) = found.map_err(|e| guard.failed(&state, e))?;
    state
        .limits
        .sync(token_id)
        .map_err(|over| limited(&state, over))?;
    Ok(entry)
}

/// A token of `scope`, checked in memory first, then (bounded) in the database.
async fn scoped_token(
    state: &AppState,
    guard: &Guard,
    presented: Result<Option<String>, ApiError>,
    scope: TokenScope,
) -> Result<(i64, Arc<TenantEntry>), ApiError> {
    let hash: TokenHash = parse_token(presented?, scope)?.hash();
    match state.directory.check(&hash, scope) {
        TokenCheck::Valid(id, entry) => Ok((id, entry)),
        TokenCheck::Invalid => Err(INVALID_TOKEN),
        TokenCheck::Unknown if guard.is_blocked() => Err(INVALID_TOKEN),
        TokenCheck::Unknown => {
            let directory = &state.directory;
            directory
                .check_in_database(&state.pool, state.write_timeout, &hash, scope)
                .await?
                .ok_or(INVALID_TOKEN)
        }
    }
}

/// The TCP peer: who to count failed attempts against when a proxy's header names no
/// usable address.
fn peer_ip(req: &HttpRequest) -> Option<IpAddr> {
    req.peer_addr().map(|a| a.ip().to_canonical())
}

/// The failed-authentication state of the address a request is counted against.
struct Guard {
    guesser: Option<IpAddr>,
    /// Set while the address is blocked: only what memory holds as valid passes.
    blocked: Option<Limited>,
}

impl Guard {
    fn new(state: &AppState, guesser: Option<IpAddr>) -> Self {
        Self {
            guesser,
            blocked: state.limits.refuse_guessing(guesser).err(),
        }
    }

    /// While blocked, nothing is asked of the database: a credential memory does not
    /// hold as valid is refused as if wrong.
    fn is_blocked(&self) -> bool {
        self.blocked.is_some()
    }

    /// A failed authentication: the 429 while blocked (not counted again: the block's
    /// end is already set); otherwise counted, and past the limit the answer becomes
    /// the 429.
    fn failed(&self, state: &AppState, error: ApiError) -> ApiError {
        if !matches!(error, ApiError::Unauthorized(_) | ApiError::SessionExpired) {
            return error;
        }
        if let Some(over) = self.blocked {
            return limited(state, over);
        }
        match state.limits.failed_auth(self.guesser) {
            Ok(()) => error,
            Err(over) => limited(state, over),
        }
    }
}

fn limited(state: &AppState, over: Limited) -> ApiError {
    state
        .metrics
        .rate_limited
        .get_or_create(&LimitLabels {
            limit: over.limit.as_str(),
        })
        .inc();
    over.into()
}

/// When the request arrived; the lookup deadline counts from here. The `observe`
/// middleware sets it.
#[derive(Debug, Clone, Copy)]
pub struct RequestStart(pub Instant);

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

fn parse_token(presented: Option<String>, _scope: TokenScope) -> Result<ApiToken, ApiError> {
    let presented = presented.ok_or(TOKEN_REQUIRED)?;
    // Wrong, revoked and other-scope tokens get one answer, so a probe learns nothing.
    ApiToken::from_presented(&presented)
        .filter(ApiToken::is_shaped)
        .ok_or(INVALID_TOKEN)
}

/// The one `Authorization` header; several that differ are refused (which one counts
/// would be anybody's guess).
fn authorization(req: &HttpRequest) -> Result<Option<&header::HeaderValue>, ApiError> {
    let mut values = req.headers().get_all(header::AUTHORIZATION);
    let first = values.next();
    if first.is_some_and(|first| values.any(|other| other != first)) {
        return Err(ApiError::Unauthorized(
            "several different Authorization headers were sent",
        ));
    }
    Ok(first)
}

/// The token of an `Authorization: Bearer …` header, if one was sent.
fn bearer_token(req: &HttpRequest) -> Result<Option<String>, ApiError> {
    let Some(value) = authorization(req)? else {
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

/// The lookup token, from the Bearer header or the `token` parameter. Both may be sent,
/// but naming two different tokens is refused: which one was meant is anybody's guess.
/// Another kind of Authorization header (Basic credentials for a proxy on the way) is
/// not cidgate's to read: the parameter, or the source address, identifies the PBX.
fn presented_lookup_token(req: &HttpRequest) -> Result<Option<String>, ApiError> {
    authorization(req)?;
    let header = bearer_token(req).unwrap_or(None);
    let query = query_token(req)?;
    match (header, query) {
        (Some(header), Some(query)) if header != query => Err(ApiError::Unauthorized(
            "the Authorization header and the token parameter name different tokens",
        )),
        (header, query) => Ok(header.or(query)),
    }
}

/// The `token` parameter; given twice, both must name the same token.
fn query_token(req: &HttpRequest) -> Result<Option<String>, ApiError> {
    let mut tokens = form_urlencoded::parse(req.query_string().as_bytes())
        .filter(|(name, _)| name == "token")
        .map(|(_, value)| value.trim().to_owned());
    let first = tokens.next();
    if first
        .as_ref()
        .is_some_and(|first| tokens.any(|other| &other != first))
    {
        return Err(ApiError::Unauthorized(
            "the token parameter is given twice with different tokens",
        ));
    }
    Ok(first)
}

/// A PBX by its token of `scope` (parameter or Bearer) or, without one, its address.
async fn identify_pbx(
    req: &HttpRequest,
    state: &AppState,
    guard: &Guard,
    ip: Option<IpAddr>,
    scope: TokenScope,
) -> Result<LookupAuth, ApiError> {
    match presented_lookup_token(req) {
        Ok(Some(token)) => lookup_by_token(req, state, guard, token, scope).await,
        Ok(None) => lookup_by_address(req, state, guard, ip).await,
        Err(e) => Err(e),
    }
}

/// The tenant's address rule for a PBX at `ip`.
fn allowed(entry: &TenantEntry, ip: Option<IpAddr>) -> Result<(), ApiError> {
    if entry.allows(ip) {
        return Ok(());
    }
    let shown = ip.map_or_else(|| "unknown".to_owned(), |ip| ip.to_string());
    Err(ApiError::Forbidden(format!(
        "source address {shown} is not on this tenant's allowlist"
    )))
}

/// A PBX reporting call events: an `events` token (parameter or Bearer) or, for an
/// `ip`-policy tenant, its address, under the allowlist, exactly as for lookups.
pub struct EventsAuth(pub Arc<TenantEntry>);

impl FromRequest for EventsAuth {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let state = state(&req);
            let ip = state.client_ip(&req);
            let guard = Guard::new(&state, ip.or_else(|| peer_ip(&req)));
            let identified = identify_pbx(&req, &state, &guard, ip, TokenScope::Events).await;
            let entry = match identified {
                Ok(LookupAuth::Tenant(entry)) => entry,
                Ok(LookupAuth::Unverifiable) => {
                    return Err(ApiError::Unavailable(anyhow::anyhow!(
                        "the token could not be checked in time"
                    )));
                }
                Err(e) => return Err(guard.failed(&state, e)),
            };
            allowed(&entry, ip)?;
            Ok(Self(entry))
        })
    }
}

/// A CRM or BI system reading call records or reports: a `report` token, Bearer or
/// parameter. A service user's key sees only what the user may (store::service_users).
pub struct ReportAuth {
    pub tenant: Arc<TenantEntry>,
    pub token_id: i64,
}

impl FromRequest for ReportAuth {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let state = state(&req);
            let guard = Guard::new(&state, state.client_ip(&req).or_else(|| peer_ip(&req)));
            let presented = presented_lookup_token(&req);
            let (token_id, entry) =
                match scoped_token(&state, &guard, presented, TokenScope::Report).await {
                    Ok(found) => found,
                    Err(e) => return Err(guard.failed(&state, e)),
                };
            state
                .limits
                .sync(token_id)
                .map_err(|over| limited(&state, over))?;
            Ok(Self {
                tenant: entry,
                token_id,
            })
        })
    }
}

/// The CRM's server signing agents in and out: a `sync` or an `admin` token, Bearer.
pub struct SessionsAuth(pub Arc<TenantEntry>);

impl FromRequest for SessionsAuth {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let scopes = [TokenScope::Sync, TokenScope::Admin];
            Ok(Self(bearer_of(&req, &scopes).await?))
        })
    }
}

/// An agent's session, presented by the CRM (`session` parameter or field) or the
/// agent's browser (its cookie): the tenant and the agent it names. Unknown and expired
/// sessions are one answer, `401` with `"login":false`; unknown ones count as failed
/// authentications of the address (guessing sessions is guessing tokens). A blocked
/// address still gets its live sessions checked, when this instance vouches for them.
pub async fn agent_session(
    req: &HttpRequest,
    presented: Option<&str>,
) -> Result<(crate::domain::Tenant, crate::domain::Session), ApiError> {
    use crate::domain::SessionSecret;
    use crate::store;
    let state = state(req);
    let guard = Guard::new(&state, state.client_ip(req).or_else(|| peer_ip(req)));
    let secret = presented.and_then(SessionSecret::from_presented);
    let Some(secret) = secret else {
        return Err(guard.failed(&state, ApiError::SessionExpired));
    };
    // Blocked: only a session this instance knows as live is asked about (its agents
    // must not be locked out by others' guessing behind one address); guesses are not.
    if guard.is_blocked() && !state.limits.is_vouched_session(&secret.hash()) {
        return Err(guard.failed(&state, ApiError::SessionExpired));
    }
    let found = store::with_client(&state.pool, state.write_timeout, async |client| {
        let Some(session) = store::sessions::find(&*client, &secret).await? else {
            return Ok(None);
        };
        let tenant = store::tenants::by_id(&*client, session.tenant).await?;
        Ok(tenant.map(|tenant| (tenant, session)))
    })
    .await?;
    match found {
        Some((tenant, session)) if session.is_live() => {
            state.limits.vouch_session(secret.hash());
            Ok((tenant, session))
        }
        // Expired: the CRM's cue to sign the agent in again, not a guess.
        Some(_) => Err(ApiError::SessionExpired),
        None => Err(guard.failed(&state, ApiError::SessionExpired)),
    }
}

/// An operator's tool managing the tenant's web-service profiles: an `admin` token as
/// a Bearer header, rate limited per token as sync jobs are.
pub struct AdminAuth(pub Arc<TenantEntry>);

impl FromRequest for AdminAuth {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move { Ok(Self(bearer_of(&req, &[TokenScope::Admin]).await?)) })
    }
}

/// A desk phone (issue 35): a `phones` token as the `token` parameter (phones cannot
/// send headers) or as the password of HTTP Basic credentials (Yealink V84+), or, for an
/// `ip`-policy tenant, its address; under the allowlist and the tenant's lookup rate,
/// exactly as for lookups. A 401 challenges for Basic credentials, which is what makes
/// a phone configured with a user name and password send them.
pub struct PhonesAuth {
    pub tenant: Arc<TenantEntry>,
    /// The token, when the phone put it in the URL: links to the next page carry it.
    pub url_token: Option<String>,
}

impl FromRequest for PhonesAuth {
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self, actix_web::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let presented = presented_phone_token(&req);
            match rated_pbx(&req, presented, TokenScope::Phones).await {
                Ok(LookupAuth::Tenant(tenant)) => Ok(Self {
                    tenant,
                    url_token: query_token(&req).ok().flatten(),
                }),
                Ok(LookupAuth::Unverifiable) => Err(ApiError::Unavailable(anyhow::anyhow!(
                    "the token could not be checked in time"
                ))
                .into()),
                Err(e) => Err(basic_challenge(e)),
            }
        })
    }
}

/// A 401 asking for Basic credentials (other errors as they are).
fn basic_challenge(error: ApiError) -> actix_web::Error {
    use actix_web::ResponseError;
    let mut response = error.error_response();
    if response.status() == actix_web::http::StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Basic realm=\"cidgate phones\""),
        );
    }
    actix_web::error::InternalError::from_response(error, response).into()
}

/// A phone's token: the `token` parameter, a Basic password or a Bearer token. Two
/// that differ are refused, as for lookups.
fn presented_phone_token(req: &HttpRequest) -> Result<Option<String>, ApiError> {
    let header = match authorization(req)? {
        None => None,
        Some(value) => {
            let value = value.to_str().map_err(|_| {
                ApiError::Unauthorized("the Authorization header is not readable text")
            })?;
            match value.split_once(' ') {
                Some((scheme, rest)) if scheme.eq_ignore_ascii_case("basic") => {
                    Some(basic_password(rest.trim()).ok_or(ApiError::Unauthorized(
                        "the Authorization header's Basic credentials are not base64 `user:password`",
                    ))?)
                }
                Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => {
                    Some(token.trim().to_owned())
                }
                _ => {
                    return Err(ApiError::Unauthorized(
                        "the Authorization header must be Basic or Bearer",
                    ));
                }
            }
        }
    };
    match (header, query_token(req)?) {
        (Some(header), Some(query)) if header != query => Err(ApiError::Unauthorized(
            "the Authorization header and the token parameter name different tokens",
        )),
        (header, query) => Ok(header.or(query)),
    }
}

/// The password of Basic credentials (the user name is the phone's to choose).
fn basic_password(encoded: &str) -> Option<String> {
    use base64::Engine;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (_, password) = text.split_once(':')?;
    Some(password.trim().to_owned())
}
