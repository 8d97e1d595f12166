//! What the benchmarks send: a real `OrderPlaced` envelope (so raw baselines
//! move records of a real event's size), order request bodies, a document of
//! an order document's size, and development tokens.

use std::time::Duration;

use chrono::Utc;
use events::command::{Principal, Role};
use events::domain::{Address, Currency, CustomerId, OrderEvent, OrderLine, Sku};
use events::{AggregateType, Envelope, EventMeta, new_id};
use serde_json::json;
use uuid::Uuid;

/// SKUs the benchmark catalog holds; orders spread over them so no single
/// catalog aggregate serializes the run.
pub const SKUS: usize = 64;

/// Distinct customers placing orders.
pub const CUSTOMERS: usize = 256;

pub fn sku(i: usize) -> String {
    format!("BENCH-{:03}", i % SKUS)
}

pub fn customer(i: usize) -> String {
    format!("bench-c{:04}", i % CUSTOMERS)
}

/// An `OrderPlaced` with two lines, as the command processor writes it.
pub fn order_placed() -> Envelope<OrderEvent> {
    let order_id = new_id();
    let line = |i: usize, quantity| OrderLine {
        sku: Sku::new(sku(i)).expect("a valid sku"),
        quantity,
    };
    let payload = OrderEvent::OrderPlaced {
        customer_id: CustomerId::new(customer(7)).expect("a valid customer id"),
        currency: Currency::new("USD").expect("a known currency"),
        lines: vec![line(3, 2), line(11, 1)],
        shipping_address: Address {
            name: "Alice Example".into(),
            line1: "1 Main Street".into(),
            city: "Springfield".into(),
            postal_code: "12345".into(),
            country: "US".into(),
        },
        payment_token: "tok_ok".into(),
    };
    let meta = EventMeta {
        event_id: new_id(),
        event_type: payload.event_type().to_owned(),
        schema_version: OrderEvent::SCHEMA_VERSION,
        aggregate_type: AggregateType::Order,
        aggregate_id: order_id.to_string(),
        sequence: 1,
        occurred_at: Utc::now(),
        command_id: new_id(),
        correlation_id: order_id,
        causation_id: new_id(),
        traceparent: Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into()),
    };
    Envelope { meta, payload }
}

/// The body of `POST /orders` number `i`.
pub fn order_request(i: u64) -> Vec<u8> {
    let i = i as usize;
    serde_json::to_vec(&json!({
        "currency": "USD",
        "lines": [
            {"sku": sku(i), "quantity": 1},
            {"sku": sku(i + 17), "quantity": 2},
        ],
        "shipping_address": {
            "name": "Alice Example", "line1": "1 Main Street", "city": "Springfield",
            "postal_code": "12345", "country": "US"
        },
        "payment": {"token": "tok_ok"}
    }))
    .expect("serializable")
}

/// A JSON document shaped and sized like the query API's order document.
pub fn order_document() -> Vec<u8> {
    let id = Uuid::new_v4();
    let price = |minor: i64| json!({"minor": minor, "currency": "USD"});
    serde_json::to_vec(&json!({
        "order_id": id, "customer_id": customer(7), "status": "pending",
        "status_reason": null, "cancellation_reason": null, "currency": "USD",
        "lines": [
            {"sku": sku(3), "quantity": 2, "unit_price": price(1250), "line_total": price(2500)},
            {"sku": sku(11), "quantity": 1, "unit_price": price(1999), "line_total": price(1999)},
        ],
        "total": price(4499), "payment_status": null, "shipment_status": null,
        "timeline": [{"source": "orders", "sequence": 1, "event_type": "OrderPlaced",
                      "occurred_at": Utc::now(), "detail": {"lines": 2}}],
        "version": 1, "placed_at": Utc::now(), "updated_at": Utc::now()
    }))
    .expect("serializable")
}

/// Bearer tokens: one operator and [`CUSTOMERS`] customers.
pub struct Tokens {
    pub admin: String,
    pub customers: Vec<String>,
}

impl Tokens {
    pub fn mint(secret: &str) -> anyhow::Result<Tokens> {
        let mint = |subject: String, role| {
            events::auth::mint_hs256(
                secret.as_bytes(),
                &Principal { subject, role },
                Duration::from_secs(6 * 3600),
            )
        };
        Ok(Tokens {
            admin: mint("bench-ops".into(), Role::Admin)?,
            customers: (0..CUSTOMERS)
                .map(|i| mint(customer(i), Role::Customer))
                .collect::<Result<_, _>>()?,
        })
    }

    pub fn customer(&self, i: usize) -> &str {
        &self.customers[i % CUSTOMERS]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_envelope_round_trips_through_json() {
        let envelope = order_placed();
        let bytes = serde_json::to_vec(&envelope).unwrap();
        let back: Envelope<OrderEvent> = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(back, envelope);
    }

    #[test]
    fn an_order_document_is_about_a_kilobyte() {
        let size = order_document().len();
        assert!((500..2000).contains(&size), "{size}");
    }

    #[test]
    fn tokens_verify() {
        let secret = "a-bench-secret-of-thirty-two-byt";
        let tokens = Tokens::mint(secret).unwrap();
        let config = events::auth::AuthConfig::hs256(secret);
        let verifier = events::auth::JwtVerifier::new(&config).unwrap();
        assert_eq!(
            verifier.verify(tokens.customer(3)).unwrap().subject,
            customer(3)
        );
    }
}
