//! The OpenAPI document of the command API, generated with utoipa from the
//! handlers' `#[utoipa::path]` attributes and the request/response DTOs of
//! the `http` layer, served at `GET /openapi.json`.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use axum::Json;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
use utoipa::{Modify, OpenApi, ToSchema};

use crate::http::error::InvalidParam;
use crate::http::{catalog, commands, dispatch, orders, probes, sagas, shipments};

/// An RFC 9457 problem, as every error of this API is sent
/// (`Content-Type: application/problem+json`).
#[derive(ToSchema)]
#[allow(dead_code)] // Only documents the shape of `events::service::Problem`.
pub struct ProblemDetails {
    /// `https://commerce.example/problems/<code>`; the code is stable
    /// (e.g. `validation_failed`, `version_conflict`, `insufficient_stock`).
    #[schema(rename = "type")]
    type_uri: String,
    title: String,
    status: u16,
    detail: Option<String>,
    /// On 503: seconds to wait before retrying (also in `Retry-After`).
    retry_after_seconds: Option<u64>,
    /// On `validation_failed`: every offending field.
    invalid_params: Option<Vec<InvalidParam>>,
}

fn problems(statuses: &[(&str, &str)]) -> BTreeMap<String, RefOr<utoipa::openapi::Response>> {
    statuses
        .iter()
        .map(|(status, description)| {
            let content = ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ProblemDetails")))
                .build();
            let response = ResponseBuilder::new()
                .description(*description)
                .content("application/problem+json", content)
                .build();
            ((*status).to_owned(), RefOr::T(response))
        })
        .collect()
}

/// 401 and 403.
pub struct Unauthorized;

impl utoipa::IntoResponses for Unauthorized {
    fn responses() -> BTreeMap<String, RefOr<utoipa::openapi::Response>> {
        problems(&[
            (
                "401",
                "Missing, expired, forged or malformed bearer token (`WWW-Authenticate: Bearer`)",
            ),
            ("403", "The caller's role may not do this"),
        ])
    }
}

/// What a malformed request gets; nothing was dispatched.
pub struct InvalidRequest;

impl utoipa::IntoResponses for InvalidRequest {
    fn responses() -> BTreeMap<String, RefOr<utoipa::openapi::Response>> {
        problems(&[
            (
                "400",
                "Malformed JSON, a bad path id, or a missing or invalid Idempotency-Key / If-Match",
            ),
            ("413", "Body larger than 64 KiB"),
            ("415", "Content-Type is not application/json"),
            (
                "422",
                "Unknown fields, wrong types or invalid values (`invalid_params` names them); or the command was rejected as invalid",
            ),
        ])
    }
}

/// What the write model answers when it refuses, or cannot be reached.
pub struct CommandFailed;

impl utoipa::IntoResponses for CommandFailed {
    fn responses() -> BTreeMap<String, RefOr<utoipa::openapi::Response>> {
        problems(&[
            (
                "404",
                "The aggregate does not exist (or belongs to another customer)",
            ),
            (
                "409",
                "Conflicts with the aggregate's state, or If-Match is stale (`version_conflict`)",
            ),
            (
                "408",
                "The request took longer than the request timeout (`request_timeout`); the command may still apply, retry with the same Idempotency-Key",
            ),
            (
                "429",
                "Too many requests from this caller (`rate_limited`); wait `Retry-After` seconds",
            ),
            (
                "503",
                "The command log is unavailable, or too many requests are in flight (`overloaded`); retry with the same Idempotency-Key",
            ),
        ])
    }
}

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let scheme = HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .bearer_format("JWT")
            .description(Some(
                "HS256 in development; claims `sub`, `role` (customer, admin, carrier), `exp`",
            ))
            .build();
        openapi
            .components
            .get_or_insert_with(Default::default)
            .add_security_scheme("bearer", SecurityScheme::Http(scheme));
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Commerce command API", description = "Writes: every accepted command is a set of events committed to Kafka."),
    paths(
        catalog::create_item,
        catalog::restock,
        catalog::change_price,
        orders::place_order,
        orders::cancel_order,
        shipments::dispatch,
        shipments::deliver,
        sagas::retry,
        sagas::resolve,
        commands::command_status,
        probes::record_probe,
    ),
    components(schemas(ProblemDetails, InvalidParam, dispatch::CommandAccepted, dispatch::CommandQueued)),
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
