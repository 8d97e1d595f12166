//! The traffic the crash and replay tests fold: catalog items, and orders
//! placed, reserved, priced, confirmed and cancelled as the saga would drive
//! them, produced on the bus without waiting for their outcomes (the
//! projector is what is under test).

use std::time::Duration;

use command::bus::{CommandBus, KafkaBus};
use events::command::{DomainCommand, Principal, Role};
use events::domain::{CatalogCommand, OrderCommand, OrderId, PricedLine, Sku};

use crate::auth::{operator, system, who};
use crate::processor::{place_order, usd};

/// Produces `command` for aggregate `id` as `by` without waiting for its
/// outcome.
pub async fn fire(bus: &KafkaBus, id: &str, by: Principal, command: DomainCommand) {
    let envelope = crate::envelope(id, by, command);
    bus.dispatch(envelope, Duration::ZERO).await.unwrap();
}

/// Creates each SKU at 1.00 with stock enough for any test.
pub async fn create_items(bus: &KafkaBus, skus: &[String]) {
    for sku in skus {
        let create = CatalogCommand::CreateItem {
            name: "Mug".into(),
            unit_price: usd(100),
            initial_stock: 1_000_000,
        };
        fire(bus, sku, operator(), DomainCommand::CatalogItem(create)).await;
    }
}

/// The commands of the `n`th order: `customer`'s `quantity` of `sku`
/// placed, its stock reserved, priced at 1.00 a unit; confirmed when `n` is
/// even and then cancelled when it is a multiple of ten.
pub async fn one_order(
    bus: &KafkaBus,
    n: usize,
    customer: &str,
    sku: &str,
    quantity: u32,
) -> OrderId {
    let order_id = OrderId::from(uuid::Uuid::now_v7());
    let id = order_id.to_string();
    let place = place_order(customer, &[(sku, quantity)]);
    let by = who(Role::Customer, customer);
    fire(bus, &id, by, DomainCommand::Order(place)).await;
    let reserve = CatalogCommand::ReserveStock { order_id, quantity };
    fire(bus, sku, operator(), DomainCommand::CatalogItem(reserve)).await;
    let price = OrderCommand::PriceOrder {
        lines: vec![PricedLine {
            sku: Sku::new(sku).unwrap(),
            quantity,
            unit_price: usd(100),
        }],
        total: usd(100 * i64::from(quantity)),
    };
    fire(bus, &id, system(), DomainCommand::Order(price)).await;
    if n.is_multiple_of(2) {
        let confirm = DomainCommand::Order(OrderCommand::ConfirmOrder);
        fire(bus, &id, system(), confirm).await;
    }
    if n.is_multiple_of(10) {
        let cancel = OrderCommand::CancelOrder {
            reason: "refunded".into(),
        };
        fire(bus, &id, system(), DomainCommand::Order(cancel)).await;
    }
    order_id
}
