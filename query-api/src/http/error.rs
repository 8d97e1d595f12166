//! [`QueryError`]: every way a read can fail, each mapped to a problem+json answer.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use events::service::Problem;

use crate::consistency::WaitError;
use events::auth::AuthError;

#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0} is not a valid id")]
    BadId(String),
    #[error("the query string is not valid")]
    InvalidQuery,
    #[error("invalid cursor")]
    InvalidCursor,
    #[error("invalid limit {0:?}: expected an integer from 1 to {max}", max = crate::http::history::MAX_LIMIT)]
    InvalidLimit(String),
    #[error("invalid consistency token")]
    InvalidConsistencyToken,
    #[error("invalid time range: {0}")]
    InvalidRange(String),
    #[error("invalid bucket {0:?}: expected minute, hour or day")]
    InvalidBucket(String),
    #[error("invalid currency {0:?}: expected an ISO 4217 code")]
    InvalidCurrency(String),
    #[error(
        "invalid saga status {0:?}: expected running, compensating, completed, compensated, needs_attention or resolved_by_operator"
    )]
    InvalidStatus(String),
    #[error("{0}")]
    Unauthorized(AuthError),
    #[error("this role may not read {0}")]
    Forbidden(&'static str),
    #[error("the views have not caught up with the consistency token yet")]
    StaleRead,
    #[error("the views database is unavailable")]
    Database(#[from] sqlx::Error),
    #[error("too many reads in flight; try again shortly")]
    Busy,
    #[error("the {0} does not answer; try again shortly")]
    UpstreamUnavailable(&'static str),
}

impl From<WaitError> for QueryError {
    fn from(e: WaitError) -> Self {
        match e {
            WaitError::Stale => QueryError::StaleRead,
            WaitError::Database(e) => QueryError::Database(e),
        }
    }
}

impl QueryError {
    fn status_and_kind(&self) -> (StatusCode, &'static str) {
        match self {
            QueryError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            QueryError::BadId(_) => (StatusCode::BAD_REQUEST, "invalid_id"),
            QueryError::InvalidQuery => (StatusCode::BAD_REQUEST, "invalid_query"),
            QueryError::InvalidCursor => (StatusCode::BAD_REQUEST, "invalid_cursor"),
            QueryError::InvalidLimit(_) => (StatusCode::BAD_REQUEST, "invalid_limit"),
            QueryError::InvalidConsistencyToken => {
                (StatusCode::BAD_REQUEST, "invalid_consistency_token")
            }
            QueryError::InvalidRange(_) => (StatusCode::BAD_REQUEST, "invalid_range"),
            QueryError::InvalidBucket(_) => (StatusCode::BAD_REQUEST, "invalid_bucket"),
            QueryError::InvalidCurrency(_) => (StatusCode::BAD_REQUEST, "invalid_currency"),
            QueryError::InvalidStatus(_) => (StatusCode::BAD_REQUEST, "invalid_status"),
            QueryError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
            QueryError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            QueryError::StaleRead => (StatusCode::SERVICE_UNAVAILABLE, "stale_read"),
            QueryError::Database(_) => (StatusCode::SERVICE_UNAVAILABLE, "views_unavailable"),
            QueryError::Busy => (StatusCode::SERVICE_UNAVAILABLE, "overloaded"),
            QueryError::UpstreamUnavailable(_) => {
                (StatusCode::SERVICE_UNAVAILABLE, "upstream_unavailable")
            }
        }
    }
}

impl IntoResponse for QueryError {
    fn into_response(self) -> Response {
        if let QueryError::Database(e) = &self {
            tracing::warn!(error = %e, "views database query failed");
        }
        let (status, kind) = self.status_and_kind();
        let mut problem = Problem::new(status, kind, self.to_string());
        if status == StatusCode::SERVICE_UNAVAILABLE {
            problem = problem.retry_after(1);
        }
        let mut response = problem.into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        response
    }
}
