//! Carrier commands on shipments, keyed by order id.

use axum::http::StatusCode;
use events::command::DomainCommand;
use events::domain::ShipmentCommand;

use super::*;

const ORDER: &str = "0190a5b2-3c4d-7e8f-9a0b-1c2d3e4f5a6b";

#[tokio::test]
async fn carriers_and_operators_dispatch_and_deliver() {
    let app = app();
    let dispatch = raw(
        "POST",
        &format!("/shipments/{ORDER}/dispatch"),
        Some(&carrier()),
        &[],
        None,
    );
    assert_eq!(app.call(dispatch).await.status, StatusCode::OK);
    let deliver = raw(
        "POST",
        &format!("/shipments/{ORDER}/deliver"),
        Some(&admin()),
        &[],
        None,
    );
    let answer = app.call(deliver).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.body["aggregate_type"], "shipments");
    let seen = app.bus.seen();
    assert_eq!(
        seen[0].command,
        DomainCommand::Shipment(ShipmentCommand::Dispatch)
    );
    assert_eq!(
        seen[1].command,
        DomainCommand::Shipment(ShipmentCommand::Deliver)
    );
    assert!(seen.iter().all(|e| e.aggregate_id == ORDER));
}

#[tokio::test]
async fn dispatching_a_delivered_shipment_is_409() {
    let app = app();
    app.bus.then(Script::Reject(
        RejectionKind::Conflict,
        "shipment_not_scheduled",
    ));
    let dispatch = raw(
        "POST",
        &format!("/shipments/{ORDER}/dispatch"),
        Some(&carrier()),
        &[],
        None,
    );
    app.call(dispatch)
        .await
        .assert_problem(StatusCode::CONFLICT, "shipment_not_scheduled");
}
