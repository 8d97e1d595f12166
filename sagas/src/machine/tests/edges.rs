//! Late, duplicated and reordered events, stale deadlines, retries, the
//! operator, and the ids and storage of the saga.

use events::domain::{
    CatalogEvent, Currency, Money, OrderEvent, PaymentEvent, ReservationRejectedReason,
    ShipmentEvent,
};

use super::*;
use crate::machine::SagaStatus;

fn none() -> Vec<String> {
    Vec::new()
}

#[test]
fn a_reservation_arriving_after_the_decision_to_compensate_is_released() {
    let mut s = Script::start();
    s.when(reserved("A", 2, 1_000));
    assert_eq!(s.when(cancellation_requested()), ["ReleaseStock A"]);
    assert_eq!(s.when(reserved("B", 1, 500)), ["ReleaseStock B"]);
    assert_eq!(s.saga.compensation_reason(), Some("cancelled_by_customer"));
    s.finish_rejection();
}

#[test]
fn a_late_authorization_after_the_void_request_is_waited_for_until_voided() {
    let mut s = Script::start();
    s.reserve_and_price();
    s.deadline();
    assert_eq!(s.shipment_cancelled(), VOID_AND_RELEASE);
    assert_eq!(s.when(authorized()), none());
    s.when(pay(PaymentEvent::PaymentVoidRequested));
    s.when(released("A", 2));
    assert_eq!(s.when(released("B", 1)), none(), "the void is still owed");
    let voided = pay(PaymentEvent::PaymentVoided { amount: usd(2_500) });
    assert_eq!(s.when(voided), ["RejectOrder order"]);
}

#[test]
fn a_late_authorization_after_compensation_changes_nothing() {
    let mut s = Script::start();
    s.reserve_and_price();
    s.deadline();
    s.shipment_cancelled();
    s.when(pay(PaymentEvent::PaymentVoidRequested));
    s.finish_rejection();
    assert_eq!(s.when(authorized()), none());
    assert_eq!(s.saga.status(), SagaStatus::Compensated);
}

#[test]
fn a_capture_that_succeeds_after_the_saga_gave_up_is_refunded() {
    let mut s = Script::start();
    s.up_to_capture();
    for _ in 1..4 {
        s.when(capture_failed());
        s.deadline();
    }
    s.when(capture_failed());
    s.when(ship(ShipmentEvent::ShipmentCancelled));
    let captured = pay(PaymentEvent::PaymentCaptured { amount: usd(2_500) });
    assert_eq!(s.when(captured), ["RequestRefund payment"]);
    s.when(pay(PaymentEvent::PaymentRefunded { amount: usd(2_500) }));
    s.finish_rejection();
}

#[test]
fn every_event_delivered_twice_gives_the_same_commands_once() {
    let mut s = Script::start();
    let events = [
        reserved("A", 2, 1_000),
        reserved("B", 1, 500),
        order(OrderEvent::OrderPriced {
            lines: vec![],
            total: usd(2_500),
        }),
        authorized(),
        scheduled(),
        capture_failed(),
    ];
    for event in events {
        s.when(event.clone());
        assert_eq!(s.when(event), none());
    }
    assert_eq!(s.saga.current_step(), "awaiting_capture_retry");
}

#[test]
fn a_reservation_after_its_release_is_released_again_without_resurrecting_it() {
    let mut s = Script::start();
    s.when(numbered(reserved("A", 2, 1_000), 7));
    s.when(rejected(
        "B",
        1,
        ReservationRejectedReason::InsufficientStock,
    ));
    s.when(released("A", 2));
    let before = s.saga.clone();
    // A redelivery of the first reservation: a release the catalog answers
    // with nothing, under an id a second redelivery repeats.
    let redelivered = s.saga.handle(&numbered(reserved("A", 2, 1_000), 7), s.now);
    assert_eq!(describe(&redelivered), ["ReleaseStock A"]);
    assert_eq!(s.saga, before, "the facts are unchanged");
    let again = s.saga.handle(&numbered(reserved("A", 2, 1_000), 7), s.now);
    assert_eq!(again, redelivered);
    // A late retry's reservation is another event: another release.
    let late = s.saga.handle(&numbered(reserved("A", 2, 1_000), 9), s.now);
    assert_eq!(describe(&late), ["ReleaseStock A"]);
    assert_ne!(late[0].command_id, redelivered[0].command_id);
    assert_eq!(s.saga.current_step(), "closing_order");
}

#[test]
fn a_reservation_after_the_line_was_rejected_is_released() {
    let mut s = Script::start();
    s.when(rejected(
        "A",
        2,
        ReservationRejectedReason::InsufficientStock,
    ));
    assert_eq!(
        s.when(numbered(reserved("A", 2, 1_000), 3)),
        ["ReleaseStock A"]
    );
    assert_eq!(s.when(reserved("B", 1, 500)), ["ReleaseStock B"]);
    s.when(released("B", 1));
    assert_eq!(s.saga.current_step(), "closing_order");
}

#[test]
fn a_late_reservation_after_the_commit_is_released_and_the_saga_stays_completed() {
    let mut s = Script::start();
    s.complete();
    let out = s.saga.handle(&numbered(reserved("B", 1, 500), 40), s.now);
    assert_eq!(describe(&out), ["ReleaseStock B"]);
    assert_eq!(out[0].aggregate_id, "B");
    assert_eq!(s.saga.status(), SagaStatus::Completed);
    assert_eq!(s.when(released("B", 1)), none(), "its release is no news");
    assert_eq!(s.saga.status(), SagaStatus::Completed);
}

#[test]
fn a_reservation_reaching_a_saga_resolved_by_hand_is_released() {
    let mut s = Script::start();
    for _ in 0..3 {
        s.deadline();
    }
    for _ in 0..5 {
        s.deadline();
    }
    assert_eq!(s.saga.status(), SagaStatus::NeedsAttention);
    let note = "nothing was reserved".to_owned();
    s.when(Input::OperatorResolve { note });
    assert_eq!(s.when(reserved("A", 2, 1_000)), ["ReleaseStock A"]);
    assert_eq!(s.saga.status(), SagaStatus::ResolvedByOperator);
}

#[test]
fn commit_retries_reuse_the_same_id_so_a_late_one_cannot_commit_twice() {
    let mut s = Script::start();
    s.up_to_capture();
    let captured = pay(PaymentEvent::PaymentCaptured { amount: usd(2_500) });
    let first = s.saga.handle(&captured, s.now);
    let retry = s
        .saga
        .handle(&Input::DeadlineFired, s.saga.deadline().unwrap());
    let commits = |out: &[Outgoing]| -> Vec<_> {
        let commits = out
            .iter()
            .filter(|o| o.command.command_type() == "CommitStock");
        commits.map(|o| o.command_id).collect()
    };
    assert_eq!(commits(&retry), commits(&first));
    assert_eq!(commits(&first).len(), 2);
}

#[test]
fn stale_and_early_deadline_firings_are_ignored() {
    let mut s = Script::start();
    let reserving_deadline = s.saga.deadline().unwrap();
    assert_eq!(s.when(Input::DeadlineFired), none(), "not due yet");
    s.reserve_all();
    assert_eq!(s.saga.current_step(), "authorizing_and_scheduling");
    let out = s.saga.handle(&Input::DeadlineFired, reserving_deadline);
    assert!(out.is_empty(), "the reserving deadline is stale");
    assert_eq!(s.saga.current_step(), "authorizing_and_scheduling");
}

#[test]
fn forward_steps_retry_with_new_ids_then_give_up() {
    let mut s = Script::start();
    let first = s.saga.clone();
    s.when(reserved("A", 2, 1_000));
    assert_eq!(s.deadline(), ["ReserveStock B"]);
    assert_eq!(s.deadline(), ["ReserveStock B"]);
    assert_eq!(s.deadline(), ["ReleaseStock A"]);
    assert_eq!(
        s.saga.compensation_reason(),
        Some("reserving_stock_timed_out")
    );
    let (_, again) = start(&placed(), Pace::default(), at(0));
    let (_, original) = start(&placed(), Pace::default(), at(0));
    assert_eq!(again, original, "the same transition gives the same ids");
    assert_eq!(first.history().len(), 1);
}

#[test]
fn a_stalled_compensation_parks_then_the_operator_retries_and_resolves() {
    let mut s = Script::start();
    s.when(reserved("A", 2, 1_000));
    let first = s.saga.handle(
        &rejected("B", 1, ReservationRejectedReason::UnknownSku),
        s.now,
    );
    let mut ids = vec![first[0].command_id];
    for _ in 1..5 {
        let (saga, now) = (s.saga.clone(), s.saga.deadline().unwrap());
        ids.push(s.saga.handle(&Input::DeadlineFired, now)[0].command_id);
        s.saga = saga;
        assert_eq!(s.deadline(), ["ReleaseStock A"]);
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 5, "every retry of a release is a new command");
    assert_eq!(s.deadline(), none());
    assert_eq!(s.saga.status(), SagaStatus::NeedsAttention);
    assert!(s.saga.is_terminal());
    let reason = s.saga.attention_reason().unwrap();
    assert!(reason.contains("release_stock A"), "{reason}");
    assert_eq!(s.saga.last_error(), Some(reason));
    let history = s.saga.history();
    let stalled = &history[history.len() - 2];
    assert_eq!(stalled.step, "compensating_payment_and_stock");
    assert_eq!(stalled.attempts, 5);
    assert!(stalled.outcome.as_deref().unwrap().starts_with("parked: "));
    assert_eq!(s.when(Input::OperatorRetry), ["ReleaseStock A"]);
    assert_eq!(s.saga.status(), SagaStatus::Compensating);
    for _ in 1..5 {
        s.deadline();
    }
    s.deadline();
    let note = "released by hand".to_owned();
    assert_eq!(s.when(Input::OperatorResolve { note }), none());
    assert_eq!(s.saga.status(), SagaStatus::ResolvedByOperator);
    assert_eq!(s.when(Input::OperatorRetry), none());
}

#[test]
fn restock_retries_reuse_the_same_id_because_restocking_is_not_idempotent() {
    let mut s = Script::start();
    s.complete();
    s.when(cancellation_requested());
    let now = s.now;
    let first = s.saga.handle(&ship(ShipmentEvent::ShipmentCancelled), now);
    let retry = s
        .saga
        .handle(&Input::DeadlineFired, s.saga.deadline().unwrap());
    assert_eq!(describe(&retry), describe(&first));
    assert_ne!(first[0].command_id, retry[0].command_id, "refund: new id");
    assert_eq!(first[1..], retry[1..], "restock: same id and content");
}

#[test]
fn a_cancellation_during_the_capture_waits_for_its_outcome() {
    let mut s = Script::start();
    s.up_to_capture();
    assert_eq!(s.when(cancellation_requested()), none());
    let captured = pay(PaymentEvent::PaymentCaptured { amount: usd(2_500) });
    assert_eq!(s.when(captured), COMMIT_AND_CONFIRM);
    s.when(committed("A", 2));
    s.when(order(OrderEvent::OrderConfirmed));
    s.when(committed("B", 1));
    assert_eq!(
        s.when(ship(ShipmentEvent::ShipmentReleased)),
        ["Cancel shipment"]
    );
}

#[test]
fn a_cancellation_during_a_failed_capture_compensates_instead_of_retrying() {
    let mut s = Script::start();
    s.up_to_capture();
    s.when(cancellation_requested());
    assert_eq!(s.when(capture_failed()), ["Cancel shipment"]);
    assert_eq!(s.saga.compensation_reason(), Some("cancelled_by_customer"));
}

#[test]
fn a_dispatch_racing_the_cancellation_leaves_the_saga_completed() {
    let mut s = Script::start();
    s.complete();
    assert_eq!(s.when(cancellation_requested()), ["Cancel shipment"]);
    // The parcel left: the order follows it instead of being cancelled.
    assert_eq!(
        s.when(ship(ShipmentEvent::ShipmentDispatched)),
        ["MarkShipped order"]
    );
    assert_eq!(s.saga.status(), SagaStatus::Completed);
    assert_eq!(s.saga.deadline(), None);
}

#[test]
fn a_reservation_in_another_currency_compensates() {
    let mut s = Script::start();
    s.when(reserved("A", 2, 1_000));
    let eur = Money::new(500, Currency::new("EUR").unwrap());
    let event = CatalogEvent::StockReserved {
        order_id: order_id(),
        quantity: 1,
        unit_price: eur,
    };
    assert_eq!(
        s.when(catalog("B", event)),
        ["ReleaseStock A", "ReleaseStock B"]
    );
    assert_eq!(s.saga.compensation_reason(), Some("currency_mismatch: B"));
}

#[test]
fn events_of_other_orders_are_ignored() {
    let mut s = Script::start();
    let other = OrderId::from_uuid(uuid::Uuid::from_u128(7));
    let event = CatalogEvent::StockReserved {
        order_id: other,
        quantity: 2,
        unit_price: usd(1_000),
    };
    assert_eq!(s.when(catalog("A", event)), none());
    assert_eq!(s.when(reserved("Z", 1, 1)), none());
}

#[test]
fn the_saga_survives_a_round_trip_through_json() {
    let mut s = Script::start();
    s.up_to_capture();
    s.when(capture_failed());
    let json = serde_json::to_value(&s.saga).unwrap();
    let back: Saga = serde_json::from_value(json).unwrap();
    assert_eq!(back, s.saga);
    assert_eq!(back.current_step(), "awaiting_capture_retry");
}

#[test]
fn order_placed_facts_come_from_the_order_placed_event_only() {
    let facts = placed();
    let event = OrderEvent::OrderPlaced {
        customer_id: facts.customer_id.clone(),
        currency: facts.currency,
        lines: facts.lines.clone(),
        shipping_address: facts.shipping_address.clone(),
        payment_token: facts.payment_token.clone(),
    };
    let from_event = OrderPlacedFacts::from_event(order_id(), &event);
    assert_eq!(from_event, Some(facts));
    assert_eq!(
        OrderPlacedFacts::from_event(order_id(), &OrderEvent::OrderConfirmed),
        None
    );
}

#[test]
fn a_saga_stored_in_a_step_of_the_older_graph_carries_on() {
    let mut s = Script::start();
    s.reserve_all();
    let mut json = serde_json::to_value(&s.saga).unwrap();
    json["phase"]["step"] = "pricing_order".into();
    let mut back: Saga = serde_json::from_value(json).unwrap();
    assert_eq!(back.current_step(), "authorizing_and_scheduling");
    assert!(back.handle(&priced(), s.now).is_empty());
    assert!(back.handle(&authorized(), s.now).is_empty());
    let out = back.handle(&scheduled(), s.now);
    assert_eq!(describe(&out), ["RequestCapture payment"]);
}

#[test]
fn a_refused_order_is_rejected_without_touching_stock_payment_or_shipment() {
    let (mut saga, out) = crate::machine::refuse(
        &placed(),
        crate::machine::TOO_MANY_OPEN_ORDERS,
        Pace::default(),
        at(0),
    );
    assert_eq!(describe(&out), ["RejectOrder order"]);
    assert_eq!(saga.compensation_reason(), Some("too_many_open_orders"));
    // A reservation answer cannot come (none was asked); the rejection closes it.
    let rejected = order(OrderEvent::OrderRejected {
        reason: "too_many_open_orders".into(),
    });
    assert_eq!(describe(&saga.handle(&rejected, at(1))), none());
    assert_eq!(saga.status(), SagaStatus::Compensated);
}
