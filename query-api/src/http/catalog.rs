//! `GET /catalog/items/{sku}`: public, because shop front ends show price and
//! stock to visitors who have not signed in. The Authorization header is not
//! read here. Served from the cache when it has the item (at the version a
//! consistency token asks for), else from PostgreSQL.

use axum::extract::{Path, State};
use axum::response::Response;
use events::domain::Sku;
use projections::read::documents;

use super::{AppState, QueryError, TokenHeader, cached_response, database_response};
use crate::consistency::Resource;

#[utoipa::path(
    get,
    path = "/catalog/items/{sku}",
    tag = "catalog",
    params(("sku" = String, Path), ("X-Consistency-Token" = Option<String>, Header, pattern = "^[!-~]+$")),
    responses(
        (status = 200, body = documents::ItemDocument),
        crate::openapi::BadRead,
    )
)]
pub async fn item(
    State(state): State<AppState>,
    Path(sku): Path<String>,
    header: TokenHeader,
) -> Result<Response, QueryError> {
    let sku = Sku::new(sku.clone()).map_err(|_| QueryError::BadId(sku))?;
    // The catalog is public: a token for this item is all it takes.
    let token = state.token(&header, Resource::Item(sku.as_str()))?;
    let lookup = state.cache.item(sku.as_str());
    if let Some(entry) = state
        .cached("catalog", sku.as_str(), token.as_ref(), lookup)
        .await
    {
        return Ok(cached_response(entry.body));
    }
    state.wait_for(token.as_ref()).await?;
    let _slot = state.fallback()?;
    let item = documents::items(&state.pool, &[sku.as_str().to_owned()])
        .await?
        .pop()
        .ok_or(QueryError::NotFound("catalog item"))?;
    Ok(database_response(item))
}
