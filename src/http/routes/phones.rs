//! Desk phones (issue 35): `/phones/{vendor}/directory` and `/input`, the downloadable
//! phone books, and Gigaset's caller-name lookup. Parse, ask the store or the lookup,
//! render with `phones::`.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};

use crate::http::auth::{PhonesAuth, request_start};
use crate::http::error::ApiError;
use crate::http::state::AppState;
use crate::lookup::Caller;
use crate::phones::{self, Answer, PageLinks, SearchParams, Vendor, gigaset};
use crate::store;

/// Registers the phones' routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    let not_allowed =
        || web::to(|| async { Err::<HttpResponse, _>(ApiError::MethodNotAllowed("GET")) });
    for (path, handler) in [
        ("/phones/{vendor}/directory", web::get().to(directory)),
        ("/phones/{vendor}/input", web::get().to(input)),
        ("/phones/yealink/phonebook.xml", web::get().to(yealink_book)),
        (
            "/phones/grandstream/phonebook.xml",
            web::get().to(grandstream_book),
        ),
        ("/phones/gigaset/lookup", web::get().to(gigaset_lookup)),
    ] {
        cfg.service(
            web::resource(path)
                .name(path)
                .route(handler)
                .default_service(not_allowed()),
        );
    }
}

fn vendor(name: &str) -> Result<Vendor, ApiError> {
    Vendor::parse(name).ok_or_else(|| {
        let names: Vec<&str> = Vendor::ALL.iter().map(|v| v.as_str()).collect();
        ApiError::NotFound(format!(
            "`{}` is not a phone vendor cidgate serves: {}",
            name.chars().take(32).collect::<String>(),
            names.join(", ")
        ))
    })
}

/// A phone's document: never cached on the way (it holds contact data).
fn respond(answer: Answer) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(answer.content_type)
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(answer.body)
}

/// The URL of this directory's page at `offset`, carrying the token when the phone
/// sent it in the URL (a phone sending Basic credentials sends them again).
fn page_url(
    state: &AppState,
    vendor: Vendor,
    token: Option<&str>,
    params: &SearchParams,
    offset: u32,
) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    if let Some(token) = token {
        query.append_pair("token", token);
    }
    query
        .append_pair("term", &params.term)
        .append_pair("offset", &offset.to_string())
        .append_pair("limit", &params.limit.to_string());
    format!(
        "{}/phones/{}/directory?{}",
        state.public_url.as_str().trim_end_matches('/'),
        vendor.as_str(),
        query.finish()
    )
}

pub async fn directory(
    req: HttpRequest,
    auth: PhonesAuth,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let vendor = vendor(&path)?;
    let params = SearchParams::parse(req.query_string(), vendor).map_err(ApiError::BadRequest)?;
    let tenant = &auth.tenant.tenant;
    let search = phones::search_for(&params, tenant.region);
    let pool = state.read_pool.as_ref().unwrap_or(&state.pool);
    let mut rows = store::with_client(pool, state.write_timeout, async |client| {
        // Its own transaction: the search may set planner options for its statement.
        let tx = client.transaction().await?;
        let rows = store::phones::search(&tx, tenant.id, &search).await?;
        tx.commit().await?;
        Ok(rows)
    })
    .await?;
    let limit = params.limit as usize;
    let has_next = rows.len() > limit;
    rows.truncate(limit);
    let token = auth.url_token.as_deref();
    let links = PageLinks {
        prev: (params.offset > 0).then(|| {
            let offset = params.offset.saturating_sub(params.limit);
            page_url(&state, vendor, token, &params, offset)
        }),
        next: has_next.then(|| {
            let offset = params.offset.saturating_add(params.limit);
            page_url(&state, vendor, token, &params, offset)
        }),
    };
    state.metrics.phones.answered(vendor.as_str(), "directory");
    Ok(respond(phones::directory(vendor, &rows, &links)))
}

pub async fn input(
    auth: PhonesAuth,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let vendor = vendor(&path)?;
    let search_url = format!(
        "{}/phones/{}/directory",
        state.public_url.as_str().trim_end_matches('/'),
        vendor.as_str()
    );
    let answer =
        phones::input(vendor, &search_url, auth.url_token.as_deref()).ok_or_else(|| {
            ApiError::NotFound(format!(
                "{} phones have no search-input page: only cisco and snom do",
                vendor.as_str()
            ))
        })?;
    state.metrics.phones.answered(vendor.as_str(), "input");
    Ok(respond(answer))
}

pub async fn yealink_book(
    auth: PhonesAuth,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    book(Vendor::Yealink, &auth, &state).await
}

pub async fn grandstream_book(
    auth: PhonesAuth,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    book(Vendor::Grandstream, &auth, &state).await
}

/// The first `phonebook_max` contacts by name (`tenant set --phonebook-max`).
async fn book(
    vendor: Vendor,
    auth: &PhonesAuth,
    state: &AppState,
) -> Result<HttpResponse, ApiError> {
    let tenant = &auth.tenant.tenant;
    let max = phones::phonebook_max(&tenant.settings);
    let pool = state.read_pool.as_ref().unwrap_or(&state.pool);
    let contacts = store::with_client(pool, state.write_timeout, async |client| {
        store::phones::book(&*client, tenant.id, max).await
    })
    .await?;
    let answer = phones::book(vendor, &contacts).expect("yealink and grandstream have books");
    state.metrics.phones.answered(vendor.as_str(), "phonebook");
    Ok(respond(answer))
}

/// Gigaset's reverse search: the caller's name for `hm`, from the cache, the number
/// index and the database within the lookup deadline, as a PBX lookup.
pub async fn gigaset_lookup(
    req: HttpRequest,
    auth: PhonesAuth,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let started = request_start(&req);
    let hm = form_urlencoded::parse(req.query_string().as_bytes())
        .find(|(name, _)| name == "hm")
        .map(|(_, value)| value.trim().to_owned())
        .filter(|value| !value.is_empty())
        .ok_or_else(|| ApiError::BadRequest("hm (the caller's number) is required".into()))?;
    let tenant = &auth.tenant.tenant;
    let caller = Caller::from_param(Some(&hm), tenant.region)
        .map_err(|e| ApiError::BadRequest(format!("hm {e}")))?;
    state.metrics.phones.answered(Vendor::GIGASET, "lookup");
    let Caller::Number(number) = &caller else {
        return Ok(gigaset_answer(gigaset::not_found()));
    };
    let outcome = state.lookup.lookup(tenant.id, &caller, started).await;
    let hit = outcome.hit.as_ref();
    if tenant.lookup_log.enabled {
        let entry = outcome.log_entry(tenant.id, Some(number.as_str()), None, started);
        state.lookup_log.record(entry);
    }
    let body = match (hit, outcome.degraded) {
        (Some(hit), _) => gigaset::found(hit.name(), &hm),
        (None, Some(_)) => gigaset::unavailable(),
        (None, None) => gigaset::not_found(),
    };
    Ok(gigaset_answer(body))
}

fn gigaset_answer(body: String) -> HttpResponse {
    respond(Answer {
        content_type: "text/xml; charset=utf-8",
        body,
    })
}
