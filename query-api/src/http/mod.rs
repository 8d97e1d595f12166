//! The query HTTP API: routes, the shared state, and the steps every read
//! shares (who is calling, read-your-writes).
//!
//! - `error`: [`QueryError`], the one problem+json error type.
//! - `catalog`: `GET /catalog/items/{sku}` (public).
//! - `orders`: `GET /orders/{id}` (the order's customer, admins, carriers).
//! - `history`: `GET /customers/{id}/orders` (that customer, admins).
//! - `probes`: `GET /probes/{id}` (public).

mod catalog;
mod error;
mod history;
mod orders;
mod probes;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::HeaderMap;
use axum::routing::get;
use events::command::Principal;
use sqlx::PgPool;

pub use error::QueryError;

use crate::auth::Verifier;
use crate::consistency;

#[derive(Clone)]
pub struct AppState {
    pub pool: PgPool,
    pub verifier: Arc<Verifier>,
    /// Longest a read waits for the views to reach a consistency token.
    pub consistency_wait: Duration,
}

impl AppState {
    /// The authenticated caller, or 401.
    fn caller(&self, headers: &HeaderMap) -> Result<Principal, QueryError> {
        self.verifier
            .caller(headers)
            .map_err(QueryError::Unauthorized)
    }

    /// Honours `X-Consistency-Token`: waits (bounded) until the views have
    /// reached it; a malformed token is a 400, a timeout a 503 `stale_read`.
    async fn read_your_writes(&self, headers: &HeaderMap) -> Result<(), QueryError> {
        let Some(value) = headers.get(consistency::HEADER) else {
            return Ok(());
        };
        let token = value
            .to_str()
            .ok()
            .map(consistency::parse)
            .and_then(Result::ok)
            .ok_or(QueryError::InvalidConsistencyToken)?;
        consistency::wait(&token, &self.pool, self.consistency_wait).await?;
        Ok(())
    }
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/probes/{probe_id}", get(probes::probe))
        .route("/catalog/items/{sku}", get(catalog::item))
        .route("/orders/{order_id}", get(orders::order))
        .route(
            "/customers/{customer_id}/orders",
            get(history::customer_orders),
        )
        .with_state(state)
}
