//! Given/when/then tests of placing and pricing an order.

use events::domain::address::AddressField;
use events::domain::money::{Currency, Money};
use events::domain::order::{OrderCommand as C, OrderEvent as E, OrderRejection as R, OrderStatus};

use super::Order;
use super::fixtures::*;
use crate::aggregate::testing::{given, given_nothing};

#[test]
fn place_order_records_the_order_as_pending() {
    given_nothing::<Order>()
        .when(place())
        .then_events([placed()])
        .then_repeat_is_noop()
        .then_state(|order| {
            assert!(order.exists());
            assert_eq!(order.status(), Some(OrderStatus::Pending));
            assert_eq!(order.customer_id().map(|c| c.as_str()), Some("customer-1"));
            assert_eq!(order.currency(), Currency::new("USD").ok());
            assert_eq!(order.lines().len(), 2);
            assert_eq!(order.payment_token(), Some("tok_ok"));
            assert_eq!(order.shipping_address(), Some(&address()));
            assert!(!order.is_priced());
            assert_eq!(order.total(), None);
        });
}

#[test]
fn place_order_again_with_different_content_is_a_conflict() {
    given([placed()])
        .when(place_with(vec![line("SKU-1", 3)]))
        .then_rejects(R::AlreadyPlaced);
}

#[test]
fn place_order_needs_one_to_fifty_lines() {
    given_nothing::<Order>()
        .when(place_with(vec![]))
        .then_rejects(R::NoLines);
    let lines = |n: usize| (0..n).map(|i| line(&format!("SKU-{i}"), 1)).collect();
    given_nothing::<Order>()
        .when(place_with(lines(51)))
        .then_rejects(R::TooManyLines { count: 51 });
    given_nothing::<Order>()
        .when(place_with(lines(50)))
        .then_state(|order| assert_eq!(order.lines().len(), 50));
}

#[test]
fn place_order_bounds_each_quantity() {
    for quantity in [0, 10_001] {
        given_nothing::<Order>()
            .when(place_with(vec![line("SKU-1", 1), line("SKU-2", quantity)]))
            .then_rejects(R::InvalidQuantity {
                sku: sku("SKU-2"),
                quantity,
            });
    }
    given_nothing::<Order>()
        .when(place_with(vec![line("SKU-1", 10_000)]))
        .then_state(|order| assert!(order.exists()));
}

#[test]
fn place_order_refuses_a_duplicate_sku() {
    let lines = vec![line("SKU-1", 1), line("SKU-2", 1), line("SKU-1", 2)];
    given_nothing::<Order>()
        .when(place_with(lines))
        .then_rejects(R::DuplicateSku { sku: sku("SKU-1") });
}

#[test]
fn place_order_validates_the_shipping_address() {
    // Address validation itself is tested in the events crate; this checks
    // that PlaceOrder applies it and names the field.
    let mut without_name = address();
    without_name.name = " ".into();
    let mut without_country = address();
    without_country.country = "usa".into();
    let cases = [
        (AddressField::Name, without_name),
        (AddressField::Country, without_country),
    ];
    for (field, shipping_address) in cases {
        let command = Placement {
            shipping_address,
            ..Placement::default()
        };
        given_nothing::<Order>()
            .when(command.command())
            .then_rejects(R::InvalidAddress { field });
    }
}

#[test]
fn place_order_validates_the_payment_token() {
    for token in ["", " ", &"t".repeat(201)] {
        let command = Placement {
            payment_token: token.to_owned(),
            ..Placement::default()
        };
        given_nothing::<Order>()
            .when(command.command())
            .then_rejects(R::InvalidPaymentToken);
    }
}

#[test]
fn every_other_command_on_a_missing_order_is_not_found() {
    let commands = [
        price(priced_lines(), usd(4498)),
        C::ConfirmOrder,
        C::RejectOrder {
            reason: reason("r"),
        },
        C::RequestCancellation {
            reason: reason("r"),
        },
        C::CancelOrder {
            reason: reason("r"),
        },
        C::MarkShipped,
        C::MarkDelivered,
    ];
    for command in commands {
        given_nothing::<Order>()
            .when(command)
            .then_rejects(R::NotFound);
    }
}

#[test]
fn price_order_records_lines_in_placed_order_and_the_total() {
    let mut reversed = priced_lines();
    reversed.reverse();
    given([placed()])
        .when(price(reversed, usd(4498)))
        .then_events([priced()])
        .then_repeat_is_noop()
        .then_state(|order| {
            assert_eq!(order.total(), Some(usd(4498)));
            assert_eq!(order.priced_lines(), priced_lines().as_slice());
            assert_eq!(order.status(), Some(OrderStatus::Pending));
        });
}

#[test]
fn price_order_again_the_same_way_is_already_applied_otherwise_a_conflict() {
    given([placed(), priced()])
        .when(price(priced_lines(), usd(4498)))
        .then_no_events();
    let dearer = vec![
        priced_line("SKU-1", 2, usd(2000)),
        priced_line("SKU-2", 1, usd(500)),
    ];
    given([placed(), priced()])
        .when(price(dearer, usd(4500)))
        .then_rejects(R::AlreadyPriced);
}

#[test]
fn price_order_must_match_the_placed_lines() {
    let mismatches = [
        vec![priced_line("SKU-1", 2, usd(1999))],
        vec![
            priced_line("SKU-1", 3, usd(1999)),
            priced_line("SKU-2", 1, usd(500)),
        ],
        vec![
            priced_line("SKU-1", 2, usd(1999)),
            priced_line("SKU-3", 1, usd(500)),
        ],
        vec![
            priced_line("SKU-1", 2, usd(1999)),
            priced_line("SKU-1", 2, usd(1999)),
        ],
        [priced_lines(), vec![priced_line("SKU-3", 1, usd(1))]].concat(),
    ];
    for lines in mismatches {
        given([placed()])
            .when(price(lines, usd(4498)))
            .then_rejects(R::PricingMismatch);
    }
}

#[test]
fn price_order_refuses_prices_in_another_currency() {
    let eur = Currency::new("EUR").unwrap();
    let mismatch = R::CurrencyMismatch {
        expected: Currency::new("USD").unwrap(),
        actual: eur,
    };
    let lines = vec![
        priced_line("SKU-1", 2, Money::new(1999, eur)),
        priced_line("SKU-2", 1, usd(500)),
    ];
    given([placed()])
        .when(price(lines, usd(4498)))
        .then_rejects(mismatch.clone());
    given([placed()])
        .when(price(priced_lines(), Money::new(4498, eur)))
        .then_rejects(mismatch);
}

#[test]
fn price_order_refuses_a_non_positive_unit_price() {
    let lines = vec![
        priced_line("SKU-1", 2, usd(1999)),
        priced_line("SKU-2", 1, usd(0)),
    ];
    given([placed()])
        .when(price(lines, usd(3998)))
        .then_rejects(R::InvalidUnitPrice {
            sku: sku("SKU-2"),
            unit_price: usd(0),
        });
}

#[test]
fn price_order_total_must_be_the_sum_of_the_lines() {
    given([placed()])
        .when(price(priced_lines(), usd(4497)))
        .then_rejects(R::TotalMismatch {
            expected: usd(4498),
            actual: usd(4497),
        });
}

#[test]
fn price_order_refuses_a_total_that_overflows() {
    let line_overflows = vec![
        priced_line("SKU-1", 2, usd(i64::MAX)),
        priced_line("SKU-2", 1, usd(1)),
    ];
    let sum_overflows = vec![
        priced_line("SKU-1", 2, usd(i64::MAX / 2)),
        priced_line("SKU-2", 1, usd(i64::MAX / 2)),
    ];
    for lines in [line_overflows, sum_overflows] {
        given([placed()])
            .when(price(lines, usd(1)))
            .then_rejects(R::TotalOverflow);
    }
}

#[test]
fn price_order_on_a_rejected_unpriced_order_is_a_conflict() {
    expect(
        Stage::Rejected,
        price(priced_lines(), usd(4498)),
        Err(R::NotPending {
            status: OrderStatus::Rejected,
        }),
    );
}

#[test]
fn price_order_after_confirmation_is_already_applied_when_identical() {
    for stage in [
        Stage::Confirmed,
        Stage::Shipped,
        Stage::Delivered,
        Stage::Cancelled,
    ] {
        expect(stage, price(priced_lines(), usd(4498)), Ok(vec![]));
    }
}

#[test]
fn orders_in_a_zero_exponent_currency_price_in_whole_units() {
    let krw = Currency::new("KRW").unwrap();
    let placed_in_krw = Placement {
        currency: krw,
        ..Placement::default()
    };
    let lines = vec![
        priced_line("SKU-1", 2, Money::new(15_000, krw)),
        priced_line("SKU-2", 1, Money::new(3_000, krw)),
    ];
    given([placed_in_krw.event()])
        .when(price(lines.clone(), Money::new(33_000, krw)))
        .then_events([E::OrderPriced {
            lines,
            total: Money::new(33_000, krw),
        }]);
}
