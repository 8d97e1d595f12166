use super::*;
use crate::views::testing::at;
use sqlx::types::Json;

fn entry(order_id: Uuid, source: &str, sequence: i64, seconds: u64) -> TimelineEntry {
    TimelineEntry {
        order_id,
        source: source.into(),
        sequence,
        event_type: format!("{source}-{sequence}"),
        occurred_at: at(seconds),
        detail: (&serde_json::json!({})).into(),
    }
}

pub(crate) fn order(order_id: Uuid, version: i64) -> OrderRow {
    OrderRow {
        order_id,
        customer_id: "c".into(),
        status: "pending".into(),
        status_reason: None,
        cancellation_reason: None,
        currency: "USD".into(),
        lines: Json(Vec::new()),
        total_minor: None,
        version,
        placed_at: at(0),
        updated_at: at(0),
    }
}

fn payment(order_id: Uuid, version: i64) -> PaymentRow {
    PaymentRow {
        order_id,
        status: "authorized".into(),
        authorization_state: "authorized".into(),
        capture_state: "not_requested".into(),
        void_state: "not_requested".into(),
        refund_state: "not_requested".into(),
        amount_minor: 1,
        currency: "USD".into(),
        version,
        updated_at: at(0),
    }
}

#[test]
fn orders_with_a_payment_or_shipment_row_but_no_order_row_are_unplaced() {
    let (placed, paid, shipped) = (Uuid::from_u128(1), Uuid::from_u128(2), Uuid::from_u128(3));
    let shipments = HashMap::from([(
        shipped,
        ShipmentRow {
            order_id: shipped,
            status: "released".into(),
            tracking_ref: None,
            version: 3,
            updated_at: at(0),
        },
    )]);
    let unplaced = unplaced(
        &HashMap::from([(placed, order(placed, 1))]),
        &HashMap::from([(placed, payment(placed, 2)), (paid, payment(paid, 4))]),
        &shipments,
    );
    assert_eq!(
        unplaced,
        [
            Unplaced {
                order_id: paid,
                payment_version: 4,
                shipment_version: 0
            },
            Unplaced {
                order_id: shipped,
                payment_version: 0,
                shipment_version: 3
            },
        ]
    );
}

#[test]
fn a_document_shows_each_streams_entries_up_to_its_rows_version_oldest_first() {
    let id = Uuid::from_u128(1);
    let timeline = vec![
        entry(id, "payments", 3, 5),
        entry(id, "orders", 2, 4),
        entry(id, "payments", 1, 2),
        entry(id, "orders", 1, 1),
        entry(id, "payments", 2, 3),
        entry(id, "shipments", 1, 6),
    ];
    let documents = assemble(
        HashMap::from([(id, order(id, 2))]),
        HashMap::from([(id, payment(id, 2))]),
        HashMap::new(),
        HashMap::from([(id, timeline)]),
    );
    let shown: Vec<&str> = documents[0]
        .timeline
        .iter()
        .map(|e| e.event_type.as_str())
        .collect();
    assert_eq!(shown, ["orders-1", "payments-1", "payments-2", "orders-2"]);
    assert_eq!(
        documents[0].versions().map(|(_, v)| v),
        [2, 2, 0],
        "order, payment and shipment versions"
    );
}
