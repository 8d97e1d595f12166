//! An order's document read back from PostgreSQL (the query API's cache
//! miss, the refresher's reload) equals the one the projector builds from
//! the rows it has just folded, and an order with only a payment or
//! shipment row comes back as unplaced, with its versions; and a live
//! batch that takes its orders' timelines from memory builds the same
//! documents as one that reads them back.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use events::AggregateType;
use events::domain::{Currency, CustomerId, OrderEvent, OrderLine, PaymentEvent, ShipmentEvent};
use projections::Mode;
use projections::documents::{self, Unplaced};
use projections::views::order_set::{self, OrderSetEvent};
use projections::views::recent_timelines::RecentTimelines;
use projections::views::{order_payments, order_shipments, order_timeline, orders};
use tests::TestEnv;
use tests::processor::{address, usd};
use tests::records::meta;
use uuid::Uuid;

/// Whole microseconds, as PostgreSQL keeps them, `sequence` seconds apart.
fn at(sequence: u64) -> DateTime<Utc> {
    DateTime::<Utc>::from_timestamp_micros(1_800_000_001_234_567).unwrap()
        + chrono::Duration::seconds(sequence as i64)
}

fn order_placed(customer: &str) -> OrderEvent {
    OrderEvent::OrderPlaced {
        customer_id: CustomerId::new(customer).unwrap(),
        currency: Currency::new("USD").unwrap(),
        lines: vec![OrderLine {
            sku: "SKU-D".parse().unwrap(),
            quantity: 2,
        }],
        shipping_address: address(),
        payment_token: "tok_ok".into(),
    }
}

fn authorization_requested() -> PaymentEvent {
    PaymentEvent::PaymentAuthorizationRequested {
        amount: usd(700),
        token: "tok_ok".into(),
    }
}

#[tokio::test]
async fn an_order_read_back_equals_the_document_the_fold_builds() {
    let env = TestEnv::new();
    let pool = projections::db::connect_and_migrate(&env.views_db_url)
        .await
        .unwrap();
    let (placed, paid_only, missing) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());

    let order = order_placed("cust-doc");
    let requested = authorization_requested();
    let authorized = PaymentEvent::PaymentAuthorized {
        provider_ref: "p-1".into(),
        amount: usd(700),
    };
    let shipment = ShipmentEvent::ShipmentRequested { address: address() };

    let m = meta(&order, AggregateType::Order, &placed.to_string(), 1, at(1));
    let row = orders::evolve(None, &m, &order).unwrap();
    let mut timeline = vec![order_timeline::entry(placed, &m, &order)];
    let mut payments = HashMap::new();
    for (id, sequence, event) in [(placed, 1, &requested), (placed, 2, &authorized)]
        .into_iter()
        .chain([(paid_only, 1, &requested)])
    {
        let m = meta(
            event,
            AggregateType::Payment,
            &id.to_string(),
            sequence,
            at(sequence),
        );
        let folded = order_payments::evolve(payments.remove(&id), &m, event).unwrap();
        payments.insert(id, folded);
        timeline.push(order_timeline::entry(id, &m, event));
    }
    let m = meta(
        &shipment,
        AggregateType::Shipment,
        &placed.to_string(),
        1,
        at(1),
    );
    let shipped = order_shipments::evolve(None, &m, &shipment).unwrap();
    timeline.push(order_timeline::entry(placed, &m, &shipment));

    let mut tx = pool.begin().await.unwrap();
    orders::store(&mut tx, vec![&row]).await.unwrap();
    order_payments::store(&mut tx, payments.values().collect())
        .await
        .unwrap();
    order_shipments::store(&mut tx, vec![&shipped])
        .await
        .unwrap();
    order_timeline::store(&mut tx, &timeline).await.unwrap();
    tx.commit().await.unwrap();

    let built = documents::assemble(
        HashMap::from([(placed, row)]),
        payments,
        HashMap::from([(placed, shipped)]),
        documents::timelines(timeline),
    );
    let read = documents::order_entries(&pool, &[placed, paid_only, missing])
        .await
        .unwrap();
    assert_eq!(read.documents, built);
    assert_eq!(read.documents[0].timeline.len(), 4);
    assert_eq!(
        serde_json::to_value(&read.documents).unwrap(),
        serde_json::to_value(&built).unwrap(),
        "served the same"
    );
    assert_eq!(
        read.unplaced,
        vec![Unplaced {
            order_id: paid_only,
            payment_version: 1,
            shipment_version: 0,
        }]
    );
    assert!(
        documents::orders(&pool, &[missing])
            .await
            .unwrap()
            .is_empty()
    );
}

/// Applies `events` as the live projector does, with `recent` or without.
async fn live_batch(
    pool: &sqlx::PgPool,
    events: &[OrderSetEvent],
    recent: Option<&RecentTimelines>,
) -> Vec<documents::OrderDocument> {
    let mut tx = pool.begin().await.unwrap();
    let entries = order_set::apply_batch(&mut tx, events, Mode::Live, recent)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    entries.documents
}

#[tokio::test]
async fn a_batch_builds_with_remembered_timelines_what_it_would_read_back() {
    let env = TestEnv::new();
    let pool = projections::db::connect_and_migrate(&env.views_db_url)
        .await
        .unwrap();
    let recent = RecentTimelines::new(16);
    let id = Uuid::now_v7();
    let order = order_placed("cust-recent");
    let payment = |sequence: u64, event: PaymentEvent| {
        let m = meta(
            &event,
            AggregateType::Payment,
            &id.to_string(),
            sequence,
            at(sequence + 1),
        );
        OrderSetEvent::Payment(id, m, event)
    };
    let placed = meta(&order, AggregateType::Order, &id.to_string(), 1, at(1));
    live_batch(
        &pool,
        &[OrderSetEvent::Order(id, placed, order)],
        Some(&recent),
    )
    .await;
    // Another writer moves the payment stream: what was remembered is stale.
    live_batch(&pool, &[payment(1, authorization_requested())], None).await;
    let authorized = PaymentEvent::PaymentAuthorized {
        provider_ref: "p-r".into(),
        amount: usd(700),
    };
    let built = live_batch(&pool, &[payment(2, authorized)], Some(&recent)).await;
    assert_eq!(
        built[0].timeline.len(),
        3,
        "read back, not the stale memory"
    );
    assert_eq!(built, documents::orders(&pool, &[id]).await.unwrap());

    // Remembered at the rows' versions: the next batch reads no stored
    // entry back, which shows once they are gone from the table.
    sqlx::query("DELETE FROM order_timeline WHERE order_id = $1")
        .bind(id)
        .execute(&pool)
        .await
        .unwrap();
    let shipment = ShipmentEvent::ShipmentRequested { address: address() };
    let m = meta(
        &shipment,
        AggregateType::Shipment,
        &id.to_string(),
        1,
        at(5),
    );
    let built = live_batch(
        &pool,
        &[OrderSetEvent::Shipment(id, m, shipment)],
        Some(&recent),
    )
    .await;
    let kinds: Vec<&str> = built[0]
        .timeline
        .iter()
        .map(|e| e.event_type.as_str())
        .collect();
    assert_eq!(
        kinds,
        [
            "OrderPlaced",
            "PaymentAuthorizationRequested",
            "PaymentAuthorized",
            "ShipmentRequested"
        ]
    );
}
