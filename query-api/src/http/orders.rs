//! `GET /orders/{order_id}`: the order with its lines, totals, payment and
//! shipment status and timeline. A customer sees only their own orders; any
//! other order answers 404, exactly as a missing one does. Admins and
//! carriers see every order.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use events::command::{Principal, Role};
use projections::views::order_timeline::{self, TimelineEntry};
use projections::views::orders::{self, LineView, OrderRow};
use projections::views::{order_payments, order_shipments};
use serde::Serialize;
use sqlx::PgPool;
use uuid::Uuid;

use super::catalog::Price;
use super::{AppState, QueryError};

#[derive(Debug, Serialize)]
pub struct OrderResponse {
    pub order_id: Uuid,
    pub customer_id: String,
    pub status: String,
    pub status_reason: Option<String>,
    pub cancellation_reason: Option<String>,
    pub currency: String,
    pub lines: Vec<LineView>,
    /// Absent until the order is priced from its stock reservations.
    pub total: Option<Price>,
    pub payment_status: Option<String>,
    pub shipment_status: Option<String>,
    pub tracking_ref: Option<String>,
    pub timeline: Vec<TimelineEntry>,
    /// The order aggregate's sequence the view reflects.
    pub version: i64,
    pub placed_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// True when `caller` may see orders of `customer_id`.
pub fn may_read(caller: &Principal, customer_id: &str) -> bool {
    match caller.role {
        Role::Admin | Role::Carrier | Role::System => true,
        Role::Customer => caller.subject == customer_id,
    }
}

pub async fn order(
    State(state): State<AppState>,
    Path(order_id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, QueryError> {
    let caller = state.caller(&headers)?;
    let id = Uuid::parse_str(&order_id).map_err(|_| QueryError::BadId(order_id))?;
    state.read_your_writes(&headers).await?;
    let order = load(&state.pool, id)
        .await?
        .filter(|o| may_read(&caller, &o.customer_id))
        .ok_or(QueryError::NotFound("order"))?;
    Ok(Json(order).into_response())
}

/// Reads the order's rows in one snapshot, so status, payment, shipment and
/// timeline come from the same committed batches.
async fn load(pool: &PgPool, id: Uuid) -> Result<Option<OrderResponse>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *tx)
        .await?;
    let Some(row) = orders::find(&mut tx, id).await? else {
        return Ok(None);
    };
    let payment = order_payments::find(&mut tx, id).await?;
    let shipment = order_shipments::find(&mut tx, id).await?;
    let timeline = order_timeline::find(&mut tx, id).await?;
    tx.commit().await?;
    let mut response = OrderResponse::from(row);
    response.payment_status = payment.map(|p| p.status);
    if let Some(shipment) = shipment {
        response.shipment_status = Some(shipment.status);
        response.tracking_ref = shipment.tracking_ref;
    }
    response.timeline = timeline;
    Ok(Some(response))
}

impl From<OrderRow> for OrderResponse {
    fn from(row: OrderRow) -> Self {
        OrderResponse {
            total: row.total_minor.map(|minor| Price {
                minor,
                currency: row.currency.clone(),
            }),
            order_id: row.order_id,
            customer_id: row.customer_id,
            status: row.status,
            status_reason: row.status_reason,
            cancellation_reason: row.cancellation_reason,
            currency: row.currency,
            lines: row.lines.0,
            payment_status: None,
            shipment_status: None,
            tracking_ref: None,
            timeline: Vec::new(),
            version: row.version,
            placed_at: row.placed_at,
            updated_at: row.updated_at,
        }
    }
}
