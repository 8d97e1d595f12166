//! `GET /commands/{id}`, the OpenAPI document and the ops routes.

use axum::http::StatusCode;
use events::command::{Outcome, RejectionKind};
use serde_json::json;

use super::*;
use crate::bus::CommandStatus;
use events::consistency::consistency_token;

const ID: &str = "0190a5b2-3c4d-7e8f-9a0b-1c2d3e4f5a6b";

fn status_request() -> Request<Body> {
    raw(
        "GET",
        &format!("/commands/{ID}"),
        Some(&customer("alice")),
        &[],
        None,
    )
}

const ORDER: &str = "0190a5b2-0000-7000-8000-000000000001";

fn completed(outcome: Outcome) -> CommandStatus {
    CommandStatus::Completed(Reply {
        command_id: ID.parse().unwrap(),
        aggregate_type: events::AggregateType::Order,
        aggregate_id: ORDER.into(),
        fingerprint: "f".into(),
        outcome,
        processed_at: Utc::now(),
        issued_by: Some(alice()),
    })
}

fn alice() -> Principal {
    Principal {
        subject: "alice".into(),
        role: Role::Customer,
    }
}

#[tokio::test]
async fn unknown_commands_are_404() {
    let app = app();
    app.call(status_request())
        .await
        .assert_problem(StatusCode::NOT_FOUND, "command_not_found");
}

#[tokio::test]
async fn pending_commands_say_so() {
    let app = app();
    let pending = CommandStatus::Pending { issued_by: alice() };
    app.bus.know(ID.parse().unwrap(), pending);
    let answer = app.call(status_request()).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.body, json!({"command_id": ID, "status": "pending"}));
}

#[tokio::test]
async fn succeeded_and_rejected_commands_show_their_result_or_reason() {
    let app = app();
    let accepted = Outcome::Accepted {
        version: 2,
        events: vec!["OrderPlaced".into()],
    };
    app.bus.know(ID.parse().unwrap(), completed(accepted));
    let answer = app.call(status_request()).await;
    let token = consistency_token(events::AggregateType::Order, ORDER, 2, &signing());
    let result = json!({"version": 2, "events": ["OrderPlaced"], "consistency_token": token});
    assert_eq!(
        answer.body,
        json!({"command_id": ID, "status": "succeeded", "result": result})
    );

    let rejected = Outcome::Rejected {
        kind: RejectionKind::Conflict,
        code: "order_closed".into(),
        message: "closed".into(),
        version: 3,
    };
    app.bus.know(ID.parse().unwrap(), completed(rejected));
    let answer = app.call(status_request()).await;
    let reason = json!({"code": "order_closed", "message": "closed", "kind": "conflict"});
    assert_eq!(
        answer.body,
        json!({"command_id": ID, "status": "rejected", "reason": reason})
    );
}

#[tokio::test]
async fn only_the_issuer_and_operators_see_a_command() {
    let app = app();
    let accepted = Outcome::Accepted {
        version: 2,
        events: vec!["OrderPlaced".into()],
    };
    app.bus.know(ID.parse().unwrap(), completed(accepted));
    let path = format!("/commands/{ID}");
    for stranger in [
        customer("bob"),
        token(Role::Carrier, "alice"),
        token(Role::Carrier, "acme"),
    ] {
        let answer = app
            .call(raw("GET", &path, Some(&stranger), &[], None))
            .await;
        answer.assert_problem(StatusCode::NOT_FOUND, "command_not_found");
    }
    let admin = token(Role::Admin, "ops");
    let answer = app.call(raw("GET", &path, Some(&admin), &[], None)).await;
    assert_eq!(answer.status, StatusCode::OK);
    // A pending command of someone else is no more visible.
    let pending = CommandStatus::Pending { issued_by: alice() };
    app.bus.know(ID.parse().unwrap(), pending);
    let answer = app
        .call(raw("GET", &path, Some(&customer("bob")), &[], None))
        .await;
    answer.assert_problem(StatusCode::NOT_FOUND, "command_not_found");
}

#[tokio::test]
async fn command_status_needs_a_token() {
    let app = app();
    let answer = app
        .call(raw("GET", &format!("/commands/{ID}"), None, &[], None))
        .await;
    answer.assert_problem(StatusCode::UNAUTHORIZED, "unauthorized");
}

#[tokio::test]
async fn the_openapi_document_lists_the_routes_schemas_and_bearer_auth() {
    let app = app();
    let answer = app.call(raw("GET", "/openapi.json", None, &[], None)).await;
    assert_eq!(answer.status, StatusCode::OK);
    let doc = answer.body;
    for path in [
        "/catalog/items",
        "/catalog/items/{sku}/restock",
        "/catalog/items/{sku}/price",
        "/orders",
        "/orders/{order_id}/cancel",
        "/shipments/{order_id}/dispatch",
        "/shipments/{order_id}/deliver",
        "/sagas/{order_id}/retry",
        "/sagas/{order_id}/resolve",
        "/commands/{command_id}",
        "/probes",
    ] {
        assert!(doc["paths"][path].is_object(), "missing {path}");
    }
    let schemas = &doc["components"]["schemas"];
    for schema in [
        "PlaceOrderRequest",
        "OrderLineRequest",
        "OrderPlaced",
        "CommandQueued",
        "ResolveSagaRequest",
        "SagaCommandAccepted",
        "ProblemDetails",
    ] {
        assert!(schemas[schema].is_object(), "missing schema {schema}");
    }
    assert_eq!(
        schemas["OrderLineRequest"]["additionalProperties"], false,
        "unknown fields are refused"
    );
    assert!(doc["paths"]["/orders"]["post"]["responses"]["422"].is_object());
    let price_required = schemas["ChangePriceRequest"]["required"]
        .as_array()
        .unwrap();
    assert!(price_required.contains(&json!("currency")));
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
}

#[tokio::test]
async fn an_unsupported_method_is_a_405_problem() {
    let app = app();
    let answer = app
        .call(raw("DELETE", "/orders", Some(&admin()), &[], None))
        .await;
    answer.assert_problem(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
}

#[tokio::test]
async fn the_router_merges_with_the_ops_routes() {
    let app = app();
    let health = events::service::Health::new();
    let ops = TestApp {
        router: events::service::with_ops(app.router.clone(), "command", health),
        bus: app.bus.clone(),
    };
    let live = ops.call(raw("GET", "/health/live", None, &[], None)).await;
    assert_eq!(live.status, StatusCode::OK);
    let missing = ops.call(raw("GET", "/nope", None, &[], None)).await;
    missing.assert_problem(StatusCode::NOT_FOUND, "not_found");
    let wrong_method = ops
        .call(raw("GET", "/orders", Some(&admin()), &[], None))
        .await;
    wrong_method.assert_problem(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
}
