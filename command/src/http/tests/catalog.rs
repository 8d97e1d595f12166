//! Catalog commands: creating, restocking and repricing items.

use axum::http::StatusCode;
use events::command::DomainCommand;
use events::domain::{CatalogCommand, Currency, Money};
use serde_json::json;

use super::*;
use events::consistency::consistency_token;

fn item() -> Value {
    json!({"sku": "SKU-1", "name": "Tea pot", "unit_price": 1999, "currency": "USD", "stock": 100})
}

#[tokio::test]
async fn creating_an_item_answers_201_with_the_item_location() {
    let app = app();
    app.bus.then(Script::Accept(1));
    let answer = app
        .call(json("POST", "/catalog/items", &admin(), &[], &item()))
        .await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
    assert_eq!(
        answer.header("location"),
        Some(format!("{QUERY_API}/catalog/items/SKU-1").as_str())
    );
    assert_eq!(answer.body["aggregate_type"], "catalog");
    assert_eq!(answer.body["aggregate_id"], "SKU-1");
    let token = consistency_token(events::AggregateType::CatalogItem, "SKU-1", 1, &signing());
    assert_eq!(answer.body["consistency_token"], token);
    let envelope = app.bus.only();
    assert_eq!(envelope.aggregate_id, "SKU-1");
    let usd = Currency::new("USD").unwrap();
    let expected = CatalogCommand::CreateItem {
        name: "Tea pot".into(),
        unit_price: Money::new(1999, usd),
        initial_stock: 100,
    };
    assert_eq!(envelope.command, DomainCommand::CatalogItem(expected));
}

#[tokio::test]
async fn an_existing_item_is_409() {
    let app = app();
    app.bus.then(Script::Reject(
        RejectionKind::Conflict,
        "item_already_exists",
    ));
    let answer = app
        .call(json("POST", "/catalog/items", &admin(), &[], &item()))
        .await;
    answer.assert_problem(StatusCode::CONFLICT, "item_already_exists");
}

#[tokio::test]
async fn restocking_answers_200_with_the_new_version() {
    let app = app();
    app.bus.then(Script::Accept(5));
    let request = json(
        "POST",
        "/catalog/items/SKU-1/restock",
        &admin(),
        &[("If-Match", "4")],
        &json!({"quantity": 10}),
    );
    let answer = app.call(request).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.body["version"], 5);
    let envelope = app.bus.only();
    assert_eq!(envelope.expected_version, Some(4));
    assert_eq!(
        envelope.command,
        DomainCommand::CatalogItem(CatalogCommand::Restock { quantity: 10 })
    );
}

#[tokio::test]
async fn a_price_change_carries_the_given_currency() {
    let app = app();
    let body = json!({"unit_price": 2499, "currency": "KRW"});
    let answer = app
        .call(json(
            "PUT",
            "/catalog/items/SKU-1/price",
            &admin(),
            &[],
            &body,
        ))
        .await;
    assert_eq!(answer.status, StatusCode::OK);
    let krw = Currency::new("KRW").unwrap();
    let expected = CatalogCommand::ChangePrice {
        unit_price: Money::new(2499, krw),
    };
    assert_eq!(app.bus.only().command, DomainCommand::CatalogItem(expected));
}

#[tokio::test]
async fn a_price_change_without_currency_is_422_naming_it() {
    let app = app();
    let answer = app
        .call(json(
            "PUT",
            "/catalog/items/SKU-1/price",
            &admin(),
            &[],
            &json!({"unit_price": 2499}),
        ))
        .await;
    answer.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(answer.invalid_params(), ["currency"]);
    app.assert_nothing_dispatched();
}
