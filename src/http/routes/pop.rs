//! `GET /pop/{link}`: the agent's screen pop, opened from the `backend_link` of a
//! lookup. The link is the only credential: it must verify and be unexpired, and the
//! page shows exactly the call it names. Pages are rate-limited per source address, and
//! a link is checked against the keys in memory before anything is read: a forged,
//! altered or expired link costs no query.

use actix_web::http::StatusCode;
use actix_web::http::header::RETRY_AFTER;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{CustomizeResponder, HttpRequest, HttpResponse, Responder, web};
use deadpool_postgres::GenericClient;

use crate::calls::cdr::tenant_zone;
use crate::domain::{
    CallRecord, ContactRecord, CrmId, PopupSettings, RecentCall, SessionSecret, Tenant, TenantId,
};
use crate::http::rate_limit::Limited;
use crate::http::shared::{content_security_policy, session_cookie};
use crate::http::state::AppState;
use crate::metrics::LimitLabels;
use crate::popup::views::{self, CallButton, ContactPage, EN, ErrorPage, NumberView, UnknownPage};
use crate::popup::{self, LinkClaims, LinkError, UnverifiedLink};

use crate::http::shared::resource;
use crate::store;

/// Relative, so the page works under any path prefix of the public URL.
const CSS_HREF: &str = "style.css";
pub const POP_CSS: &str = include_str!("../../../templates/pop.css");
/// Recent calls shown on a page.
const RECENT_CALLS: i64 = 10;

/// `GET /pop/style.css`: the pages' only asset, served by the gateway itself.
pub async fn style() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "public, max-age=86400"))
        .body(POP_CSS)
}

pub async fn pop(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let source = state
        .client_ip(&req)
        .or_else(|| req.peer_addr().map(|a| a.ip().to_canonical()));
    if let Err(over) = state.limits.pop(source) {
        state
            .metrics
            .rate_limited
            .get_or_create(&LimitLabels {
                limit: over.limit.as_str(),
            })
            .inc();
        return Failure::Limited(over).page(&req, None);
    }
    match render(&req, &path, &state).await {
        Ok(response) => response,
        Err(failure) => {
            // An expired link or an outage: the page still goes into the softphone's
            // frame, so it takes the framing of the tenant the link names.
            let tenant = popup::parse(&path).ok().map(|link| link.tenant());
            let framing = tenant
                .and_then(|id| state.directory.tenant(id))
                .map(|entry| entry.tenant.popup.clone());
            failure.page(&req, framing)
        }
    }
}

/// Why no page can be shown; none of these carries contact data.
enum Failure {
    Invalid,
    Expired,
    Limited(Limited),
    Gone(PopupSettings),
    Unavailable(anyhow::Error),
}

impl Failure {
    /// The error page; `framing` is the settings of the tenant the link names, used
    /// for an expired link or an outage (not for a link that failed its signature).
    fn page(self, req: &HttpRequest, framing: Option<PopupSettings>) -> HttpResponse {
        let (status, heading, message, settings) = match self {
            Self::Invalid => (
                StatusCode::FORBIDDEN,
                EN.link_invalid,
                EN.link_invalid_message,
                None,
            ),
            Self::Expired => (
                StatusCode::GONE,
                EN.link_expired,
                EN.link_expired_message,
                framing,
            ),
            Self::Limited(over) => {
                let page = ErrorPage {
                    s: &EN,
                    css_href: CSS_HREF,
                    heading: EN.unavailable,
                    message: EN.unavailable_message,
                };
                let wait = over.retry_after.as_secs().max(1).to_string();
                let page = page
                    .customize()
                    .with_status(StatusCode::TOO_MANY_REQUESTS)
                    .insert_header((RETRY_AFTER, wait));
                return respond(req, page, None);
            }
            Self::Gone(settings) => (
                StatusCode::GONE,
                EN.contact_gone,
                EN.contact_gone_message,
                Some(settings),
            ),
            Self::Unavailable(e) => {
                tracing::error!(error = format!("{e:#}"), "screen pop failed");
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    EN.unavailable,
                    EN.unavailable_message,
                    framing,
                )
            }
        };
        let page = ErrorPage {
            s: &EN,
            css_href: CSS_HREF,
            heading,
            message,
        };
        respond(req, page.customize().with_status(status), settings.as_ref())
    }
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Self::Unavailable(e)
    }
}

/// What a verified link shows, read on one connection.
struct Shown {
    tenant: Tenant,
    recent: Vec<RecentCall>,
    /// The number's calls, when the PBX reports them.
    calls: Vec<CallRecord>,
    /// The contact the link names; `None` on an unknown caller's page.
    contact: Option<ContactRecord>,
    /// The call button, when the tenant has a dialer (click-to-call).
    call: Option<CallButton>,
}

/// Checks the link with the key the directory holds: no database work before it passes.
/// A key made in the moments since the directory's last load is not known yet, and its
/// links are refused until the change notification arrives.
fn verify(state: &AppState, link: UnverifiedLink<'_>) -> Result<LinkClaims<'static>, Failure> {
    let key = match state.directory.link_key(link.tenant(), link.key_id) {
        Some(Some(key)) => key,
        Some(None) => return Err(Failure::Invalid),
        None => {
            return Err(Failure::Unavailable(anyhow::anyhow!(
                "the directory of keys is not loaded yet"
            )));
        }
    };
    link.verify(&key).map_err(|e| match e {
        LinkError::Expired => Failure::Expired,
        LinkError::Malformed | LinkError::BadSignature => Failure::Invalid,
    })
}

/// Reads what a verified link shows: the tenant, the number's recent calls and the
/// contact it names. The key is asked about once more, so a key retired on another
/// instance a moment ago stops its links here at once too.
async fn read(
    client: &impl GenericClient,
    claims: &LinkClaims<'_>,
    key_id: i32,
    agent_cookie: Option<&SessionSecret>,
) -> Result<Shown, Failure> {
    store::signing_keys::find(client, TenantId(claims.tenant), key_id)
        .await?
        .ok_or(Failure::Invalid)?;
    let tenant = store::tenants::by_id(client, TenantId(claims.tenant))
        .await?
        .ok_or(Failure::Invalid)?;
    let calls =
        store::cdr::recent_for_number(client, tenant.id, &claims.number, RECENT_CALLS).await?;
    let recent = match calls.is_empty() {
        true => {
            store::lookup_log::recent_calls(client, tenant.id, &claims.number, RECENT_CALLS).await?
        }
        false => Vec::new(),
    };
    let contact = match claims.crm_id.as_deref() {
        None => None,
        Some(crm_id) => {
            let id = CrmId::parse(crm_id).map_err(|_| Failure::Invalid)?;
            let contact = store::contacts::get(client, tenant.id, &id).await?;
            Some(contact.ok_or_else(|| Failure::Gone(tenant.popup.clone()))?)
        }
    };
    let call = call_button(client, &tenant, &claims.number, agent_cookie).await?;
    Ok(Shown {
        tenant,
        recent,
        calls,
        contact,
        call,
    })
}

/// The call button when the tenant has a dialer, naming the agent whose live session
/// the browser's cookie holds. A SameSite=Strict cookie does not come with a page
/// opened from another site (a CRM or softphone link), so the button shows without a
/// name then; its post, made from this page, carries the cookie.
async fn call_button(
    client: &impl GenericClient,
    tenant: &Tenant,
    number: &str,
    agent_cookie: Option<&SessionSecret>,
) -> anyhow::Result<Option<CallButton>> {
    if store::click2call::dialer(client, tenant.id)
        .await?
        .is_none()
    {
        return Ok(None);
    }
    let agent = match agent_cookie {
        Some(secret) => store::sessions::find(client, secret)
            .await?
            .filter(|s| s.tenant == tenant.id && s.is_live())
            .map(|s| s.extension.to_string()),
        None => None,
    };
    Ok(Some(CallButton {
        action: "../agent/call",
        number: number.to_owned(),
        agent,
    }))
}

async fn render(req: &HttpRequest, token: &str, state: &AppState) -> Result<HttpResponse, Failure> {
    let link = popup::parse(token).map_err(|_| Failure::Invalid)?;
    let key_id = link.key_id;
    let claims = verify(state, link)?;
    let agent_cookie = session_cookie(req).and_then(|c| SessionSecret::from_presented(&c));
    let Shown {
        tenant,
        recent,
        calls,
        contact,
        call,
    } = store::with_client(&state.pool, state.write_timeout, async |client| {
        Ok(read(&*client, &claims, key_id, agent_cookie.as_ref()).await)
    })
    .await??;
    let has_call = call.is_some();
    let number = NumberView::new(&claims.number, tenant.region);
    let zone = tenant_zone(&tenant.settings);
    let recent = match calls.is_empty() {
        true => views::recent_lookups(&EN, &recent, zone),
        false => views::recent_calls(&EN, &calls, zone),
    };
    let settings = &tenant.popup;
    let trust = views::TrustView::new(
        claims.verstat.as_deref(),
        claims.attest.as_deref(),
        claims.screened.as_deref(),
    );

    let (Some(crm_id), Some(contact)) = (claims.crm_id.as_deref(), contact) else {
        let create_link = settings
            .create_url_template
            .as_deref()
            .map(|t| popup::fill_template(t, None, &claims.number, &number.national));
        let page = UnknownPage {
            s: &EN,
            css_href: CSS_HREF,
            number,
            dnid: claims.dnid.as_deref(),
            create_link,
            recent,
            call,
            trust,
        };
        return Ok(respond_with_form(req, page.customize(), settings, has_call));
    };

    let crm_link = contact.routing.crm_url.clone().or_else(|| {
        settings
            .crm_url_template
            .as_deref()
            .map(|t| popup::fill_template(t, Some(crm_id), &claims.number, &number.national))
    });
    if let Some(target) = crm_link.as_ref().filter(|_| settings.redirect_to_crm) {
        return Ok(HttpResponse::SeeOther()
            .insert_header((header::LOCATION, target.as_str()))
            .finish());
    }
    let page = ContactPage {
        s: &EN,
        css_href: CSS_HREF,
        name: &contact.name,
        crm_id,
        number,
        dnid: claims.dnid.as_deref(),
        crm_link,
        routing: views::routing_items(&EN, &contact),
        attributes: views::attribute_rows(&contact.attributes),
        recent,
        call,
        trust,
    };
    Ok(respond_with_form(req, page.customize(), settings, has_call))
}

/// A caller's page: with the call button, its form may post (to this origin only).
fn respond_with_form<R: Responder>(
    req: &HttpRequest,
    page: CustomizeResponder<R>,
    settings: &PopupSettings,
    form: bool,
) -> HttpResponse
where
    R::Body: 'static,
{
    let mut response = respond(req, page, Some(settings));
    if form {
        let csp = response
            .headers()
            .get(header::CONTENT_SECURITY_POLICY)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.replace("form-action 'none'", "form-action 'self'"));
        if let Some(value) = csp.and_then(|v| HeaderValue::from_str(&v).ok()) {
            response
                .headers_mut()
                .insert(header::CONTENT_SECURITY_POLICY, value);
        }
    }
    response
}

/// Adds the page headers: a strict Content-Security-Policy (no script, styles only from
/// here) and the tenant's framing rule (softphones embed the page in an iframe).
fn respond<R: Responder>(
    req: &HttpRequest,
    page: CustomizeResponder<R>,
    settings: Option<&PopupSettings>,
) -> HttpResponse
where
    R::Body: 'static,
{
    let ancestors = settings
        .map(|s| s.frame_ancestors.as_slice())
        .unwrap_or_default();
    let frame_ancestors = if ancestors.is_empty() {
        "'none'".to_owned()
    } else {
        ancestors.join(" ")
    };
    let csp = content_security_policy(&frame_ancestors);
    let mut page = page.insert_header((header::CONTENT_SECURITY_POLICY, csp));
    if ancestors.is_empty() {
        page = page.insert_header((header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")));
    }
    page.respond_to(req).map_into_boxed_body()
}

/// Registers the screen pop's page and its stylesheet.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/pop/style.css", "GET").route(web::get().to(style)))
        .service(resource("/pop/{link}", "GET").route(web::get().to(pop)));
}
