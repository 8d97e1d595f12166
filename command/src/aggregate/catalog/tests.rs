//! Given/when/then tests of the CatalogItem aggregate.

use events::domain::catalog::{
    CatalogCommand as C, CatalogEvent as E, CatalogRejection as R, ReservationRejectedReason,
};
use events::domain::ids::OrderId;
use events::domain::money::{Currency, Money};
use uuid::Uuid;

use super::CatalogItem;
use crate::aggregate::Aggregate;
use crate::aggregate::testing::{given, given_nothing};

pub(super) fn usd(minor: i64) -> Money {
    Money::new(minor, Currency::new("USD").unwrap())
}

pub(super) fn order(n: u128) -> OrderId {
    OrderId::from_uuid(Uuid::from_u128(n))
}

pub(super) fn created(stock: u32) -> E {
    E::ItemCreated {
        name: "Widget".into(),
        unit_price: usd(1999),
        initial_stock: stock,
    }
}

fn reserved(n: u128, quantity: u32) -> E {
    E::StockReserved {
        order_id: order(n),
        quantity,
        unit_price: usd(1999),
    }
}

fn reserve(n: u128, quantity: u32) -> C {
    C::ReserveStock {
        order_id: order(n),
        quantity,
    }
}

fn create(name: &str, unit_price: Money) -> C {
    C::CreateItem {
        name: name.into(),
        unit_price,
        initial_stock: 10,
    }
}

#[test]
fn create_item_records_name_price_and_stock() {
    given_nothing::<CatalogItem>()
        .when(create("Widget", usd(1999)))
        .then_events([created(10)])
        .then_state(|item| {
            assert!(item.exists());
            assert_eq!(item.name(), Some("Widget"));
            assert_eq!(item.unit_price(), Some(usd(1999)));
            assert_eq!(
                (item.on_hand(), item.reserved(), item.available()),
                (10, 0, 10)
            );
        });
}

#[test]
fn create_item_with_no_stock_is_allowed() {
    let command = C::CreateItem {
        name: "Widget".into(),
        unit_price: usd(1999),
        initial_stock: 0,
    };
    given_nothing::<CatalogItem>()
        .when(command)
        .then_events([created(0)]);
}

#[test]
fn create_item_twice_is_a_conflict() {
    given([created(10)])
        .when(create("Widget", usd(1999)))
        .then_rejects(R::AlreadyExists);
}

#[test]
fn create_item_validates_name_and_price() {
    for name in ["", "   ", &"n".repeat(201)] {
        given_nothing::<CatalogItem>()
            .when(create(name, usd(1999)))
            .then_rejects(R::InvalidName);
    }
    for minor in [0, -1] {
        given_nothing::<CatalogItem>()
            .when(create("Widget", usd(minor)))
            .then_rejects(R::InvalidPrice {
                unit_price: usd(minor),
            });
    }
}

#[test]
fn commands_on_a_missing_item_are_not_found() {
    let commands = [
        C::Restock { quantity: 1 },
        C::ChangePrice { unit_price: usd(1) },
        C::CommitStock { order_id: order(1) },
    ];
    for command in commands {
        given_nothing::<CatalogItem>()
            .when(command)
            .then_rejects(R::NotFound);
    }
}

#[test]
fn restock_adds_to_on_hand() {
    given([created(10), reserved(1, 4)])
        .when(C::Restock { quantity: 5 })
        .then_events([E::Restocked { quantity: 5 }])
        .then_state(|item| {
            assert_eq!(
                (item.on_hand(), item.reserved(), item.available()),
                (15, 4, 11)
            );
        });
}

#[test]
fn restock_rejects_zero_and_overflow() {
    given([created(10)])
        .when(C::Restock { quantity: 0 })
        .then_rejects(R::InvalidQuantity { quantity: 0 });
    given([created(u32::MAX - 1)])
        .when(C::Restock { quantity: 2 })
        .then_rejects(R::StockOverflow { quantity: 2 });
}

#[test]
fn change_price_records_the_new_price() {
    given([created(10)])
        .when(C::ChangePrice {
            unit_price: usd(2499),
        })
        .then_events([E::PriceChanged {
            unit_price: usd(2499),
        }])
        .then_repeat_is_noop()
        .then_state(|item| assert_eq!(item.unit_price(), Some(usd(2499))));
}

#[test]
fn change_price_to_the_same_price_is_already_applied() {
    given([created(10)])
        .when(C::ChangePrice {
            unit_price: usd(1999),
        })
        .then_no_events();
}

#[test]
fn change_price_cannot_change_currency_or_go_non_positive() {
    let eur = Money::new(1999, Currency::new("EUR").unwrap());
    given([created(10)])
        .when(C::ChangePrice { unit_price: eur })
        .then_rejects(R::CurrencyMismatch {
            expected: Currency::new("USD").unwrap(),
            actual: eur.currency,
        });
    given([created(10)])
        .when(C::ChangePrice { unit_price: usd(0) })
        .then_rejects(R::InvalidPrice { unit_price: usd(0) });
}

#[test]
fn reserve_stock_fixes_the_current_unit_price() {
    let repriced = E::PriceChanged {
        unit_price: usd(2499),
    };
    given([created(10), repriced])
        .when(reserve(1, 3))
        .then_events([E::StockReserved {
            order_id: order(1),
            quantity: 3,
            unit_price: usd(2499),
        }])
        .then_repeat_is_noop()
        .then_state(|item| {
            assert_eq!(
                (item.on_hand(), item.reserved(), item.available()),
                (10, 3, 7)
            );
            assert_eq!(item.reservation(&order(1)), Some(3));
        });
}

#[test]
fn reserve_stock_can_take_exactly_what_is_available() {
    given([created(10), reserved(1, 4)])
        .when(reserve(2, 6))
        .then_events([reserved(2, 6)])
        .then_state(|item| assert_eq!(item.available(), 0));
}

#[test]
fn reserve_stock_beyond_available_is_recorded_as_rejected() {
    given([created(10), reserved(1, 4)])
        .when(reserve(2, 7))
        .then_events([E::StockReservationRejected {
            order_id: order(2),
            quantity: 7,
            available: 6,
            reason: ReservationRejectedReason::InsufficientStock,
        }])
        .then_state(|item| {
            assert_eq!((item.reserved(), item.available()), (4, 6));
            assert_eq!(item.reservation(&order(2)), None);
        });
}

#[test]
fn reserve_stock_of_an_unknown_sku_is_recorded_as_rejected() {
    given_nothing::<CatalogItem>()
        .when(reserve(1, 2))
        .then_events([E::StockReservationRejected {
            order_id: order(1),
            quantity: 2,
            available: 0,
            reason: ReservationRejectedReason::UnknownSku,
        }])
        .then_state(|item| assert!(!item.exists()));
}

#[test]
fn an_item_can_be_created_after_a_rejected_reservation_for_its_sku() {
    let rejected = E::StockReservationRejected {
        order_id: order(1),
        quantity: 2,
        available: 0,
        reason: ReservationRejectedReason::UnknownSku,
    };
    given([rejected])
        .when(create("Widget", usd(1999)))
        .then_events([created(10)]);
}

#[test]
fn reserve_stock_is_idempotent_per_order() {
    given([created(10), reserved(1, 3)])
        .when(reserve(1, 3))
        .then_no_events();
    given([created(10), reserved(1, 3)])
        .when(reserve(1, 5))
        .then_no_events();
    let committed = E::StockCommitted {
        order_id: order(1),
        quantity: 3,
    };
    given([created(10), reserved(1, 3), committed])
        .when(reserve(1, 3))
        .then_no_events();
}

#[test]
fn reserve_stock_again_after_a_release_reserves_again() {
    let released = E::StockReleased {
        order_id: order(1),
        quantity: 3,
    };
    given([created(10), reserved(1, 3), released])
        .when(reserve(1, 3))
        .then_events([reserved(1, 3)]);
}

#[test]
fn reserve_stock_rejects_a_zero_quantity() {
    given([created(10)])
        .when(reserve(1, 0))
        .then_rejects(R::InvalidQuantity { quantity: 0 });
}

#[test]
fn a_thousand_orders_for_a_hundred_units_reserve_exactly_a_hundred() {
    let mut item = CatalogItem::replay(&[created(100)]);
    let mut granted = 0;
    for n in 0..1000 {
        let (next, events) = item.handle(&reserve(n, 1)).unwrap();
        granted += events
            .iter()
            .filter(|e| matches!(e, E::StockReserved { .. }))
            .count();
        item = next;
    }
    assert_eq!(granted, 100);
    assert_eq!(
        (item.on_hand(), item.reserved(), item.available()),
        (100, 100, 0)
    );
    assert_eq!(item.reservations().count(), 100);
}

#[test]
fn release_stock_returns_the_reserved_units() {
    given([created(10), reserved(1, 3)])
        .when(C::ReleaseStock { order_id: order(1) })
        .then_events([E::StockReleased {
            order_id: order(1),
            quantity: 3,
        }])
        .then_repeat_is_noop()
        .then_state(|item| {
            assert_eq!(
                (item.on_hand(), item.reserved(), item.available()),
                (10, 0, 10)
            );
            assert_eq!(item.reservation(&order(1)), None);
        });
}

#[test]
fn release_stock_without_a_reservation_is_already_applied() {
    given([created(10), reserved(2, 3)])
        .when(C::ReleaseStock { order_id: order(1) })
        .then_no_events();
    given_nothing::<CatalogItem>()
        .when(C::ReleaseStock { order_id: order(1) })
        .then_no_events();
    let committed = E::StockCommitted {
        order_id: order(1),
        quantity: 3,
    };
    given([created(10), reserved(1, 3), committed])
        .when(C::ReleaseStock { order_id: order(1) })
        .then_no_events();
}

#[test]
fn commit_stock_consumes_the_reservation() {
    given([created(10), reserved(1, 3), reserved(2, 2)])
        .when(C::CommitStock { order_id: order(1) })
        .then_events([E::StockCommitted {
            order_id: order(1),
            quantity: 3,
        }])
        .then_repeat_is_noop()
        .then_state(|item| {
            assert_eq!(
                (item.on_hand(), item.reserved(), item.available()),
                (7, 2, 5)
            );
            assert!(item.is_committed(&order(1)));
            assert_eq!(item.reservation(&order(1)), None);
        });
}

#[test]
fn commit_stock_without_a_reservation_is_a_conflict() {
    given([created(10)])
        .when(C::CommitStock { order_id: order(1) })
        .then_rejects(R::NoReservation { order_id: order(1) });
    let released = E::StockReleased {
        order_id: order(1),
        quantity: 3,
    };
    given([created(10), reserved(1, 3), released])
        .when(C::CommitStock { order_id: order(1) })
        .then_rejects(R::NoReservation { order_id: order(1) });
}

#[test]
fn a_price_change_does_not_touch_existing_reservations() {
    let repriced = E::PriceChanged {
        unit_price: usd(5000),
    };
    given([created(10), reserved(1, 3), repriced])
        .when(C::CommitStock { order_id: order(1) })
        .then_events([E::StockCommitted {
            order_id: order(1),
            quantity: 3,
        }]);
}

#[test]
fn replay_and_handle_agree_with_decide_then_evolve() {
    let history = [created(10), reserved(1, 3)];
    let item = CatalogItem::replay(&history);
    let (next, events) = item.clone().handle(&reserve(2, 2)).unwrap();
    let expected = CatalogItem::replay(&[created(10), reserved(1, 3), reserved(2, 2)]);
    assert_eq!(events, vec![reserved(2, 2)]);
    assert_eq!(next, expected);
}
