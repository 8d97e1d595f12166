//! The OpenAPI document of the query API, generated with utoipa from the
//! handlers' `#[utoipa::path]` attributes and the documents they serve,
//! served at `GET /openapi.json`.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use axum::Json;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
use utoipa::{Modify, OpenApi, ToSchema};

use crate::http::{catalog, dead_letters, history, orders, sagas, sales};

/// An RFC 9457 problem, as every error of this API is sent
/// (`Content-Type: application/problem+json`).
#[derive(ToSchema)]
#[allow(dead_code)] // Only documents the shape of `events::service::Problem`.
pub struct ProblemDetails {
    /// `https://commerce.example/problems/<code>`; the code is stable
    /// (e.g. `invalid_cursor`, `invalid_range`, `stale_read`).
    #[schema(rename = "type")]
    type_uri: String,
    title: String,
    status: u16,
    detail: Option<String>,
    /// On 503: seconds to wait before retrying (also in `Retry-After`).
    retry_after_seconds: Option<u64>,
}

/// Every way a read can fail.
pub struct BadRead;

impl utoipa::IntoResponses for BadRead {
    fn responses() -> BTreeMap<String, RefOr<utoipa::openapi::Response>> {
        [
            ("400", "A bad id, cursor, limit, range, bucket, currency, status or consistency token"),
            ("401", "Missing, expired or forged bearer token"),
            ("403", "The caller's role may not read this"),
            ("404", "No such resource (or another customer's)"),
            ("408", "The request took longer than the request timeout (`request_timeout`)"),
            ("429", "Too many requests from this caller (`rate_limited`); wait `Retry-After` seconds"),
            ("503", "The views are unavailable, have not reached the consistency token (`stale_read`), or too many requests are in flight (`overloaded`)"),
        ]
        .into_iter()
        .map(|(status, description)| {
            let content = ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ProblemDetails")))
                .build();
            let response = ResponseBuilder::new()
                .description(description)
                .content("application/problem+json", content)
                .build();
            (status.to_owned(), RefOr::T(response))
        })
        .collect()
    }
}

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let scheme = HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .bearer_format("JWT")
            .build();
        openapi
            .components
            .get_or_insert_with(Default::default)
            .add_security_scheme("bearer", SecurityScheme::Http(scheme));
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Commerce query API", description = "Reads: the views the projectors fold from the event log."),
    paths(
        catalog::item,
        orders::order,
        history::customer_orders,
        sales::report,
        dead_letters::list,
        sagas::saga,
        sagas::list,
    ),
    components(schemas(ProblemDetails)),
    modifiers(&BearerAuth)
)]
pub struct ApiDoc;

/// The document, rendered once.
static DOCUMENT: LazyLock<serde_json::Value> =
    LazyLock::new(|| events::message::value_plain(&ApiDoc::openapi()));

/// `GET /openapi.json`.
pub async fn serve() -> Json<serde_json::Value> {
    Json(DOCUMENT.clone())
}

/// The AsyncAPI document of the topics, rendered once.
static ASYNCAPI: LazyLock<serde_json::Value> = LazyLock::new(events::asyncapi::document);

/// `GET /asyncapi.json`: the event catalog (topics, keys, headers, payload
/// schemas), generated from the same types the services use.
pub async fn serve_asyncapi() -> Json<serde_json::Value> {
    Json(ASYNCAPI.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_asyncapi_document_is_served() {
        let Json(doc) = serve_asyncapi().await;
        assert_eq!(doc["asyncapi"], "3.0.0");
        assert_eq!(doc["channels"]["ordersEvents"]["address"], "orders.events");
    }

    #[test]
    fn the_document_names_every_read() {
        let paths = &DOCUMENT["paths"];
        for path in [
            "/catalog/items/{sku}",
            "/orders/{order_id}",
            "/customers/{customer_id}/orders",
            "/sales",
            "/dead-letters",
            "/sagas/{order_id}",
            "/sagas",
        ] {
            assert!(paths.get(path).is_some(), "{path} is missing");
        }
        assert!(DOCUMENT["components"]["schemas"]["OrderDocument"].is_object());
        assert!(DOCUMENT["components"]["schemas"]["SagaDocument"].is_object());
    }
}
