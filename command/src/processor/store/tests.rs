use std::time::Duration;

use chrono::Utc;
use events::command::{
    CommandEnvelope, DomainCommand, Outcome, Principal, RejectionKind, Role, codes,
};
use events::domain::{CatalogCommand, CatalogEvent, Currency, Money, OrderId};
use events::message::EventPayload;
use events::{AggregateType, new_id};
use uuid::Uuid;

use super::PartitionStore;

fn store() -> PartitionStore {
    PartitionStore::new(AggregateType::CatalogItem, Duration::from_secs(3600), 1000)
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
    let first = store.handle(&envelope(create()), Utc::now());
    assert_eq!(first.events.len(), 1);
    assert_eq!(first.events[0].meta.sequence, 1);
    assert_eq!(first.events[0].meta.event_type, "ItemCreated");
    assert!(matches!(
        first.reply.outcome,
        Outcome::Accepted { version: 1, .. }
    ));

    let command = envelope(reserve(3));
    let second = store.handle(&command, Utc::now());
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
    store.handle(&envelope(create()), Utc::now());
    let command = envelope(CatalogCommand::Restock { quantity: 5 });
    let first = store.handle(&command, Utc::now());
    let again = store.handle(&command, Utc::now());
    assert_eq!(first.events.len(), 1);
    assert!(again.events.is_empty());
    assert_eq!(again.reply, first.reply);
}

#[test]
fn a_reused_key_with_another_request_is_refused() {
    let mut store = store();
    store.handle(&envelope(create()), Utc::now());
    let command = envelope(CatalogCommand::Restock { quantity: 5 });
    store.handle(&command, Utc::now());
    let other = CommandEnvelope {
        fingerprint: "something else".into(),
        ..command
    };
    let decision = store.handle(&other, Utc::now());
    assert!(decision.events.is_empty());
    assert!(matches!(
        decision.reply.outcome,
        Outcome::Rejected { kind: RejectionKind::Invalid, ref code, .. } if code == codes::IDEMPOTENCY_KEY_REUSED
    ));
}

#[test]
fn a_stale_expected_version_is_a_conflict() {
    let mut store = store();
    store.handle(&envelope(create()), Utc::now());
    let stale = CommandEnvelope {
        expected_version: Some(0),
        ..envelope(CatalogCommand::Restock { quantity: 1 })
    };
    let decision = store.handle(&stale, Utc::now());
    assert!(decision.events.is_empty());
    assert!(matches!(
        decision.reply.outcome,
        Outcome::Rejected { kind: RejectionKind::Conflict, version: 1, ref code, .. } if code == codes::VERSION_CONFLICT
    ));
    let current = CommandEnvelope {
        expected_version: Some(1),
        ..envelope(CatalogCommand::Restock { quantity: 1 })
    };
    assert_eq!(store.handle(&current, Utc::now()).events.len(), 1);
}

#[test]
fn domain_rejections_carry_their_kind_and_code() {
    let mut store = store();
    let decision = store.handle(
        &envelope(CatalogCommand::Restock { quantity: 1 }),
        Utc::now(),
    );
    assert!(decision.events.is_empty());
    assert!(matches!(
        decision.reply.outcome,
        Outcome::Rejected {
            kind: RejectionKind::NotFound,
            ..
        }
    ));
    store.handle(&envelope(create()), Utc::now());
    let decision = store.handle(
        &envelope(CatalogCommand::Restock { quantity: 0 }),
        Utc::now(),
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
    store.handle(&envelope(create()), Utc::now());
    let accepted = (0..100)
        .map(|_| store.handle(&envelope(reserve(1)), Utc::now()))
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
        let decision = live.handle(&command, Utc::now());
        log.extend(decision.events);
        replies.push((command, decision.reply));
    }
    let mut restored = store();
    for event in &log {
        restored.restore_event(&event.meta, &event.payload).unwrap();
    }
    for (_, reply) in &replies {
        restored.restore_reply(reply.clone());
    }
    // The next command gets the next sequence number, and a duplicate of an
    // old one is recognised.
    let next = restored.handle(&envelope(reserve(1)), Utc::now());
    assert_eq!(next.events[0].meta.sequence, 4);
    let (old, old_reply) = &replies[1];
    assert_eq!(&restored.handle(old, Utc::now()).reply, old_reply);
}

#[test]
fn outcomes_are_forgotten_past_capacity() {
    let mut store = PartitionStore::new(AggregateType::CatalogItem, Duration::from_secs(3600), 2);
    let first = envelope(create());
    store.handle(&first, Utc::now());
    store.handle(
        &envelope(CatalogCommand::Restock { quantity: 1 }),
        Utc::now(),
    );
    store.handle(
        &envelope(CatalogCommand::Restock { quantity: 1 }),
        Utc::now(),
    );
    // The creation is forgotten, so the aggregate itself answers the retry.
    let retry = store.handle(&first, Utc::now());
    assert!(matches!(retry.reply.outcome, Outcome::Rejected { .. }));
}

#[test]
fn commands_of_another_aggregate_type_are_refused() {
    let mut store = PartitionStore::new(AggregateType::Order, Duration::from_secs(3600), 10);
    let decision = store.handle(&envelope(create()), Utc::now());
    assert!(matches!(
        decision.reply.outcome,
        Outcome::Rejected { ref code, .. } if code == codes::MALFORMED_COMMAND
    ));
}
