//! The command HTTP API.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use events::probe::ProbeEvent;
use events::service::Problem;

use crate::probe::ProbeWriter;

#[derive(Clone)]
pub struct AppState {
    pub probes: Arc<ProbeWriter>,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/probes", post(record_probe))
        .with_state(state)
}

/// Writes a pipeline probe; 201 means it is committed in Kafka.
async fn record_probe(State(state): State<AppState>) -> Response {
    match state.probes.record().await {
        Ok(ProbeEvent::ProbeRecorded { probe_id, sent_at }) => (
            StatusCode::CREATED,
            Json(serde_json::json!({ "probe_id": probe_id, "sent_at": sent_at })),
        )
            .into_response(),
        Err(e) => Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "kafka_unavailable",
            "the event log is unavailable",
        )
        .detail(e.to_string())
        .retry_after(1)
        .into_response(),
    }
}
