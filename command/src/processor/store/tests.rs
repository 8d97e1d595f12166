use std::time::Duration;

use chrono::Utc;
use events::command::{
    CommandEnvelope, DomainCommand, Outcome, Principal, RejectionKind, Role, codes,
};
use events::domain::{CatalogCommand, CatalogEvent, Currency, Money, OrderId};
use events::message::EventPayload;
use events::{AggregateType, new_id};
use uuid::Uuid;

use super::{Decision, Limits, PartitionStore, SnapshotPlan};
use crate::processor::cold::StateFile;

/// A store whose disk half lives in a fresh temporary file (its folder is
/// gone at once; the open file lives as long as the store).
fn open(aggregate: AggregateType, dedup_capacity: usize, hot_aggregates: usize) -> PartitionStore {
    let limits = Limits {
        dedup_window: Duration::from_secs(3600),
        dedup_capacity,
        hot_aggregates,
    };
    let dir = tempfile::tempdir().unwrap();
    let file = StateFile::open(dir.path(), "catalog-0").unwrap();
    PartitionStore::open(aggregate, limits, &file, "catalog-0").unwrap()
}

fn store() -> PartitionStore {
    open(AggregateType::CatalogItem, 1000, 1000)
}

/// Decides and, as the processor does after its transaction, commits.
fn handle(store: &mut PartitionStore, command: &CommandEnvelope) -> Decision {
    let decision = store.handle(command, Utc::now()).unwrap();
    store.commit().unwrap();
    decision
}

fn envelope(command: CatalogCommand) -> CommandEnvelope {
    CommandEnvelope {
        command_id: new_id(),
        aggregate_id: "SKU-1".into(),
        expected_version: None,
        issued_at: Utc::now(),
        correlation_id: new_id(),
        causation_id: new_id(),
        traceparent: None,
        fingerprint: format!("{command:?}"),
        issued_by: Principal {
            subject: "ops".into(),
            role: Role::Admin,
        },
        command: DomainCommand::CatalogItem(command),
    }
}

fn create() -> CatalogCommand {
    CatalogCommand::CreateItem {
        name: "Mug".into(),
        unit_price: Money::new(1200, Currency::new("USD").unwrap()),
        initial_stock: 10,
    }
}

fn reserve(quantity: u32) -> CatalogCommand {
    CatalogCommand::ReserveStock {
        order_id: OrderId::from(Uuid::now_v7()),
        quantity,
    }
}

#[test]
fn accepted_commands_get_sequenced_envelopes() {
    let mut store = store();
    let first = handle(&mut store, &envelope(create()));
    assert_eq!(first.events.len(), 1);
    assert_eq!(first.events[0].meta.sequence, 1);
    assert_eq!(first.events[0].meta.event_type, "ItemCreated");
    assert!(matches!(
        first.reply.outcome,
        Outcome::Accepted { version: 1, .. }
    ));

    let command = envelope(reserve(3));
    let second = handle(&mut store, &command);
    let event = &second.events[0];
    assert_eq!(event.meta.sequence, 2);
    assert_eq!(event.meta.command_id, command.command_id);
    assert_eq!(event.meta.correlation_id, command.correlation_id);
    let payload = CatalogEvent::decode(&event.meta, &event.payload).unwrap();
    assert!(matches!(
        payload,
        CatalogEvent::StockReserved { quantity: 3, .. }
    ));
}

#[test]
fn a_duplicate_command_gets_the_recorded_reply_and_no_events() {
    let mut store = store();
    handle(&mut store, &envelope(create()));
    let command = envelope(CatalogCommand::Restock { quantity: 5 });
    let first = handle(&mut store, &command);
    let again = handle(&mut store, &command);
    assert_eq!(first.events.len(), 1);
    assert!(again.events.is_empty());
    assert_eq!(again.reply, first.reply);
}

#[test]
fn a_reused_key_with_another_request_is_refused() {
    let mut store = store();
    handle(&mut store, &envelope(create()));
    let command = envelope(CatalogCommand::Restock { quantity: 5 });
    handle(&mut store, &command);
    let other = CommandEnvelope {
        fingerprint: "something else".into(),
        ..command
    };
    let decision = handle(&mut store, &other);
    assert!(decision.events.is_empty());
    assert!(matches!(
        decision.reply.outcome,
        Outcome::Rejected { kind: RejectionKind::Invalid, ref code, .. } if code == codes::IDEMPOTENCY_KEY_REUSED
    ));
}

#[test]
fn a_stale_expected_version_is_a_conflict() {
    let mut store = store();
    handle(&mut store, &envelope(create()));
    let stale = CommandEnvelope {
        expected_version: Some(0),
        ..envelope(CatalogCommand::Restock { quantity: 1 })
    };
    let decision = handle(&mut store, &stale);
    assert!(decision.events.is_empty());
    assert!(matches!(
        decision.reply.outcome,
        Outcome::Rejected { kind: RejectionKind::Conflict, version: 1, ref code, .. } if code == codes::VERSION_CONFLICT
    ));
    let current = CommandEnvelope {
        expected_version: Some(1),
        ..envelope(CatalogCommand::Restock { quantity: 1 })
    };
    assert_eq!(handle(&mut store, &current).events.len(), 1);
}

#[test]
fn domain_rejections_carry_their_kind_and_code() {
    let mut store = store();
    let decision = handle(
        &mut store,
        &envelope(CatalogCommand::Restock { quantity: 1 }),
    );
    assert!(decision.events.is_empty());
    assert!(matches!(
        decision.reply.outcome,
        Outcome::Rejected {
            kind: RejectionKind::NotFound,
            ..
        }
    ));
    handle(&mut store, &envelope(create()));
    let decision = handle(
        &mut store,
        &envelope(CatalogCommand::Restock { quantity: 0 }),
    );
    assert!(matches!(
        decision.reply.outcome,
        Outcome::Rejected {
            kind: RejectionKind::Invalid,
            ..
        }
    ));
}

#[test]
fn concurrent_reservations_never_oversell() {
    let mut store = store();
    handle(&mut store, &envelope(create()));
    let accepted = (0..100)
        .map(|_| handle(&mut store, &envelope(reserve(1))))
        .filter(|d| {
            d.events
                .iter()
                .any(|e| e.meta.event_type == "StockReserved")
        })
        .count();
    assert_eq!(accepted, 10);
}

#[test]
fn restoring_from_events_and_replies_rebuilds_the_same_state() {
    let mut live = store();
    let mut log = Vec::new();
    let mut replies = Vec::new();
    for command in [
        envelope(create()),
        envelope(reserve(4)),
        envelope(CatalogCommand::Restock { quantity: 2 }),
    ] {
        let decision = handle(&mut live, &command);
        log.extend(decision.events);
        replies.push((command, decision.reply));
    }
    let mut restored = store();
    for (offset, event) in (0..).zip(&log) {
        restored
            .restore_event(offset, &event.meta, &event.payload)
            .unwrap();
    }
    for (_, reply) in &replies {
        restored.restore_reply(reply.clone()).unwrap();
    }
    restored.commit().unwrap();
    // The next command gets the next sequence number, and a duplicate of an
    // old one is recognised.
    let next = handle(&mut restored, &envelope(reserve(1)));
    assert_eq!(next.events[0].meta.sequence, 4);
    let (old, old_reply) = &replies[1];
    assert_eq!(&handle(&mut restored, old).reply, old_reply);
}

#[test]
fn outcomes_are_forgotten_past_capacity() {
    let mut store = open(AggregateType::CatalogItem, 2, 1000);
    let first = envelope(create());
    handle(&mut store, &first);
    handle(
        &mut store,
        &envelope(CatalogCommand::Restock { quantity: 1 }),
    );
    handle(
        &mut store,
        &envelope(CatalogCommand::Restock { quantity: 1 }),
    );
    // The creation is forgotten, so the aggregate itself answers the retry.
    let retry = handle(&mut store, &first);
    assert!(matches!(retry.reply.outcome, Outcome::Rejected { .. }));
}

#[test]
fn outcomes_are_forgotten_after_the_window_and_the_newest_kept() {
    let mut store = open(AggregateType::CatalogItem, 1000, 1000);
    let created = envelope(create());
    let long_ago = Utc::now() - chrono::Duration::hours(2);
    store.handle(&created, long_ago).unwrap();
    store.commit().unwrap();
    let restocks: Vec<_> = (0..3)
        .map(|_| envelope(CatalogCommand::Restock { quantity: 1 }))
        .collect();
    for restock in &restocks {
        handle(&mut store, restock);
    }
    // Decided two hours ago, past the hour's window: the aggregate answers.
    let retry = handle(&mut store, &created);
    assert!(matches!(retry.reply.outcome, Outcome::Rejected { .. }));
    // Each restock within the window is still answered as recorded.
    for restock in &restocks {
        let again = handle(&mut store, restock);
        assert!(again.events.is_empty(), "a remembered restock adds nothing");
        assert!(matches!(again.reply.outcome, Outcome::Accepted { .. }));
    }
}

#[test]
fn commands_of_another_aggregate_type_are_refused() {
    let mut store = open(AggregateType::Order, 10, 1000);
    let decision = handle(&mut store, &envelope(create()));
    assert!(matches!(
        decision.reply.outcome,
        Outcome::Rejected { ref code, .. } if code == codes::MALFORMED_COMMAND
    ));
}

#[test]
fn a_command_for_an_unknown_aggregate_leaves_nothing_behind() {
    let mut store = store();
    for sku in ["SKU-404", "SKU-405"] {
        let restock = CommandEnvelope {
            aggregate_id: sku.into(),
            ..envelope(CatalogCommand::Restock { quantity: 1 })
        };
        let decision = handle(&mut store, &restock);
        assert!(decision.events.is_empty());
    }
    assert_eq!(store.in_memory(), 0);
    assert!(store.snapshots(SnapshotPlan::all(0)).unwrap().is_empty());
    // The rejection is remembered, the aggregate is not: creating it later
    // starts at version 1.
    let created = handle(&mut store, &envelope(create()));
    assert_eq!(created.events[0].meta.sequence, 1);
    assert_eq!(store.in_memory(), 1);
}

#[test]
fn cold_aggregates_are_read_back_from_disk() {
    let mut store = open(AggregateType::CatalogItem, 1000, 1);
    for sku in ["SKU-A", "SKU-B", "SKU-C"] {
        let item = CommandEnvelope {
            aggregate_id: sku.into(),
            ..envelope(create())
        };
        handle(&mut store, &item);
    }
    assert_eq!(store.in_memory(), 1, "only the most recent stays in memory");
    let restock = CommandEnvelope {
        aggregate_id: "SKU-A".into(),
        ..envelope(CatalogCommand::Restock { quantity: 2 })
    };
    assert_eq!(handle(&mut store, &restock).events[0].meta.sequence, 2);
}

#[test]
fn carriers_act_only_on_shipments_booked_with_them() {
    use events::domain::ShipmentCommand as C;
    let mut store = open(AggregateType::Shipment, 100, 100);
    let order = Uuid::now_v7().to_string();
    let by = |role, subject: &str, command| CommandEnvelope {
        aggregate_id: order.clone(),
        issued_by: Principal {
            subject: subject.into(),
            role,
        },
        command: DomainCommand::Shipment(command),
        ..envelope(create())
    };
    let address = serde_json::from_value(serde_json::json!({"name": "A", "line1": "B",
        "city": "C", "postal_code": "1", "country": "US"}))
    .unwrap();
    let booked = C::RecordScheduled {
        tracking_ref: "T-1".into(),
        carrier: Some("acme".into()),
    };
    for command in [C::RequestShipment { address }, booked] {
        let decision = handle(&mut store, &by(Role::System, "saga", command));
        assert!(matches!(decision.reply.outcome, Outcome::Accepted { .. }));
    }
    for (role, subject) in [(Role::Carrier, "globex"), (Role::Customer, "acme")] {
        let decision = handle(&mut store, &by(role, subject, C::Dispatch));
        assert!(
            matches!(
                decision.reply.outcome,
                Outcome::Rejected {
                    kind: RejectionKind::NotFound,
                    ..
                }
            ),
            "{subject}"
        );
    }
    // Booked with acme, but not paid for yet: a conflict, nothing recorded.
    let decision = handle(&mut store, &by(Role::Carrier, "acme", C::Dispatch));
    assert!(
        matches!(
            &decision.reply.outcome,
            Outcome::Rejected { kind: RejectionKind::Conflict, code, .. }
                if code == "shipment_not_released"
        ),
        "{:?}",
        decision.reply.outcome
    );
    assert!(decision.events.is_empty());
    // Only the saga releases it, never the carrier itself.
    let decision = handle(&mut store, &by(Role::Carrier, "acme", C::Release));
    assert!(decision.events.is_empty(), "{:?}", decision.reply.outcome);
    let decision = handle(&mut store, &by(Role::System, "saga", C::Release));
    assert_eq!(decision.events.len(), 1, "{:?}", decision.reply.outcome);
    let decision = handle(&mut store, &by(Role::Carrier, "acme", C::Dispatch));
    assert_eq!(decision.events.len(), 1, "{:?}", decision.reply.outcome);
}

mod snapshots;
