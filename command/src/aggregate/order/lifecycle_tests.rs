//! Given/when/then tests of an order's status transitions: every lifecycle
//! command at every stage, plus a property over random command sequences.

use events::domain::order::{OrderCommand as C, OrderEvent as E, OrderRejection as R, OrderStatus};
use proptest::prelude::*;

use super::Order;
use super::fixtures::*;
use crate::aggregate::Aggregate;
use crate::aggregate::testing::given;

fn status_of(stage: Stage) -> OrderStatus {
    match stage {
        Stage::Pending | Stage::Priced => OrderStatus::Pending,
        Stage::Confirmed => OrderStatus::Confirmed,
        Stage::Shipped => OrderStatus::Shipped,
        Stage::Delivered => OrderStatus::Delivered,
        Stage::Rejected => OrderStatus::Rejected,
        Stage::Cancelled => OrderStatus::Cancelled,
    }
}

fn closed(stage: Stage) -> Result<Vec<E>, R> {
    Err(R::Closed {
        status: status_of(stage),
    })
}

#[test]
fn confirm_order_at_every_stage() {
    for stage in ALL_STAGES {
        let outcome = match stage {
            Stage::Pending => Err(R::NotPriced),
            Stage::Priced => Ok(vec![E::OrderConfirmed]),
            Stage::Confirmed | Stage::Shipped | Stage::Delivered => Ok(vec![]),
            Stage::Rejected | Stage::Cancelled => closed(stage),
        };
        expect(stage, C::ConfirmOrder, outcome);
    }
}

#[test]
fn reject_order_at_every_stage() {
    let command = || C::RejectOrder {
        reason: reason("payment_declined"),
    };
    for stage in ALL_STAGES {
        let outcome = match stage {
            Stage::Pending | Stage::Priced => Ok(vec![E::OrderRejected {
                reason: reason("payment_declined"),
            }]),
            Stage::Confirmed | Stage::Shipped | Stage::Delivered => Err(R::NotPending {
                status: status_of(stage),
            }),
            Stage::Rejected => Ok(vec![]),
            Stage::Cancelled => closed(stage),
        };
        expect(stage, command(), outcome);
    }
}

#[test]
fn request_cancellation_at_every_stage() {
    let command = || C::RequestCancellation {
        reason: reason("changed my mind"),
    };
    for stage in ALL_STAGES {
        let outcome = match stage {
            Stage::Pending | Stage::Priced | Stage::Confirmed => {
                Ok(vec![E::OrderCancellationRequested {
                    reason: reason("changed my mind"),
                }])
            }
            Stage::Shipped | Stage::Delivered => Err(R::AlreadyShipped {
                status: status_of(stage),
            }),
            Stage::Rejected | Stage::Cancelled => closed(stage),
        };
        expect(stage, command(), outcome);
    }
}

#[test]
fn cancel_order_at_every_stage() {
    let command = || C::CancelOrder {
        reason: reason("cancelled_by_customer"),
    };
    for stage in ALL_STAGES {
        let outcome = match stage {
            Stage::Confirmed => Ok(vec![E::OrderCancelled {
                reason: reason("cancelled_by_customer"),
            }]),
            Stage::Cancelled => Ok(vec![]),
            Stage::Pending | Stage::Priced => Err(R::NotConfirmed {
                status: OrderStatus::Pending,
            }),
            Stage::Shipped | Stage::Delivered => Err(R::AlreadyShipped {
                status: status_of(stage),
            }),
            Stage::Rejected => closed(stage),
        };
        expect(stage, command(), outcome);
    }
}

#[test]
fn mark_shipped_at_every_stage() {
    for stage in ALL_STAGES {
        let outcome = match stage {
            Stage::Confirmed => Ok(vec![E::OrderShipped]),
            Stage::Shipped | Stage::Delivered => Ok(vec![]),
            Stage::Pending | Stage::Priced => Err(R::NotConfirmed {
                status: OrderStatus::Pending,
            }),
            Stage::Rejected | Stage::Cancelled => closed(stage),
        };
        expect(stage, C::MarkShipped, outcome);
    }
}

#[test]
fn mark_delivered_at_every_stage() {
    for stage in ALL_STAGES {
        let outcome = match stage {
            Stage::Shipped => Ok(vec![E::OrderDelivered]),
            Stage::Delivered => Ok(vec![]),
            Stage::Pending | Stage::Priced | Stage::Confirmed => Err(R::NotShipped {
                status: status_of(stage),
            }),
            Stage::Rejected | Stage::Cancelled => closed(stage),
        };
        expect(stage, C::MarkDelivered, outcome);
    }
}

#[test]
fn reasons_must_be_printable_and_bounded() {
    for bad in ["", "  ", "line\nbreak", &"r".repeat(501)] {
        let commands = [
            C::RejectOrder { reason: bad.into() },
            C::RequestCancellation { reason: bad.into() },
            C::CancelOrder { reason: bad.into() },
        ];
        for command in commands {
            expect(Stage::Confirmed, command, Err(R::InvalidReason));
        }
    }
}

#[test]
fn the_happy_path_ends_delivered() {
    let order = Order::replay(&history(Stage::Delivered));
    assert_eq!(order.status(), Some(OrderStatus::Delivered));
    assert_eq!(order.total(), Some(usd(4498)));
    assert_eq!(order.closing_reason(), None);
}

#[test]
fn a_rejected_order_keeps_its_reason() {
    given([placed()])
        .when(C::RejectOrder {
            reason: reason("insufficient_stock"),
        })
        .then_repeat_is_noop()
        .then_state(|order| {
            assert_eq!(order.status(), Some(OrderStatus::Rejected));
            assert_eq!(order.closing_reason(), Some("insufficient_stock"));
        });
}

#[test]
fn a_cancellation_request_is_recorded_once() {
    let requested = E::OrderCancellationRequested {
        reason: reason("changed my mind"),
    };
    given([history(Stage::Confirmed), vec![requested]].concat())
        .when(C::RequestCancellation {
            reason: reason("really"),
        })
        .then_no_events()
        .then_state(|order| {
            assert_eq!(order.cancellation_requested(), Some("changed my mind"));
            assert_eq!(order.status(), Some(OrderStatus::Confirmed));
        });
}

#[test]
fn a_cancellation_request_is_cleared_by_cancelling_or_shipping() {
    let requested = E::OrderCancellationRequested {
        reason: reason("changed my mind"),
    };
    let confirmed_with_request = [history(Stage::Confirmed), vec![requested]].concat();
    given(confirmed_with_request.clone())
        .when(C::CancelOrder {
            reason: reason("cancelled_by_customer"),
        })
        .then_state(|order| {
            assert_eq!(order.status(), Some(OrderStatus::Cancelled));
            assert_eq!(order.closing_reason(), Some("cancelled_by_customer"));
            assert_eq!(order.cancellation_requested(), None);
        });
    given(confirmed_with_request)
        .when(C::MarkShipped)
        .then_events([E::OrderShipped])
        .then_state(|order| assert_eq!(order.cancellation_requested(), None));
}

#[test]
fn a_pending_order_with_a_cancellation_request_ends_rejected() {
    let requested = E::OrderCancellationRequested {
        reason: reason("changed my mind"),
    };
    given([placed(), requested])
        .when(C::RejectOrder {
            reason: reason("cancelled_by_customer"),
        })
        .then_events([E::OrderRejected {
            reason: reason("cancelled_by_customer"),
        }]);
}

fn lifecycle_command() -> impl Strategy<Value = C> {
    let text = || Just(reason("because"));
    prop_oneof![
        Just(price(priced_lines(), usd(4498))),
        Just(C::ConfirmOrder),
        text().prop_map(|reason| C::RejectOrder { reason }),
        text().prop_map(|reason| C::RequestCancellation { reason }),
        text().prop_map(|reason| C::CancelOrder { reason }),
        Just(C::MarkShipped),
        Just(C::MarkDelivered),
    ]
}

fn allowed(from: OrderStatus, to: OrderStatus) -> bool {
    use OrderStatus::*;
    from == to
        || matches!(
            (from, to),
            (Pending, Confirmed | Rejected)
                | (Confirmed, Shipped | Cancelled)
                | (Shipped, Delivered)
        )
}

proptest! {
    #[test]
    fn status_only_moves_along_the_documented_transitions(
        commands in prop::collection::vec(lifecycle_command(), 0..30),
    ) {
        let mut order = Order::replay(&[placed()]);
        for command in &commands {
            let before = order.status();
            if let Ok((next, _)) = order.clone().handle(command) {
                order = next;
            }
            let (Some(from), Some(to)) = (before, order.status()) else {
                return Err(TestCaseError::fail("a placed order always has a status"));
            };
            prop_assert!(allowed(from, to), "{} -> {} by {:?}", from, to, command);
            if to == OrderStatus::Confirmed {
                prop_assert!(order.is_priced());
            }
        }
    }
}
