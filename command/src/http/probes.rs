//! `POST /probes`: writes a pipeline probe (operators only, because every
//! probe is a transactional write to Kafka).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use events::probe::ProbeEvent;
use serde::Serialize;
use utoipa::ToSchema;

use super::AppState;
use super::error::ApiError;
use super::extract::{AdminOnly, Caller};
use crate::bus::CommandBus;
use crate::openapi::{CommandFailed, Unauthorized};

#[derive(Debug, Serialize, ToSchema)]
pub struct ProbeRecorded {
    pub probe_id: uuid::Uuid,
    pub sent_at: chrono::DateTime<chrono::Utc>,
}

/// Writes a pipeline probe; 201 means it is committed in Kafka. Read it back
/// from the query API at `/probes/{probe_id}`.
#[utoipa::path(
    post,
    path = "/probes",
    tag = "ops",
    responses(
        (status = 201, description = "Probe committed", body = ProbeRecorded),
        Unauthorized, CommandFailed,
    ),
    security(("bearer" = []))
)]
pub(crate) async fn record_probe<B: CommandBus>(
    State(state): State<AppState<B>>,
    _caller: Caller<AdminOnly>,
) -> Result<Response, ApiError> {
    match state.probes.record().await {
        Ok(ProbeEvent::ProbeRecorded { probe_id, sent_at }) => Ok((
            StatusCode::CREATED,
            Json(ProbeRecorded { probe_id, sent_at }),
        )
            .into_response()),
        Err(e) => Err(ApiError::Unavailable(e.to_string())),
    }
}
