//! One error type for the whole shop, rendered as JSON for the API and as a page for browsers.
//!
//! Every variant knows its status code. `Unexpected` carries the cause chain for the log (logged
//! once, here) and shows the user a generic message; backend outages become 503, never 500, so a
//! client or nginx knows to retry elsewhere.

use actix_web::{http::StatusCode, HttpResponse, ResponseError};
use serde::Serialize;
use utoipa::ToSchema;

/// Field-level validation errors: field name → message.
pub type FieldErrors = std::collections::BTreeMap<String, String>;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{0}")]
    BadRequest(String),
    #[error("some fields are invalid")]
    Validation(FieldErrors),
    #[error("{0}")]
    Unauthorized(String),
    /// Not logged in, on a page that wants an account: the API answers 401, a page redirects to
    /// the login page, which comes back to this path afterwards.
    #[error("please log in first")]
    LoginRequired { back: String },
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    #[error("{message}")]
    Unprocessable { code: &'static str, message: String },
    #[error("the request body is larger than 64 KiB")]
    PayloadTooLarge,
    #[error("state-changing API requests must have Content-Type: application/json")]
    UnsupportedMediaType,
    #[error("{0}")]
    MethodNotAllowed(String),
    #[error("the request body did not arrive in time")]
    RequestTimeout,
    /// Throttled: the message and how many seconds until a retry can succeed (`Retry-After`).
    #[error("{0}")]
    TooManyRequests(String, u64),
    #[error("{0}")]
    Unavailable(String),
    #[error("internal error")]
    Unexpected(#[from] anyhow::Error),
}

impl AppError {
    pub fn code(&self) -> &'static str {
        match self {
            AppError::BadRequest(_) => "bad_request",
            AppError::Validation(_) => "validation_failed",
            AppError::Unauthorized(_) | AppError::LoginRequired { .. } => "unauthorized",
            AppError::Forbidden(_) => "forbidden",
            AppError::NotFound(_) => "not_found",
            AppError::Conflict { code, .. } | AppError::Unprocessable { code, .. } => code,
            AppError::PayloadTooLarge => "payload_too_large",
            AppError::UnsupportedMediaType => "unsupported_media_type",
            AppError::MethodNotAllowed(_) => "method_not_allowed",
            AppError::RequestTimeout => "request_timeout",
            AppError::TooManyRequests(..) => "too_many_requests",
            AppError::Unavailable(_) => "service_unavailable",
            AppError::Unexpected(_) => "internal",
        }
    }

    /// Field errors, if this is a validation failure.
    pub fn fields(&self) -> Option<&FieldErrors> {
        match self {
            AppError::Validation(f) => Some(f),
            _ => None,
        }
    }

    /// One field's error, e.g. `AppError::field("quantity", "must be between 1 and 99")`.
    pub fn field(name: &str, message: impl Into<String>) -> Self {
        AppError::Validation(FieldErrors::from([(name.to_string(), message.into())]))
    }

    /// Seconds a client should wait before trying again, for the `Retry-After` header.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            AppError::Unavailable(_) => Some(1),
            AppError::TooManyRequests(_, secs) => Some((*secs).max(1)),
            _ => None,
        }
    }

    pub fn log(&self) {
        match self {
            AppError::Unexpected(e) => tracing::error!(error.cause_chain = ?e, "unexpected error"),
            AppError::Unavailable(m) => tracing::warn!(error.message = %m, "backend unavailable"),
            _ => {}
        }
    }

    /// The message shown to users: specific for their mistakes, generic for ours.
    pub fn public_message(&self) -> String {
        match self {
            AppError::Validation(f) => {
                let parts: Vec<String> = f.iter().map(|(k, v)| format!("{k} {v}")).collect();
                format!("Please correct: {}", parts.join("; "))
            }
            AppError::Unexpected(_) => "Something went wrong on our side. Please try again.".into(),
            other => other.to_string(),
        }
    }
}

impl ResponseError for AppError {
    fn status_code(&self) -> StatusCode {
        match self {
            AppError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AppError::Validation(_) | AppError::Unprocessable { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            AppError::Unauthorized(_) | AppError::LoginRequired { .. } => StatusCode::UNAUTHORIZED,
            AppError::Forbidden(_) => StatusCode::FORBIDDEN,
            AppError::NotFound(_) => StatusCode::NOT_FOUND,
            AppError::Conflict { .. } => StatusCode::CONFLICT,
            AppError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            AppError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            AppError::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            AppError::TooManyRequests(..) => StatusCode::TOO_MANY_REQUESTS,
            AppError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            AppError::Unexpected(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        self.log();
        let body = ApiError {
            error: ErrorDetail { code: self.code(), message: self.public_message(), fields: self.fields() },
        };
        let mut resp = HttpResponse::build(self.status_code());
        if let Some(secs) = self.retry_after() {
            resp.insert_header(("Retry-After", secs.to_string()));
        }
        if matches!(self, AppError::RequestTimeout) {
            // the rest of the body may still be on its way: this connection is done
            resp.force_close();
        }
        resp.json(body)
    }
}

/// The body of every JSON API error (4xx and 5xx): what a client can rely on.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"error": {"code": "validation_failed", "message": "Please correct: quantity must be between 1 and 99", "fields": {"quantity": "must be between 1 and 99"}}}))]
pub struct ApiError<'a> {
    #[schema(inline)]
    pub error: ErrorDetail<'a>,
}

#[derive(Serialize, ToSchema)]
pub struct ErrorDetail<'a> {
    /// Stable, machine-readable: `bad_request`, `validation_failed`, `unauthorized`,
    /// `forbidden`, `not_found`, `email_taken`, `out_of_stock`, `product_unavailable`,
    /// `invalid_transition`, `empty_cart`, `payload_too_large`, `unsupported_media_type`,
    /// `too_many_requests`, `service_unavailable`, `internal`.
    #[schema(value_type = String, example = "validation_failed")]
    pub code: &'a str,
    /// For people: what went wrong and what to do.
    pub message: String,
    /// Only on `validation_failed` (422): field (or header) name → what is expected.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<std::collections::BTreeMap<String, String>>, nullable = false)]
    pub fields: Option<&'a FieldErrors>,
}

/// The same error, rendered as an HTML page for browser routes.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct HtmlError(#[from] pub AppError);

impl ResponseError for HtmlError {
    fn status_code(&self) -> StatusCode {
        match self.0 {
            AppError::LoginRequired { .. } => StatusCode::SEE_OTHER,
            _ => self.0.status_code(),
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let AppError::LoginRequired { back } = &self.0 {
            let next = serde_urlencoded::to_string([("next", back)]).unwrap_or_default();
            return HttpResponse::SeeOther()
                .insert_header((actix_web::http::header::LOCATION, format!("/login?{next}")))
                .finish();
        }
        self.0.log();
        let status = self.status_code();
        let title = status.canonical_reason().unwrap_or("Error");
        let body = crate::templates::error_page(status.as_u16(), title, &self.0.public_message());
        let mut resp = HttpResponse::build(status);
        if let Some(secs) = self.0.retry_after() {
            resp.insert_header(("Retry-After", secs.to_string()));
        }
        if matches!(self.0, AppError::RequestTimeout) {
            resp.force_close();
        }
        resp.content_type("text/html; charset=utf-8").body(body)
    }
}

pub type ApiResult<T> = Result<T, AppError>;
pub type HtmlResult<T> = Result<T, HtmlError>;
