//! [`ApiError`]: every way a command request can fail, each mapped to one
//! status and one stable problem `type` suffix (RFC 9457, problem+json).

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use events::command::{RejectionKind, Role};
use events::service::Problem;
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::AuthError;
use crate::bus::BusError;

/// One field of the request that failed validation (RFC 9457's
/// `invalid_params` extension member).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct InvalidParam {
    /// Where the value is, e.g. `lines[1].quantity` or `shipping_address.country`.
    pub name: String,
    pub reason: String,
}

/// The HTTP boundary's one error type.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    Unauthenticated(AuthError),
    #[error("role {0:?} may not do this")]
    Forbidden(Role),
    #[error("the body is not valid json: {0}")]
    MalformedJson(String),
    #[error("expected content type application/json")]
    UnsupportedMediaType,
    #[error("the body is larger than {} bytes", super::MAX_BODY_BYTES)]
    BodyTooLarge,
    #[error("{0}")]
    InvalidBody(String),
    #[error("invalid fields: {}", describe(.0))]
    Validation(Vec<InvalidParam>),
    #[error("invalid path parameter {name}: {reason}")]
    InvalidPath { name: &'static str, reason: String },
    #[error("the Idempotency-Key header is required")]
    MissingIdempotencyKey,
    #[error("invalid Idempotency-Key: expected 1 to 255 visible ascii characters")]
    InvalidIdempotencyKey,
    #[error("invalid If-Match: expected one version such as 3 or \"3\"")]
    InvalidIfMatch,
    /// The processor (or this API, for a reused Idempotency-Key) refused the command.
    #[error("{message}")]
    Rejected {
        kind: RejectionKind,
        code: String,
        message: String,
    },
    #[error("no command with this id is known")]
    CommandNotFound,
    #[error("the command log is unavailable: {0}")]
    Unavailable(String),
    /// A bug: something that cannot fail did.
    #[error("internal error: {0}")]
    Internal(String),
}

fn describe(params: &[InvalidParam]) -> String {
    let parts: Vec<String> = params
        .iter()
        .map(|p| format!("{}: {}", p.name, p.reason))
        .collect();
    parts.join("; ")
}

impl From<BusError> for ApiError {
    fn from(error: BusError) -> Self {
        match error {
            BusError::Unavailable(reason) => ApiError::Unavailable(reason),
        }
    }
}

impl ApiError {
    fn status(&self) -> StatusCode {
        use StatusCode as S;
        match self {
            Self::Unauthenticated(_) => S::UNAUTHORIZED,
            Self::Forbidden(_) => S::FORBIDDEN,
            Self::MalformedJson(_)
            | Self::InvalidPath { .. }
            | Self::MissingIdempotencyKey
            | Self::InvalidIdempotencyKey
            | Self::InvalidIfMatch => S::BAD_REQUEST,
            Self::UnsupportedMediaType => S::UNSUPPORTED_MEDIA_TYPE,
            Self::BodyTooLarge => S::PAYLOAD_TOO_LARGE,
            Self::InvalidBody(_) | Self::Validation(_) => S::UNPROCESSABLE_ENTITY,
            Self::Rejected { kind, .. } => match kind {
                RejectionKind::Invalid => S::UNPROCESSABLE_ENTITY,
                RejectionKind::Conflict => S::CONFLICT,
                RejectionKind::NotFound => S::NOT_FOUND,
            },
            Self::CommandNotFound => S::NOT_FOUND,
            Self::Unavailable(_) => S::SERVICE_UNAVAILABLE,
            Self::Internal(_) => S::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable `type` suffix, and a title that does not vary with the details.
    fn kind_and_title(&self) -> (&str, &'static str) {
        match self {
            Self::Unauthenticated(_) => ("unauthorized", "authentication required"),
            Self::Forbidden(_) => ("forbidden", "not allowed for this role"),
            Self::MalformedJson(_) => ("malformed_json", "the body is not valid json"),
            Self::UnsupportedMediaType => ("unsupported_media_type", "expected application/json"),
            Self::BodyTooLarge => ("payload_too_large", "the body is too large"),
            Self::InvalidBody(_) => ("invalid_body", "the body has the wrong shape"),
            Self::Validation(_) => ("validation_failed", "the request is invalid"),
            Self::InvalidPath { .. } => ("invalid_path_parameter", "invalid path parameter"),
            Self::MissingIdempotencyKey => ("idempotency_key_required", "Idempotency-Key required"),
            Self::InvalidIdempotencyKey => ("invalid_idempotency_key", "invalid Idempotency-Key"),
            Self::InvalidIfMatch => ("invalid_if_match", "invalid If-Match"),
            // The processor's code is the stable part; its message goes in `detail`.
            Self::Rejected { code, .. } => (code, "the command was rejected"),
            Self::CommandNotFound => ("command_not_found", "no such command"),
            Self::Unavailable(_) => ("command_log_unavailable", "the command log is unavailable"),
            Self::Internal(_) => ("internal_error", "internal error"),
        }
    }
}

/// A problem body with the `invalid_params` extension member.
#[derive(Serialize)]
struct ProblemWithParams<'a> {
    #[serde(flatten)]
    problem: Problem,
    invalid_params: &'a [InvalidParam],
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let (kind, title) = self.kind_and_title();
        let mut problem = Problem::new(status, kind, title);
        match &self {
            Self::Unavailable(reason) => {
                tracing::warn!(%reason, "command log unavailable");
                problem = problem.retry_after(1);
            }
            Self::Internal(reason) => tracing::error!(%reason, "bug in the command api"),
            // Rejections, auth failures and validation are the caller's business;
            // their detail is safe to show.
            _ => problem = problem.detail(self.to_string()),
        }
        let mut response = match &self {
            Self::Validation(params) => {
                let body = ProblemWithParams {
                    problem,
                    invalid_params: params,
                };
                let content_type = [(header::CONTENT_TYPE, "application/problem+json")];
                (status, content_type, Json(body)).into_response()
            }
            _ => problem.into_response(),
        };
        if let Self::Unauthenticated(error) = &self {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, www_authenticate(error));
        }
        response
    }
}

/// RFC 6750: a request without credentials gets a bare challenge; a bad token
/// gets `error="invalid_token"`.
fn www_authenticate(error: &AuthError) -> HeaderValue {
    match error {
        AuthError::Missing => HeaderValue::from_static("Bearer"),
        _ => HeaderValue::from_static("Bearer error=\"invalid_token\""),
    }
}
