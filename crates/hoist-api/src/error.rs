//! The one error type handlers return, and its mapping to the JSON envelope.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use hoist_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    /// A build image from a repository the reporting repository does not allow.
    #[error("{0}")]
    SourceNotAllowed(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("the request body is larger than 25 MiB")]
    PayloadTooLarge,
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{0}")]
    Unprocessable(String),
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("{0}")]
    NotReady(&'static str),
    /// Too many unauthenticated bodies are being read; try again after `Retry-After`.
    #[error("too many webhook deliveries at once")]
    Busy,
    /// A webhook body that did not arrive within `[server] webhook_body_timeout`.
    #[error("the request body did not arrive in time")]
    SlowBody,
    /// The OIDC issuer's keys could not be read; the detail is for the log.
    #[error("OIDC keys unavailable: {0}")]
    IssuerUnavailable(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ApiError {
    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            ApiError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::SourceNotAllowed(_) => (StatusCode::FORBIDDEN, "source_not_allowed"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            ApiError::PayloadTooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "body_too_large"),
            ApiError::UnsupportedMediaType(_) => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
            }
            ApiError::Unprocessable(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_field"),
            ApiError::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            ApiError::NotReady(_) => (StatusCode::SERVICE_UNAVAILABLE, "not_ready"),
            ApiError::Busy => (StatusCode::SERVICE_UNAVAILABLE, "busy"),
            ApiError::SlowBody => (StatusCode::REQUEST_TIMEOUT, "body_timeout"),
            ApiError::IssuerUnavailable(_) => {
                (StatusCode::SERVICE_UNAVAILABLE, "issuer_unavailable")
            }
            ApiError::Store(e) if e.is_retryable() => {
                (StatusCode::SERVICE_UNAVAILABLE, "unavailable")
            }
            ApiError::Store(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

/// The envelope every error response carries.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
#[schema(as = Error)]
pub(crate) struct ErrorBody<'a> {
    error: ErrorDetail<'a>,
}

#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub(crate) struct ErrorDetail<'a> {
    /// Stable, for programs: `bad_request`, `unauthorized`, `not_found`, `busy`, ...
    code: &'a str,
    /// For people; a 5xx never carries internals.
    message: &'a str,
}

/// What an operator's read may answer besides success, for the OpenAPI document.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code, reason = "describes responses; ApiError builds them")]
pub(crate) enum ReadErrors {
    #[response(status = 400, description = "A parameter is malformed")]
    BadRequest(ErrorBody<'static>),
    #[response(status = 401, description = "No valid API token")]
    Unauthorized(ErrorBody<'static>),
    #[response(status = 404, description = "Not configured, or no such item")]
    NotFound(ErrorBody<'static>),
    #[response(status = 408, description = "The request took too long")]
    Timeout(ErrorBody<'static>),
    #[response(status = 503, description = "Database busy")]
    Unavailable(ErrorBody<'static>),
}

pub(crate) fn envelope(status: StatusCode, code: &str, message: &str) -> Response {
    let body = ErrorBody {
        error: ErrorDetail { code, message },
    };
    (status, Json(body)).into_response()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        if status.is_server_error() {
            // The chain is for the log only; the caller gets a generic message.
            tracing::error!(error = %ErrorChain(&self), "request failed");
            let message = match status {
                StatusCode::SERVICE_UNAVAILABLE => match &self {
                    ApiError::NotReady(why) => why,
                    ApiError::Busy => {
                        "too many webhook deliveries are being read at once; try again"
                    }
                    ApiError::IssuerUnavailable(_) => {
                        "the OIDC issuer's signing keys could not be fetched; try again"
                    }
                    _ => "temporarily unavailable, try again",
                },
                _ => "internal error",
            };
            let mut response = envelope(status, code, message);
            if matches!(self, ApiError::Busy) {
                response.headers_mut().insert(
                    axum::http::header::RETRY_AFTER,
                    axum::http::HeaderValue::from_static("1"),
                );
            }
            return response;
        }
        let mut response = envelope(status, code, &self.to_string());
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        response
    }
}

/// Displays an error with all its sources, `a: b: c`.
pub(crate) struct ErrorChain<'a>(pub &'a (dyn std::error::Error + 'static));

impl std::fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(e) = source {
            write!(f, ": {e}")?;
            source = e.source();
        }
        Ok(())
    }
}

pub(crate) async fn not_found() -> ApiError {
    ApiError::NotFound("no such endpoint".to_owned())
}

pub(crate) async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}
