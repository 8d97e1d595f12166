//! The main paths of the fulfilment saga (ARCHITECTURE.md, `sagas`), one test each: given the events so
//! far, when one more arrives, then these commands.

use events::command::DomainCommand;
use events::domain::{
    OrderCommand, OrderEvent, PaymentCommand, PaymentEvent, ReservationRejectedReason,
    ShipmentEvent,
};

use super::*;
use crate::machine::SagaStatus;

#[test]
fn happy_path_runs_independent_steps_together_and_captures_last() {
    let mut s = Script::start();
    assert_eq!(s.first, ["ReserveStock A", "ReserveStock B"]);
    assert_eq!(s.when(reserved("A", 2, 1_000)), Vec::<String>::new());
    let (saga, now) = (s.saga.clone(), s.now);
    let out = s.saga.clone().handle(&reserved("B", 1, 500), now);
    assert_eq!(describe(&out), AUTHORIZE_AND_SCHEDULE);
    let DomainCommand::Order(OrderCommand::PriceOrder { lines, total }) = &out[0].command else {
        panic!("expected PriceOrder, got {out:?}");
    };
    assert_eq!(*total, usd(2_500));
    assert_eq!(lines[0].unit_price, usd(1_000));
    let authorization = PaymentCommand::RequestAuthorization {
        amount: usd(2_500),
        token: "tok_ok".into(),
    };
    assert_eq!(out[1].command, DomainCommand::Payment(authorization));
    s.saga = saga;
    s.when(reserved("B", 1, 500));
    // The capture waits for all three answers, whatever their order.
    assert_eq!(s.when(scheduled()), Vec::<String>::new());
    assert_eq!(s.when(authorized()), Vec::<String>::new());
    let priced = order(OrderEvent::OrderPriced {
        lines: lines.clone(),
        total: usd(2_500),
    });
    assert_eq!(s.when(priced), ["RequestCapture payment"]);
    let captured = pay(PaymentEvent::PaymentCaptured { amount: usd(2_500) });
    assert_eq!(s.when(captured), COMMIT_AND_CONFIRM);
    assert_eq!(s.when(committed("A", 2)), Vec::<String>::new());
    assert_eq!(
        s.when(order(OrderEvent::OrderConfirmed)),
        Vec::<String>::new()
    );
    assert_eq!(
        s.saga.status(),
        SagaStatus::Running,
        "B is not committed yet"
    );
    assert_eq!(s.when(committed("B", 1)), Vec::<String>::new());
    assert_eq!(
        s.saga.status(),
        SagaStatus::Running,
        "the shipment is not released yet"
    );
    let released = ship(ShipmentEvent::ShipmentReleased);
    assert_eq!(s.when(released), Vec::<String>::new());
    assert_eq!(s.saga.status(), SagaStatus::Completed);
    assert!(s.saga.is_terminal());
    assert_eq!(s.saga.deadline(), None);
    assert_eq!(s.saga.total(), Some(usd(2_500)));
    let steps: Vec<&str> = s.saga.history().iter().map(|r| r.step.as_str()).collect();
    assert_eq!(
        steps,
        [
            "reserving_stock",
            "authorizing_and_scheduling",
            "capturing_payment",
            "committing_and_confirming",
            "completed"
        ]
    );
}

#[test]
fn nothing_is_captured_before_the_shipment_is_scheduled() {
    let mut s = Script::start();
    s.reserve_and_price();
    assert_eq!(s.when(authorized()), Vec::<String>::new());
    assert_eq!(s.saga.current_step(), "authorizing_and_scheduling");
    // A late booking is retried like any forward step, never skipped.
    assert_eq!(s.deadline(), ["RequestShipment shipment"]);
    assert_eq!(s.when(scheduled()), ["RequestCapture payment"]);
}

#[test]
fn a_booking_that_never_comes_rejects_after_the_retries() {
    let mut s = Script::start();
    s.reserve_and_price();
    s.when(authorized());
    s.deadline();
    s.deadline();
    assert_eq!(s.deadline(), ["Cancel shipment"]);
    assert_eq!(
        s.saga.compensation_reason(),
        Some("scheduling_shipment_timed_out")
    );
    assert_eq!(s.shipment_cancelled(), VOID_AND_RELEASE);
}

#[test]
fn stock_shortage_releases_what_was_reserved_and_rejects_the_order() {
    let mut s = Script::start();
    s.when(reserved("A", 2, 1_000));
    let shortage = rejected("B", 1, ReservationRejectedReason::InsufficientStock);
    assert_eq!(s.when(shortage), ["ReleaseStock A"]);
    assert_eq!(s.saga.status(), SagaStatus::Compensating);
    assert_eq!(s.saga.compensation_reason(), Some("insufficient_stock: B"));
    assert_eq!(s.when(released("A", 2)), ["RejectOrder order"]);
    s.when(order(OrderEvent::OrderRejected {
        reason: "insufficient_stock: B".into(),
    }));
    assert_eq!(s.saga.status(), SagaStatus::Compensated);
}

#[test]
fn unknown_sku_waits_for_the_other_outcome_and_never_releases_the_unknown_one() {
    let mut s = Script::start();
    let unknown = rejected("A", 2, ReservationRejectedReason::UnknownSku);
    // B's outcome is not known yet, and releasing A would be a no-op.
    assert_eq!(s.when(unknown), Vec::<String>::new());
    assert_eq!(s.when(reserved("B", 1, 500)), ["ReleaseStock B"]);
    assert_eq!(s.when(released("B", 1)), ["RejectOrder order"]);
}

#[test]
fn a_declined_payment_needs_no_void_cancels_the_booking_and_releases_the_stock() {
    let mut s = Script::start();
    s.reserve_and_price();
    let declined = pay(PaymentEvent::PaymentDeclined {
        reason: "card declined".into(),
    });
    assert_eq!(s.when(declined), ["Cancel shipment"]);
    assert_eq!(s.shipment_cancelled(), ["ReleaseStock A", "ReleaseStock B"]);
    assert_eq!(s.saga.compensation_reason(), Some("payment_declined"));
    s.finish_rejection();
}

#[test]
fn no_answer_from_the_provider_voids_on_the_deadline() {
    let mut s = Script::start();
    s.reserve_and_price();
    assert_eq!(s.when(scheduled()), Vec::<String>::new());
    assert_eq!(s.deadline(), ["Cancel shipment"]);
    assert_eq!(s.shipment_cancelled(), VOID_AND_RELEASE);
    assert_eq!(s.saga.compensation_reason(), Some("payment_timed_out"));
    // Nothing was authorized: the recorded void intent settles the payment.
    s.when(pay(PaymentEvent::PaymentVoidRequested));
    s.finish_rejection();
}

#[test]
fn a_capture_failing_every_time_is_retried_then_compensated() {
    let mut s = Script::start();
    s.up_to_capture();
    let mut capture_ids = vec![];
    for _ in 1..4 {
        assert_eq!(s.when(capture_failed()), Vec::<String>::new());
        assert_eq!(s.saga.current_step(), "awaiting_capture_retry");
        let (saga, now) = (s.saga.clone(), s.saga.deadline().unwrap());
        let retry = s.saga.handle(&Input::DeadlineFired, now);
        assert_eq!(describe(&retry), ["RequestCapture payment"]);
        capture_ids.push(retry[0].command_id);
        s.saga = saga;
        s.deadline();
    }
    capture_ids.dedup();
    assert_eq!(capture_ids.len(), 3, "each retry is a new command");
    assert_eq!(s.when(capture_failed()), ["Cancel shipment"]);
    assert_eq!(s.saga.compensation_reason(), Some("capture_failed"));
    assert_eq!(s.shipment_cancelled(), VOID_AND_RELEASE);
    s.when(pay(PaymentEvent::PaymentVoidRequested));
    s.when(pay(PaymentEvent::PaymentVoided { amount: usd(2_500) }));
    s.finish_rejection();
}

#[test]
fn backoff_between_capture_attempts_grows() {
    let mut s = Script::start();
    s.up_to_capture();
    s.when(capture_failed());
    let first = s.saga.deadline().unwrap() - s.now;
    s.deadline();
    s.when(capture_failed());
    let second = s.saga.deadline().unwrap() - s.now;
    assert!(second > first, "{second} > {first}");
}

#[test]
fn a_flaky_capture_that_succeeds_on_retry_completes() {
    let mut s = Script::start();
    s.up_to_capture();
    s.when(capture_failed());
    assert_eq!(s.deadline(), ["RequestCapture payment"]);
    s.when(capture_failed());
    assert_eq!(s.deadline(), ["RequestCapture payment"]);
    let captured = pay(PaymentEvent::PaymentCaptured { amount: usd(2_500) });
    assert_eq!(s.when(captured), COMMIT_AND_CONFIRM);
    s.when(committed("A", 2));
    s.when(committed("B", 1));
    s.when(order(OrderEvent::OrderConfirmed));
    s.when(ship(ShipmentEvent::ShipmentReleased));
    assert_eq!(s.saga.status(), SagaStatus::Completed);
}

#[test]
fn the_shipment_is_released_only_after_the_capture_and_until_it_is() {
    let mut s = Script::start();
    s.up_to_capture();
    // Failed captures and their retries never release the parcel.
    assert_eq!(s.when(capture_failed()), Vec::<String>::new());
    assert_eq!(s.deadline(), ["RequestCapture payment"]);
    let captured = pay(PaymentEvent::PaymentCaptured { amount: usd(2_500) });
    assert_eq!(s.when(captured), COMMIT_AND_CONFIRM);
    s.when(committed("A", 2));
    s.when(committed("B", 1));
    s.when(order(OrderEvent::OrderConfirmed));
    // No answer to the release: it is asked again, and the saga waits.
    assert_eq!(s.deadline(), ["Release shipment"]);
    assert_eq!(s.saga.status(), SagaStatus::Running);
    s.when(ship(ShipmentEvent::ShipmentReleased));
    assert_eq!(s.saga.status(), SagaStatus::Completed);
}

#[test]
fn a_carrier_refusal_voids_releases_and_rejects() {
    let mut s = Script::start();
    s.reserve_and_price();
    s.when(authorized());
    let refused = ship(ShipmentEvent::ShipmentRefused {
        reason: "country ZZ".into(),
    });
    // A refused shipment needs no cancel.
    assert_eq!(s.when(refused), VOID_AND_RELEASE);
    // The payment was authorized, so the void must be confirmed.
    s.when(pay(PaymentEvent::PaymentVoidRequested));
    s.when(released("A", 2));
    assert_eq!(s.when(released("B", 1)), Vec::<String>::new());
    let voided = pay(PaymentEvent::PaymentVoided { amount: usd(2_500) });
    assert_eq!(s.when(voided), ["RejectOrder order"]);
    assert_eq!(s.saga.compensation_reason(), Some("shipment_refused"));
}

#[test]
fn customer_cancel_before_capture_rejects_with_cancelled_by_customer() {
    let mut s = Script::start();
    s.reserve_and_price();
    assert_eq!(s.when(cancellation_requested()), ["Cancel shipment"]);
    assert_eq!(s.shipment_cancelled(), VOID_AND_RELEASE);
    s.when(pay(PaymentEvent::PaymentVoidRequested));
    s.when(released("A", 2));
    let now = s.now;
    let out = s.saga.handle(&released("B", 1), now);
    let expected = OrderCommand::RejectOrder {
        reason: "cancelled_by_customer".into(),
    };
    assert_eq!(out[0].command, DomainCommand::Order(expected));
}

#[test]
fn customer_cancel_after_capture_cancels_shipment_refunds_restocks_and_cancels() {
    let mut s = Script::start();
    s.complete();
    assert_eq!(s.when(cancellation_requested()), ["Cancel shipment"]);
    assert_eq!(s.saga.status(), SagaStatus::Compensating);
    let out = s
        .saga
        .handle(&ship(ShipmentEvent::ShipmentCancelled), s.now);
    assert_eq!(
        describe(&out),
        ["RequestRefund payment", "Restock A", "Restock B"]
    );
    let refund = PaymentCommand::RequestRefund { amount: None };
    assert_eq!(out[0].command, DomainCommand::Payment(refund));
    s.when(pay(PaymentEvent::PaymentRefunded { amount: usd(2_500) }));
    s.when(catalog(
        "A",
        events::domain::CatalogEvent::Restocked { quantity: 2 },
    ));
    let restocked_b = catalog("B", events::domain::CatalogEvent::Restocked { quantity: 1 });
    assert_eq!(s.when(restocked_b), ["CancelOrder order"]);
    s.when(order(OrderEvent::OrderCancelled {
        reason: "cancelled_by_customer".into(),
    }));
    assert_eq!(s.saga.status(), SagaStatus::Compensated);
}

#[test]
fn customer_cancel_after_dispatch_changes_nothing() {
    let mut s = Script::start();
    s.complete();
    s.when(ship(ShipmentEvent::ShipmentDispatched));
    assert_eq!(s.when(cancellation_requested()), Vec::<String>::new());
    assert_eq!(s.saga.status(), SagaStatus::Completed);
}

#[test]
fn a_completed_order_follows_its_parcel_to_shipped_and_delivered() {
    let mut s = Script::start();
    s.complete();
    assert_eq!(
        s.when(ship(ShipmentEvent::ShipmentDispatched)),
        ["MarkShipped order"]
    );
    // The same fact again sends nothing more.
    assert_eq!(
        s.when(ship(ShipmentEvent::ShipmentDispatched)),
        Vec::<String>::new()
    );
    assert_eq!(
        s.when(order(OrderEvent::OrderShipped)),
        Vec::<String>::new()
    );
    assert_eq!(
        s.when(ship(ShipmentEvent::ShipmentDelivered)),
        ["MarkDelivered order"]
    );
    assert_eq!(
        s.when(order(OrderEvent::OrderDelivered)),
        Vec::<String>::new()
    );
    assert_eq!(s.saga.status(), SagaStatus::Completed);
}

#[test]
fn a_parcel_delivered_before_the_order_was_marked_shipped_marks_both_in_order() {
    let mut s = Script::start();
    s.complete();
    assert_eq!(
        s.when(ship(ShipmentEvent::ShipmentDelivered)),
        ["MarkShipped order", "MarkDelivered order"]
    );
}
