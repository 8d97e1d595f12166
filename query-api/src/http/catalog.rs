//! `GET /catalog/items/{sku}`: public, because shop front ends show price and
//! stock to visitors who have not signed in. The Authorization header is not
//! read here.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use events::domain::Sku;
use projections::views::catalog_items::{self, CatalogItem};
use serde::Serialize;

use super::{AppState, QueryError};

#[derive(Debug, Serialize)]
pub struct Price {
    pub minor: i64,
    pub currency: String,
}

#[derive(Debug, Serialize)]
pub struct ItemResponse {
    pub sku: String,
    pub name: String,
    pub unit_price: Price,
    pub on_hand: i64,
    pub reserved: i64,
    pub available: i64,
    pub version: i64,
    pub updated_at: DateTime<Utc>,
}

impl From<CatalogItem> for ItemResponse {
    fn from(item: CatalogItem) -> Self {
        ItemResponse {
            available: item.available(),
            unit_price: Price {
                minor: item.unit_price_minor,
                currency: item.currency,
            },
            sku: item.sku,
            name: item.name,
            on_hand: item.on_hand,
            reserved: item.reserved,
            version: item.version,
            updated_at: item.updated_at,
        }
    }
}

pub async fn item(
    State(state): State<AppState>,
    Path(sku): Path<String>,
    headers: HeaderMap,
) -> Result<Response, QueryError> {
    let sku = Sku::new(sku.clone()).map_err(|_| QueryError::BadId(sku))?;
    state.read_your_writes(&headers).await?;
    let item = catalog_items::find(&state.pool, sku.as_str())
        .await?
        .ok_or(QueryError::NotFound("catalog item"))?;
    Ok(Json(ItemResponse::from(item)).into_response())
}
