//! One error type for the HTTP API: client mistakes are variants with a message that
//! says what was wrong; everything else is `Unexpected`, logged in full and answered
//! with a generic body so no database text reaches a client.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

use crate::admin;
use crate::admin::profiles::ProfileError;
use crate::contacts::WriteError;
use crate::dial::click2call::ClickError;
use crate::domain::FieldError;
use crate::domain::OverNumberCap;

/// Seconds a client should wait before retrying while the database is unreachable.
const RETRY_AFTER_SECS: &str = "5";
/// Seconds a client should wait while the gateway parses as many batches as it may.
const BUSY_RETRY_AFTER_SECS: &str = "1";

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(&'static str),
    #[error("{0}")]
    Forbidden(String),
    /// An agent's session that is unknown or expired: the reference's `"login":false`,
    /// which tells the CRM to sign the agent in again and repeat the request.
    #[error("the session is unknown or has expired; sign the agent in again")]
    SessionExpired,
    /// The dial policy refuses the number; `rule` names the setting that does.
    #[error("{message}")]
    DialRefused { rule: &'static str, message: String },
    /// Click-to-call for a tenant whose operator has set no dialer.
    #[error("this tenant has no dialer: the operator sets one with `cidgate dialer set`")]
    NoDialer,
    /// The PBX did not take a click-to-call request (RequestID `request_id`).
    #[error("{message}")]
    DialFailed { request_id: i64, message: String },
    #[error("{0}")]
    NotFound(String),
    /// The methods the path does serve (for the `Allow` header).
    #[error("method not allowed on this path; allowed: {0}")]
    MethodNotAllowed(&'static str),
    #[error("the request URL is longer than {0} bytes")]
    UriTooLong(usize),
    #[error("the request headers are larger than {0} bytes")]
    HeadersTooLarge(usize),
    #[error("request body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    /// The body's values would take more than this many bytes once parsed.
    #[error(
        "the body holds too many small values: parsed they would take more than {} MiB; send fewer items at once",
        .0 / (1024 * 1024)
    )]
    TooManyValues(usize),
    /// The body did not arrive in time (a client trickling it holds a connection).
    #[error("the request body did not arrive within {} ms", .0.as_millis())]
    BodyTimeout(std::time::Duration),
    /// A body not labelled as the type the endpoint reads (the message names it).
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// A query string the endpoint cannot read (each parameter named): `400`.
    #[error("{message}")]
    BadQuery {
        message: String,
        fields: Vec<FieldError>,
    },
    #[error("{message}")]
    Unprocessable {
        message: String,
        fields: Vec<FieldError>,
    },
    #[error("{message}")]
    TooManyRequests {
        message: &'static str,
        retry_after: std::time::Duration,
    },
    /// Too many large bodies are being parsed at once (the message says which kind).
    #[error("{0}")]
    Busy(&'static str),
    #[error("the database is unavailable; retry later")]
    Unavailable(#[source] anyhow::Error),
    /// A write kept losing races with concurrent writes to the same contacts.
    #[error("concurrent writes to the same contacts got in the way; retry later")]
    Contended(#[source] anyhow::Error),
    #[error("internal error")]
    Unexpected(#[source] anyhow::Error),
}

impl From<super::rate_limit::Limited> for ApiError {
    fn from(over: super::rate_limit::Limited) -> Self {
        use super::rate_limit::Limit;
        let message = match over.limit {
            Limit::Lookups => {
                "too many lookups for this tenant; retry after the Retry-After seconds"
            }
            Limit::Sync => "too many requests with this token; retry after the Retry-After seconds",
            Limit::AuthFailures => "too many failed authentications from this address; retry later",
            Limit::Pops => "too many screen pops from this address; retry later",
            Limit::Events => {
                "too many call events for this tenant (its event rate); retry after the Retry-After seconds"
            }
        };
        Self::TooManyRequests {
            message,
            retry_after: over.retry_after,
        }
    }
}

/// The one mapping of services' refusals to HTTP.
impl From<admin::Error> for ApiError {
    fn from(error: admin::Error) -> Self {
        let fields = error.fields();
        match error {
            admin::Error::Invalid { .. } | admin::Error::AgentCap { .. } => {
                Self::invalid_fields(fields)
            }
            admin::Error::Message(message) | admin::Error::Taken(message) => Self::Unprocessable {
                message,
                fields: Vec::new(),
            },
            admin::Error::NotFound(message) => Self::NotFound(message),
            admin::Error::Failed(e) => Self::from_store(e),
        }
    }
}

impl From<ClickError> for ApiError {
    fn from(error: ClickError) -> Self {
        match error {
            ClickError::Invalid { field, message } => {
                Self::invalid_fields(vec![FieldError::new(field, message)])
            }
            ClickError::Refused { rule, message } => Self::DialRefused { rule, message },
            ClickError::NoDialer => Self::NoDialer,
            ClickError::Throttled {
                message,
                retry_after,
            } => Self::TooManyRequests {
                message,
                retry_after,
            },
            ClickError::SessionExpired => Self::SessionExpired,
            ClickError::DialFailed {
                request_id,
                message,
            } => Self::DialFailed {
                request_id,
                message,
            },
            ClickError::Failed(e) => Self::from_store(e),
        }
    }
}

impl From<ProfileError> for ApiError {
    fn from(e: ProfileError) -> Self {
        match e {
            ProfileError::Invalid(fields) => Self::invalid_fields(fields),
            ProfileError::Duplicate(_) => Self::Unprocessable {
                message: e.to_string(),
                fields: vec![FieldError::new("name", "is taken")],
            },
            ProfileError::NotFound(_) | ProfileError::NoCall(_) => Self::NotFound(e.to_string()),
            ProfileError::Refused { field, refused } => {
                Self::invalid_fields(vec![FieldError::new(field, refused.to_string())])
            }
            ProfileError::Failed(e) => Self::from_store(e),
        }
    }
}

impl From<anyhow::Error> for ApiError {
    fn from(error: anyhow::Error) -> Self {
        Self::from_store(error)
    }
}

/// A write that lost every race is `Contended`; any other failure is sorted like every
/// database error.
impl From<WriteError> for ApiError {
    fn from(error: WriteError) -> Self {
        if let WriteError::Failed(cause) = &error
            && let Some(over) = cause.downcast_ref::<OverNumberCap>()
        {
            return Self::Unprocessable {
                message: over.to_string(),
                fields: vec![FieldError::new("phones", over.to_string())],
            };
        }
        match error {
            WriteError::Contended(cause) => Self::Contended(cause),
            WriteError::Failed(cause) => Self::from_store(cause),
        }
    }
}

impl From<deadpool_postgres::PoolError> for ApiError {
    fn from(error: deadpool_postgres::PoolError) -> Self {
        Self::from_store(error.into())
    }
}

impl From<tokio_postgres::Error> for ApiError {
    fn from(error: tokio_postgres::Error) -> Self {
        Self::from_store(error.into())
    }
}

impl ApiError {
    pub fn invalid_fields(fields: Vec<FieldError>) -> Self {
        let message = match fields.len() {
            1 if fields[0].field.is_empty() => fields[0].message.clone(),
            1 => format!("{} {}", fields[0].field, fields[0].message),
            n => format!("{n} fields are invalid"),
        };
        Self::Unprocessable { message, fields }
    }

    /// The same naming as `invalid_fields`, answered `400`: parameters of a query.
    pub fn invalid_query(fields: Vec<FieldError>) -> Self {
        match Self::invalid_fields(fields) {
            Self::Unprocessable { message, fields } => Self::BadQuery { message, fields },
            other => other,
        }
    }

    /// Sorts an unexpected error: a database that cannot be reached is a 503 the client
    /// can retry; anything else stays a 500.
    pub fn from_store(error: anyhow::Error) -> Self {
        if crate::store::is_data_error(&error) {
            // Validation should have caught it; the database's text stays in the log.
            tracing::warn!(error = format!("{error:#}"), "the database refused a value");
            Self::Unprocessable {
                message: "the request holds a value the database cannot store".into(),
                fields: Vec::new(),
            }
        } else if crate::store::is_unreachable(&error) {
            Self::Unavailable(error)
        } else {
            Self::Unexpected(error)
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Self::BadRequest(_) | Self::BadQuery { .. } => "bad_request",
            Self::Unauthorized(_) => "unauthorized",
            Self::Forbidden(_) => "forbidden",
            Self::SessionExpired => "session_expired",
            Self::DialRefused { .. } => "destination_refused",
            Self::DialFailed { .. } => "dial_failed",
            Self::NoDialer => "no_dialer",
            Self::NotFound(_) => "not_found",
            Self::MethodNotAllowed(_) => "method_not_allowed",
            Self::PayloadTooLarge(_) | Self::TooManyValues(_) => "payload_too_large",
            Self::BodyTimeout(_) => "request_timeout",
            Self::UnsupportedMediaType(_) => "unsupported_media_type",
            Self::UriTooLong(_) => "uri_too_long",
            Self::HeadersTooLarge(_) => "headers_too_large",
            Self::Unprocessable { .. } => "invalid_fields",
            Self::TooManyRequests { .. } => "rate_limited",
            Self::Unavailable(_) => "unavailable",
            Self::Busy(_) => "busy",
            Self::Contended(_) => "contended",
            Self::Unexpected(_) => "internal",
        }
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'static str,
    message: String,
    #[serde(skip_serializing_if = "<[FieldError]>::is_empty")]
    fields: &'a [FieldError],
    /// `false` for a session that must be renewed (the reference's Login answer).
    #[serde(skip_serializing_if = "Option::is_none")]
    login: Option<bool>,
    /// The dial-policy rule that refused a number.
    #[serde(skip_serializing_if = "Option::is_none")]
    rule: Option<&'static str>,
    #[serde(rename = "RequestID", skip_serializing_if = "Option::is_none")]
    request_id: Option<i64>,
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) | Self::BadQuery { .. } => StatusCode::BAD_REQUEST,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) | Self::DialRefused { .. } => StatusCode::FORBIDDEN,
            Self::SessionExpired => StatusCode::UNAUTHORIZED,
            Self::DialFailed { .. } => StatusCode::BAD_GATEWAY,
            Self::NoDialer => StatusCode::CONFLICT,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Self::PayloadTooLarge(_) | Self::TooManyValues(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::BodyTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::UriTooLong(_) => StatusCode::URI_TOO_LONG,
            Self::HeadersTooLarge(_) => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            Self::Unprocessable { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Self::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable(_) | Self::Contended(_) | Self::Busy(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Self::Unexpected(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            Self::Unexpected(e) | Self::Unavailable(e) => {
                tracing::error!(error = format!("{e:#}"), "request failed");
            }
            Self::Contended(e) => tracing::warn!(error = format!("{e:#}"), "write contended"),
            _ => {}
        }
        let fields = match self {
            Self::Unprocessable { fields, .. } | Self::BadQuery { fields, .. } => fields.as_slice(),
            _ => &[],
        };
        let mut response = HttpResponse::build(self.status_code());
        match self {
            Self::Unavailable(_) | Self::Contended(_) => {
                response.insert_header((header::RETRY_AFTER, RETRY_AFTER_SECS));
            }
            Self::Busy(_) => {
                response.insert_header((header::RETRY_AFTER, BUSY_RETRY_AFTER_SECS));
            }
            Self::MethodNotAllowed(allow) => {
                response.insert_header((header::ALLOW, *allow));
            }
            // The rest of the body may still come: the connection cannot be reused.
            Self::BodyTimeout(_) => {
                response.force_close();
            }
            Self::TooManyRequests { retry_after, .. } => {
                // Whole seconds, rounded up: never tell a client to retry too early.
                let secs = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
                response.insert_header((header::RETRY_AFTER, secs.max(1).to_string()));
            }
            _ => {}
        }
        if let Self::Unauthorized(_) | Self::SessionExpired = self {
            response.insert_header((
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"cidgate\""),
            ));
        }
        response.json(ErrorBody {
            error: self.code(),
            message: self.to_string(),
            fields,
            login: matches!(self, Self::SessionExpired).then_some(false),
            rule: match self {
                Self::DialRefused { rule, .. } => Some(*rule),
                _ => None,
            },
            request_id: match self {
                Self::DialFailed { request_id, .. } => Some(*request_id),
                _ => None,
            },
        })
    }
}

impl From<crate::sources::admin::SourceError> for ApiError {
    fn from(e: crate::sources::admin::SourceError) -> Self {
        match e {
            crate::sources::admin::SourceError::Invalid(fields) => ApiError::invalid_fields(fields),
            crate::sources::admin::SourceError::Duplicate(_) => ApiError::Unprocessable {
                message: e.to_string(),
                fields: vec![FieldError::new("name", "is taken")],
            },
            crate::sources::admin::SourceError::NotFound(_) => ApiError::NotFound(e.to_string()),
            crate::sources::admin::SourceError::Refused { field, refused } => {
                ApiError::invalid_fields(vec![FieldError::new(field, refused.detail())])
            }
            crate::sources::admin::SourceError::Failed(e) => ApiError::from_store(e),
        }
    }
}
