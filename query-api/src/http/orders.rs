//! `GET /orders/{order_id}`: the order with its lines, totals, payment and
//! shipment status and timeline. A customer sees only their own orders; any
//! other order answers 404, exactly as a missing one does, whether the answer
//! comes from the cache or from PostgreSQL. Admins and carriers see every
//! order.

use axum::extract::{Path, State};
use axum::response::Response;
use events::command::{Principal, Role};
use projections::read::documents;
use tracing::Instrument;
use uuid::Uuid;

use super::{
    AppState, Caller, QueryError, TokenHeader, cached_response, database_body, database_response,
};
use crate::consistency::Resource;

/// True when `caller` may see orders of `customer_id`.
pub fn may_read(caller: &Principal, customer_id: &str) -> bool {
    match caller.role {
        Role::Admin | Role::Carrier | Role::System => true,
        Role::Customer => caller.subject == customer_id,
    }
}

#[utoipa::path(
    get,
    path = "/orders/{order_id}",
    tag = "orders",
    params(("order_id" = String, Path), ("X-Consistency-Token" = Option<String>, Header, pattern = "^[!-~]+$")),
    responses(
        (status = 200, body = documents::OrderDocument),
        crate::openapi::BadRead,
    ),
    security(("bearer" = []))
)]
pub async fn order(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(order_id): Path<String>,
    header: TokenHeader,
) -> Result<Response, QueryError> {
    let id = Uuid::parse_str(&order_id).map_err(|_| QueryError::BadId(order_id))?;
    let token = state.token(&header, Resource::Order(id))?;
    let key = id.to_string();
    if let Some(entry) = state
        .cached("orders", &key, token.as_ref(), state.cache.order(id))
        .await
        && let Some(owner) = &entry.owner
    {
        if !may_read(&caller, owner) {
            return Err(QueryError::NotFound("order"));
        }
        return Ok(cached_response(entry.body));
    }
    if token.is_some() {
        // Authorize before waiting: an order the view already holds is
        // someone else's at once, without a wait.
        let _slot = state.fallback()?;
        let found = documents::orders(&state.pool, &[id]).await?.pop();
        if found.is_some_and(|o| !may_read(&caller, &o.customer_id)) {
            return Err(QueryError::NotFound("order"));
        }
    }
    state.wait_for(token.as_ref()).await?;
    let _slot = state.fallback()?;
    let generation = state.cache.generation();
    let order = documents::orders(&state.pool, &[id])
        .instrument(super::read_span("query read", "postgres", "orders"))
        .await?
        .pop()
        .filter(|o| may_read(&caller, &o.customer_id))
        .ok_or(QueryError::NotFound("order"))?;
    // Encoded once, for the answer and the cache (encoding an order
    // document does not fail; if it did, axum's answer would say so).
    let Ok(body) = serde_json::to_string(&order) else {
        return Ok(database_response(order));
    };
    let answer = database_body(body.clone());
    state.fill(generation, order, body);
    Ok(answer)
}
