//! The read side end to end: commands through the Kafka bus (the command
//! API's path), the projector folding all four event streams into
//! PostgreSQL, and the query API serving the views. Every view's answer
//! must equal the fold of the log.

use chrono::Utc;
use command::bus::KafkaBus;
use events::AggregateType;
use events::command::{DomainCommand, Role};
use events::domain::{
    CatalogCommand, CatalogEvent, OrderCommand, OrderEvent, OrderId, PaymentCommand, PaymentEvent,
    PricedLine, ShipmentCommand, ShipmentEvent, Sku,
};
use projections::views::{catalog_items, order_payments, order_shipments, orders};
use serde_json::Value;
use std::time::Duration;
use tests::auth::{operator, system, token};
use tests::processor::{accepted, usd};
use tests::views::query::{get, place, start, wait_for_version};
use tests::{TestEnv, eventually, fold, log};
use uuid::Uuid;

async fn admin_catalog(bus: &KafkaBus, sku: &str, command: CatalogCommand) -> u64 {
    accepted(bus, sku, operator(), DomainCommand::CatalogItem(command)).await
}

#[tokio::test]
async fn the_views_equal_the_fold_of_the_log() {
    let env = TestEnv::new();
    let (bus, query) = start(&env).await;
    let admin = token(Role::Admin, "ops");

    let create = |price, stock| CatalogCommand::CreateItem {
        name: "Mug".into(),
        unit_price: usd(price),
        initial_stock: stock,
    };
    admin_catalog(&bus, "SKU-A", create(1250, 10)).await;
    admin_catalog(&bus, "SKU-B", create(300, 5)).await;
    admin_catalog(&bus, "SKU-A", CatalogCommand::Restock { quantity: 5 }).await;
    admin_catalog(
        &bus,
        "SKU-B",
        CatalogCommand::ChangePrice {
            unit_price: usd(350),
        },
    )
    .await;

    let (order, _) = place(&bus, "cust-1", &["SKU-A", "SKU-B"]).await;
    let id = order.to_string();
    for (sku, quantity) in [("SKU-A", 2), ("SKU-B", 2)] {
        admin_catalog(
            &bus,
            sku,
            CatalogCommand::ReserveStock {
                order_id: order,
                quantity,
            },
        )
        .await;
    }
    admin_catalog(
        &bus,
        "SKU-A",
        CatalogCommand::ReserveStock {
            order_id: OrderId::from(Uuid::now_v7()),
            quantity: 100,
        },
    )
    .await;
    admin_catalog(
        &bus,
        "SKU-B",
        CatalogCommand::CommitStock { order_id: order },
    )
    .await;
    let lines = vec![
        PricedLine {
            sku: Sku::new("SKU-A").unwrap(),
            quantity: 2,
            unit_price: usd(1250),
        },
        PricedLine {
            sku: Sku::new("SKU-B").unwrap(),
            quantity: 2,
            unit_price: usd(350),
        },
    ];
    accepted(
        &bus,
        &id,
        system(),
        DomainCommand::Order(OrderCommand::PriceOrder {
            lines,
            total: usd(3200),
        }),
    )
    .await;
    let payment = PaymentCommand::RequestAuthorization {
        amount: usd(3200),
        token: "tok_ok".into(),
    };
    accepted(&bus, &id, system(), DomainCommand::Payment(payment)).await;
    accepted(
        &bus,
        &id,
        system(),
        DomainCommand::Payment(PaymentCommand::RecordAuthorized {
            provider_ref: "p-1".into(),
        }),
    )
    .await;
    let address = tests::processor::address();
    accepted(
        &bus,
        &id,
        system(),
        DomainCommand::Shipment(ShipmentCommand::RequestShipment { address }),
    )
    .await;
    let order_version = accepted(
        &bus,
        &id,
        system(),
        DomainCommand::Order(OrderCommand::ConfirmOrder),
    )
    .await;

    // The log, folded with the projector's own pure folds, is the expectation.
    let catalog = log::<CatalogEvent>(&env, AggregateType::CatalogItem).await;
    for sku in ["SKU-A", "SKU-B"] {
        let expected = fold(&catalog[sku], catalog_items::evolve).unwrap();
        let body = wait_for_version(
            &query,
            &format!("/catalog/items/{sku}"),
            None,
            expected.version,
        )
        .await;
        assert_eq!(body["sku"], sku);
        assert_eq!(
            body["unit_price"],
            serde_json::json!({"minor": expected.unit_price_minor, "currency": "USD"})
        );
        assert_eq!(body["on_hand"], expected.on_hand);
        assert_eq!(body["reserved"], expected.reserved);
        assert_eq!(body["available"], expected.available());
        assert_eq!(body["version"], expected.version);
    }
    let a = fold(&catalog["SKU-A"], catalog_items::evolve).unwrap();
    assert_eq!(
        (a.on_hand, a.reserved, a.unit_price_minor),
        (15, 2, 1250),
        "the refused reservation reserved nothing"
    );
    let b = fold(&catalog["SKU-B"], catalog_items::evolve).unwrap();
    assert_eq!((b.on_hand, b.reserved, b.unit_price_minor), (3, 0, 350));

    let expected = fold(
        &log::<OrderEvent>(&env, AggregateType::Order).await[&id],
        orders::evolve,
    )
    .unwrap();
    assert_eq!(expected.version, i64::try_from(order_version).unwrap());
    let payments = log::<PaymentEvent>(&env, AggregateType::Payment).await;
    let shipments = log::<ShipmentEvent>(&env, AggregateType::Shipment).await;
    let payment = fold(&payments[&id], order_payments::evolve).unwrap();
    let shipment = fold(&shipments[&id], order_shipments::evolve).unwrap();
    let path = format!("/orders/{id}");
    let body = eventually(Duration::from_secs(30), || async {
        let body: Value = get(&query, &path, Some(&admin), None)
            .await
            .json()
            .await
            .ok()?;
        let timeline = body["timeline"].as_array().map_or(0, Vec::len);
        (body["version"] == expected.version && timeline == 6).then_some(body)
    })
    .await
    .expect("the order view never caught up with the log");
    assert_eq!(body["status"], "confirmed");
    assert_eq!(body["status"], expected.status.as_str());
    assert_eq!(body["customer_id"], "cust-1");
    assert_eq!(
        body["lines"],
        serde_json::to_value(&expected.lines.0).unwrap()
    );
    assert_eq!(
        body["lines"][1]["unit_price"],
        serde_json::json!({"minor": 350, "currency": "USD"})
    );
    assert_eq!(
        body["total"],
        serde_json::json!({"minor": 3200, "currency": "USD"})
    );
    assert_eq!(body["payment_status"], payment.status.as_str());
    assert_eq!(body["payment_status"], "authorized");

    // The confirmation counts once in each bucket size of the sales view.
    let now = Utc::now();
    let (from, to) = (
        now - chrono::Duration::hours(2),
        now + chrono::Duration::hours(1),
    );
    for bucket in ["minute", "hour", "day"] {
        let path = format!(
            "/sales?from={}&to={}&bucket={bucket}&currency=USD",
            from.format("%Y-%m-%dT%H:%M:%SZ"),
            to.format("%Y-%m-%dT%H:%M:%SZ")
        );
        let report: Value = get(&query, &path, Some(&admin), None)
            .await
            .json()
            .await
            .unwrap();
        let buckets = report["buckets"].as_array().unwrap();
        let orders: i64 = buckets.iter().map(|b| b["orders"].as_i64().unwrap()).sum();
        let revenue: i64 = buckets
            .iter()
            .map(|b| b["revenue"]["minor"].as_i64().unwrap())
            .sum();
        assert_eq!((orders, revenue), (1, 3200), "{bucket}: {report}");
    }
    assert_eq!(body["shipment_status"], shipment.status.as_str());
    let types: Vec<&str> = body["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_type"].as_str().unwrap())
        .collect();
    for expected in [
        "OrderPlaced",
        "OrderPriced",
        "PaymentAuthorizationRequested",
        "PaymentAuthorized",
        "ShipmentRequested",
        "OrderConfirmed",
    ] {
        assert!(types.contains(&expected), "{types:?}");
    }
    assert!(
        !body.to_string().contains("tok_ok"),
        "the payment token never leaves the write side"
    );
}
