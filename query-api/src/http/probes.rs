//! `GET /probes/{probe_id}`: public, like the pipeline probe it reports on.

use axum::Json;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use uuid::Uuid;

use super::{AppState, QueryError};

pub async fn probe(
    State(state): State<AppState>,
    Path(probe_id): Path<String>,
) -> Result<Response, QueryError> {
    let id = Uuid::parse_str(&probe_id).map_err(|_| QueryError::BadId(probe_id))?;
    let row = projections::read::probes::find(&state.pool, id)
        .await?
        .ok_or(QueryError::NotFound("probe"))?;
    Ok(Json(row).into_response())
}
