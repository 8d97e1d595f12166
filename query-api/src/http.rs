//! The query HTTP API.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use events::service::Problem;
use sqlx::PgPool;
use uuid::Uuid;

#[derive(Clone)]
pub struct AppState {
    pub pool: PgPool,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/probes/{probe_id}", get(probe))
        .with_state(state)
}

/// The errors of the query API, each mapped to a problem+json answer.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0} is not a valid id")]
    BadId(String),
    #[error("the views database is unavailable")]
    Database(#[from] sqlx::Error),
}

impl IntoResponse for QueryError {
    fn into_response(self) -> Response {
        let problem = match &self {
            QueryError::NotFound(_) => {
                Problem::new(StatusCode::NOT_FOUND, "not_found", self.to_string())
            }
            QueryError::BadId(_) => {
                Problem::new(StatusCode::BAD_REQUEST, "invalid_id", self.to_string())
            }
            QueryError::Database(e) => {
                tracing::warn!(error = %e, "views database query failed");
                Problem::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "views_unavailable",
                    self.to_string(),
                )
                .retry_after(1)
            }
        };
        problem.into_response()
    }
}

async fn probe(
    State(state): State<AppState>,
    Path(probe_id): Path<String>,
) -> Result<Response, QueryError> {
    let id = Uuid::parse_str(&probe_id).map_err(|_| QueryError::BadId(probe_id))?;
    let row = projections::probes::find(&state.pool, id)
        .await?
        .ok_or(QueryError::NotFound("probe"))?;
    Ok(Json(row).into_response())
}
