//! The command HTTP API: validates requests, turns them into command
//! envelopes, dispatches them through the [`CommandBus`] and maps the outcome.
//!
//! - [`extract`]: the JSON, path, caller and header extractors; every
//!   rejection is problem+json.
//! - [`error`]: [`ApiError`], the one error type of this boundary.
//! - `dispatch`: envelope building (ids, fingerprints) and outcome mapping.
//! - one module per resource: `catalog`, `orders`, `shipments`, `sagas`
//!   (operator decisions about parked sagas), `commands`, `probes`.
//!
//! Status codes: 201/200 mean the processor answered and the events are
//! committed; 202 means the command is durably queued (see `GET
//! /commands/{id}`); 503 means it may not have reached Kafka and a retry with
//! the same Idempotency-Key is safe.

pub(crate) mod catalog;
pub(crate) mod commands;
pub(crate) mod dispatch;
pub mod error;
pub mod extract;
pub(crate) mod orders;
pub(crate) mod probes;
pub(crate) mod sagas;
pub(crate) mod shipments;
#[cfg(test)]
mod tests;
mod validate;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRef};
use axum::http::StatusCode;
use axum::routing::{get, post, put};
use events::service::Problem;

use crate::auth::JwtVerifier;
use crate::bus::CommandBus;
use crate::probe::ProbeWriter;

pub use error::ApiError;
pub use events::consistency::{ConsistencyToken, consistency_token};

/// Largest request body accepted; bigger ones get 413.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// What the handlers share.
pub struct AppState<B: CommandBus> {
    pub bus: Arc<B>,
    pub auth: Arc<JwtVerifier>,
    pub settings: Arc<Settings>,
    pub probes: Arc<ProbeWriter>,
}

// Written by hand: a derive would require `B: Clone`, but only the `Arc`s are
// cloned (one reference count each per request).
impl<B: CommandBus> Clone for AppState<B> {
    fn clone(&self) -> Self {
        Self {
            bus: self.bus.clone(),
            auth: self.auth.clone(),
            settings: self.settings.clone(),
            probes: self.probes.clone(),
        }
    }
}

impl<B: CommandBus> FromRef<AppState<B>> for Arc<JwtVerifier> {
    fn from_ref(state: &AppState<B>) -> Self {
        state.auth.clone()
    }
}

/// Tunables of the command API.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Base URL of the query API (e.g. `http://127.0.0.1:8081`), for `Location` headers.
    pub query_api_url: String,
    /// How long a request waits for the processor's reply before answering 202.
    pub reply_wait: Duration,
    /// Signs consistency tokens (the query API checks them).
    pub signing: events::auth::signing::SigningKey,
}

impl Settings {
    /// `path` (starting with `/`) on the query API.
    fn query_url(&self, path: &str) -> String {
        format!("{}{path}", self.query_api_url.trim_end_matches('/'))
    }
}

/// The command API's routes, including `GET /openapi.json`. Health, metrics
/// and the 404 fallback are added by `events::service::with_ops`.
pub fn router<B: CommandBus>(state: AppState<B>) -> Router {
    Router::new()
        .route("/catalog/items", post(catalog::create_item::<B>))
        .route("/catalog/items/{sku}/restock", post(catalog::restock::<B>))
        .route(
            "/catalog/items/{sku}/price",
            put(catalog::change_price::<B>),
        )
        .route("/orders", post(orders::place_order::<B>))
        .route("/orders/{order_id}/cancel", post(orders::cancel_order::<B>))
        .route(
            "/shipments/{order_id}/dispatch",
            post(shipments::dispatch::<B>),
        )
        .route(
            "/shipments/{order_id}/deliver",
            post(shipments::deliver::<B>),
        )
        .route("/sagas/{order_id}/retry", post(sagas::retry::<B>))
        .route("/sagas/{order_id}/resolve", post(sagas::resolve::<B>))
        .route("/commands/{command_id}", get(commands::command_status::<B>))
        .route("/probes", post(probes::record_probe::<B>))
        .route("/openapi.json", get(crate::openapi::serve))
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

async fn method_not_allowed() -> Problem {
    Problem::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this resource does not support the method",
    )
}
