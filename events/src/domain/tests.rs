//! Wire-format tests: every message round-trips through JSON, the serde tag
//! agrees with `event_type()`/`command_type()`, and names and codes are unique.

mod samples;

use std::collections::HashSet;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::*;
use samples::*;

/// Serializes, checks the tag, and deserializes back to an equal value.
fn assert_round_trip<T>(value: &T, tag: &str)
where
    T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let json = serde_json::to_value(value).unwrap();
    assert_eq!(json["type"], Value::from(tag), "tag of {value:?}");
    let back: T = serde_json::from_value(json).unwrap();
    assert_eq!(&back, value);
}

/// True when every index below `count` was produced by `index_of`.
fn covers_all<T>(values: &[T], count: usize, index_of: fn(&T) -> usize) -> bool {
    let seen: HashSet<usize> = values.iter().map(index_of).collect();
    (0..count).all(|i| seen.contains(&i))
}

#[test]
fn every_catalog_event_round_trips_with_its_type_tag() {
    let events = catalog_events();
    assert!(covers_all(&events, 7, catalog_event_index));
    for event in &events {
        assert_round_trip(event, event.event_type());
    }
}

#[test]
fn every_order_event_round_trips_with_its_type_tag() {
    let events = order_events();
    assert!(covers_all(&events, 8, order_event_index));
    for event in &events {
        assert_round_trip(event, event.event_type());
    }
}

#[test]
fn every_payment_event_round_trips_with_its_type_tag() {
    let events = payment_events();
    assert!(covers_all(&events, 10, payment_event_index));
    for event in &events {
        assert_round_trip(event, event.event_type());
    }
}

#[test]
fn every_shipment_event_round_trips_with_its_type_tag() {
    let events = shipment_events();
    assert!(covers_all(&events, 7, shipment_event_index));
    for event in &events {
        assert_round_trip(event, event.event_type());
    }
}

#[test]
fn commands_round_trip_with_their_type_tag() {
    for command in catalog_commands() {
        assert_round_trip(&command, command.command_type());
    }
    for command in order_commands() {
        assert_round_trip(&command, command.command_type());
    }
    for command in payment_commands() {
        assert_round_trip(&command, command.command_type());
    }
    for command in shipment_commands() {
        assert_round_trip(&command, command.command_type());
    }
}

#[test]
fn event_type_names_are_unique_across_aggregates() {
    let names: Vec<&str> = catalog_events()
        .iter()
        .map(CatalogEvent::event_type)
        .chain(order_events().iter().map(OrderEvent::event_type))
        .chain(payment_events().iter().map(PaymentEvent::event_type))
        .chain(shipment_events().iter().map(ShipmentEvent::event_type))
        .collect();
    let unique: HashSet<&str> = names.iter().copied().collect();
    assert_eq!(unique.len(), 7 + 8 + 10 + 7);
}

#[test]
fn schema_versions_start_at_one() {
    assert_eq!(CatalogEvent::SCHEMA_VERSION, 1);
    assert_eq!(OrderEvent::SCHEMA_VERSION, 1);
    assert_eq!(PaymentEvent::SCHEMA_VERSION, 1);
    assert_eq!(ShipmentEvent::SCHEMA_VERSION, 1);
}

#[test]
fn order_placed_has_the_documented_json_shape() {
    let event = order_events().remove(0);
    let expected = json!({
        "type": "OrderPlaced",
        "customer_id": "customer-1",
        "currency": "USD",
        "lines": [{"sku": "SKU-1", "quantity": 2}, {"sku": "SKU-2", "quantity": 1}],
        "shipping_address": {
            "name": "Ada Lovelace",
            "line1": "1 Main Street",
            "city": "Springfield",
            "postal_code": "12345",
            "country": "US"
        },
        "payment_token": "tok_ok"
    });
    assert_eq!(serde_json::to_value(event).unwrap(), expected);
}

#[test]
fn stock_reserved_carries_the_unit_price_as_money() {
    let json = json!({
        "type": "StockReserved",
        "order_id": order_id().to_string(),
        "quantity": 3,
        "unit_price": {"minor": 1999, "currency": "USD"}
    });
    let event: CatalogEvent = serde_json::from_value(json).unwrap();
    assert_eq!(
        event,
        CatalogEvent::StockReserved {
            order_id: order_id(),
            quantity: 3,
            unit_price: usd(1999),
        }
    );
}

#[test]
fn unknown_types_and_invalid_values_are_refused_on_the_way_in() {
    let unknown = json!({"type": "ItemVanished"});
    assert!(serde_json::from_value::<CatalogEvent>(unknown).is_err());
    let bad_sku = json!({"type": "OrderPriced", "total": {"minor": 1, "currency": "USD"},
        "lines": [{"sku": "no spaces", "quantity": 1, "unit_price": {"minor": 1, "currency": "USD"}}]});
    assert!(serde_json::from_value::<OrderEvent>(bad_sku).is_err());
    let bad_currency =
        json!({"type": "PaymentCaptured", "amount": {"minor": 1, "currency": "usd"}});
    assert!(serde_json::from_value::<PaymentEvent>(bad_currency).is_err());
}

/// Codes must be unique within an enum, snake_case, and messages lowercase.
fn assert_rejections_well_formed<R>(rejections: &[R], code: fn(&R) -> &'static str)
where
    R: std::error::Error + Serialize + DeserializeOwned + PartialEq,
{
    let codes: HashSet<&str> = rejections.iter().map(code).collect();
    assert_eq!(codes.len(), rejections.len(), "duplicate or missing sample");
    for rejection in rejections {
        let c = code(rejection);
        assert!(
            c.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
            "{c}"
        );
        let message = rejection.to_string();
        assert!(!message.starts_with(char::is_uppercase), "{message}");
        assert!(!message.ends_with('.'), "{message}");
        let back: R = serde_json::from_value(serde_json::to_value(rejection).unwrap()).unwrap();
        assert!(&back == rejection, "{message}");
    }
}

#[test]
fn rejections_have_unique_codes_lowercase_messages_and_round_trip() {
    assert_rejections_well_formed(&catalog_rejections(), CatalogRejection::code);
    assert_rejections_well_formed(&order_rejections(), OrderRejection::code);
    assert_rejections_well_formed(&payment_rejections(), PaymentRejection::code);
    assert_rejections_well_formed(&shipment_rejections(), ShipmentRejection::code);
}

#[test]
fn not_found_is_neither_a_conflict_nor_an_invalid_request() {
    assert!(CatalogRejection::NotFound.is_not_found());
    assert!(!CatalogRejection::NotFound.is_conflict());
    assert!(!OrderRejection::NotFound.is_conflict());
    assert!(!PaymentRejection::NotFound.is_conflict());
    assert!(!ShipmentRejection::NotFound.is_conflict());
    assert!(CatalogRejection::AlreadyExists.is_conflict());
    assert!(!CatalogRejection::AlreadyExists.is_not_found());
}

#[test]
fn rejection_messages_name_the_thing_involved() {
    let rejection = OrderRejection::InvalidQuantity {
        sku: sku("SKU-9"),
        quantity: 0,
    };
    assert_eq!(
        rejection.to_string(),
        "invalid quantity 0 for sku SKU-9: expected 1 to 10000"
    );
    let refund = PaymentRejection::RefundExceedsCaptured {
        requested: usd(2000),
        captured: usd(1999),
    };
    assert_eq!(
        refund.to_string(),
        "refund of 20.00 USD exceeds the captured 19.99 USD"
    );
}

#[test]
fn optional_fields_may_be_left_out_of_a_command() {
    let full_refund = json!({"type": "RequestRefund"});
    assert_eq!(
        serde_json::from_value::<PaymentCommand>(full_refund).unwrap(),
        PaymentCommand::RequestRefund { amount: None }
    );
    let confirm = json!({"type": "ConfirmOrder"});
    assert_eq!(
        serde_json::from_value::<OrderCommand>(confirm).unwrap(),
        OrderCommand::ConfirmOrder
    );
}
