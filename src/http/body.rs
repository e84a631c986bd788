//! Reading JSON request bodies with a size limit and errors that say what was wrong.

use actix_web::HttpRequest;
use actix_web::http::header;
use actix_web::web;
use futures_util::StreamExt;
use serde_json::Value;

use crate::error::ApiError;

/// Larger bodies are parsed on the blocking pool: a full batch takes the parser tens of
/// milliseconds, and the worker would answer no lookups meanwhile.
const PARSE_ON_WORKER_MAX: usize = 64 * 1024;

/// Reads at most `limit` bytes and parses them as JSON: 413 when larger (refused from
/// `Content-Length` before reading when possible), 400 when not JSON.
pub async fn read_json(
    req: &HttpRequest,
    mut payload: web::Payload,
    limit: usize,
) -> Result<Value, ApiError> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|len| len > limit) {
        return Err(ApiError::PayloadTooLarge(limit));
    }
    let mut body = Vec::with_capacity(declared.unwrap_or(0));
    while let Some(chunk) = payload.next().await {
        let chunk =
            chunk.map_err(|e| ApiError::BadRequest(format!("the body could not be read: {e}")))?;
        if body.len() + chunk.len() > limit {
            return Err(ApiError::PayloadTooLarge(limit));
        }
        body.extend_from_slice(&chunk);
    }
    if body.is_empty() {
        return Err(ApiError::BadRequest(
            "the body is empty; JSON expected".into(),
        ));
    }
    let on_worker = body.len() <= PARSE_ON_WORKER_MAX;
    let parse = move || serde_json::from_slice::<Value>(&body);
    let parsed = if on_worker {
        parse()
    } else {
        web::block(parse)
            .await
            .map_err(|e| ApiError::Unexpected(anyhow::anyhow!("parsing a body: {e}")))?
    };
    parsed.map_err(|e| ApiError::BadRequest(format!("the body is not valid JSON: {e}")))
}
