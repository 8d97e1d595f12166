//! Property: whatever sequence of stock commands arrives, available stock never
//! goes below zero and `reserved` equals the sum of the live reservations.

use events::domain::catalog::{CatalogCommand as C, CatalogEvent as E};
use events::domain::ids::OrderId;
use events::domain::money::{Currency, Money};
use proptest::prelude::*;
use uuid::Uuid;

use super::CatalogItem;
use crate::aggregate::Aggregate;

fn order(n: u8) -> OrderId {
    OrderId::from_uuid(Uuid::from_u128(u128::from(n)))
}

fn command() -> impl Strategy<Value = C> {
    let order_id = (0u8..6).prop_map(order);
    prop_oneof![
        (order_id.clone(), 0u32..12)
            .prop_map(|(order_id, quantity)| C::ReserveStock { order_id, quantity }),
        order_id
            .clone()
            .prop_map(|order_id| C::ReleaseStock { order_id }),
        order_id.prop_map(|order_id| C::CommitStock { order_id }),
        (0u32..8).prop_map(|quantity| C::Restock { quantity }),
        (1i64..5000).prop_map(|minor| C::ChangePrice {
            unit_price: Money::new(minor, Currency::new("USD").unwrap())
        }),
    ]
}

fn check_invariants(item: &CatalogItem) -> Result<(), TestCaseError> {
    let sum: u32 = item.reservations().map(|(_, qty)| qty).sum();
    prop_assert_eq!(item.reserved(), sum);
    prop_assert!(item.reserved() <= item.on_hand(), "{:?}", item);
    prop_assert_eq!(item.available(), item.on_hand() - item.reserved());
    Ok(())
}

proptest! {
    #[test]
    fn stock_never_goes_below_zero(
        initial_stock in 0u32..20,
        commands in prop::collection::vec(command(), 0..60),
    ) {
        let created = E::ItemCreated {
            name: "Widget".into(),
            unit_price: Money::new(100, Currency::new("USD").unwrap()),
            initial_stock,
        };
        let mut item = CatalogItem::replay(&[created]);
        let mut consumed = 0u32;
        let mut restocked = 0u32;
        for command in &commands {
            if let Ok((next, events)) = item.clone().handle(command) {
                for event in &events {
                    match event {
                        E::StockCommitted { quantity, .. } => consumed += quantity,
                        E::Restocked { quantity } => restocked += quantity,
                        _ => {}
                    }
                }
                item = next;
            }
            check_invariants(&item)?;
        }
        // Stock is conserved: what is on hand is what came in minus what left.
        prop_assert_eq!(item.on_hand(), initial_stock + restocked - consumed);
    }
}
