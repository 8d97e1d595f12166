//! The processor's in-memory state of one partition: every aggregate of the
//! partition with its version, and the recent outcomes by command id.
//!
//! [`PartitionStore::handle`] is the heart of the write side and does no I/O:
//! it checks for duplicates and stale versions, lets the aggregate decide,
//! stamps the events with their envelope, and returns what to publish.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use chrono::{DateTime, Utc};
use events::command::{CommandEnvelope, DomainCommand, Outcome, RejectionKind, Reply, Role, codes};
use events::domain::OrderCommand;
use events::message::{DecodeError, EventPayload, Rejection};
use events::{AggregateType, EventMeta, new_id};

use crate::aggregate::{Aggregate, CatalogItem, Order, Payment, Shipment};

/// An aggregate's state and how many events it has.
#[derive(Debug, Clone, Default)]
pub struct Versioned<A> {
    pub state: A,
    pub version: u64,
}

/// One aggregate of any type. A partition of one commands topic only holds
/// aggregates of that topic's type.
#[derive(Debug, Clone)]
pub enum Slot {
    Catalog(Versioned<CatalogItem>),
    Order(Versioned<Order>),
    Payment(Versioned<Payment>),
    Shipment(Versioned<Shipment>),
}

impl Slot {
    fn new(aggregate: AggregateType) -> Option<Slot> {
        Some(match aggregate {
            AggregateType::CatalogItem => Slot::Catalog(Versioned::default()),
            AggregateType::Order => Slot::Order(Versioned::default()),
            AggregateType::Payment => Slot::Payment(Versioned::default()),
            AggregateType::Shipment => Slot::Shipment(Versioned::default()),
            AggregateType::Saga | AggregateType::Probe => return None,
        })
    }

    pub fn version(&self) -> u64 {
        match self {
            Slot::Catalog(v) => v.version,
            Slot::Order(v) => v.version,
            Slot::Payment(v) => v.version,
            Slot::Shipment(v) => v.version,
        }
    }
}

/// A serialized event ready to publish.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub meta: EventMeta,
    pub payload: Vec<u8>,
}

/// What a command produced: the events to append (possibly none) and the reply.
#[derive(Debug, Clone)]
pub struct Decision {
    pub events: Vec<NewEvent>,
    pub reply: Reply,
}

/// Outcomes by command id, forgotten after a window (or past a count) so
/// memory stays bounded. A retry inside the window gets the recorded reply.
#[derive(Debug)]
struct Outcomes {
    by_id: HashMap<uuid::Uuid, Reply>,
    order: VecDeque<(uuid::Uuid, DateTime<Utc>)>,
    window: Duration,
    capacity: usize,
}

impl Outcomes {
    fn record(&mut self, reply: Reply) {
        let id = reply.command_id;
        let at = reply.processed_at;
        if self.by_id.insert(id, reply).is_none() {
            self.order.push_back((id, at));
        }
        let horizon = at - chrono::Duration::from_std(self.window).unwrap_or(chrono::Duration::MAX);
        while let Some((old, when)) = self.order.front().copied() {
            if self.order.len() <= self.capacity && when >= horizon {
                break;
            }
            self.order.pop_front();
            self.by_id.remove(&old);
        }
    }
}

/// Every aggregate of one partition, plus its recent outcomes.
#[derive(Debug)]
pub struct PartitionStore {
    aggregate: AggregateType,
    slots: HashMap<String, Slot>,
    outcomes: Outcomes,
}

impl PartitionStore {
    pub fn new(aggregate: AggregateType, window: Duration, capacity: usize) -> PartitionStore {
        PartitionStore {
            aggregate,
            slots: HashMap::new(),
            outcomes: Outcomes {
                by_id: HashMap::new(),
                order: VecDeque::new(),
                window,
                capacity,
            },
        }
    }

    pub fn aggregate_count(&self) -> usize {
        self.slots.len()
    }

    /// Folds one committed event of this partition into its aggregate.
    pub fn restore_event(&mut self, meta: &EventMeta, payload: &[u8]) -> Result<(), DecodeError> {
        let Some(slot) = self.slot(&meta.aggregate_id) else {
            return Ok(());
        };
        match slot {
            Slot::Catalog(v) => restore_into(v, meta, payload),
            Slot::Order(v) => restore_into(v, meta, payload),
            Slot::Payment(v) => restore_into(v, meta, payload),
            Slot::Shipment(v) => restore_into(v, meta, payload),
        }
    }

    /// Remembers a committed reply, so a duplicate of its command is answered alike.
    pub fn restore_reply(&mut self, reply: Reply) {
        self.outcomes.record(reply);
    }

    fn slot(&mut self, id: &str) -> Option<&mut Slot> {
        if !self.slots.contains_key(id) {
            let slot = Slot::new(self.aggregate)?;
            self.slots.insert(id.to_owned(), slot);
        }
        self.slots.get_mut(id)
    }

    /// Decides one command against the current state and applies the result
    /// to it. The caller publishes the decision in a Kafka transaction and,
    /// if that fails, throws this store away and restores it from the log.
    pub fn handle(&mut self, envelope: &CommandEnvelope, now: DateTime<Utc>) -> Decision {
        let aggregate = self.aggregate;
        let reply = |outcome| Reply {
            command_id: envelope.command_id,
            aggregate_type: aggregate,
            aggregate_id: envelope.aggregate_id.clone(),
            fingerprint: envelope.fingerprint.clone(),
            outcome,
            processed_at: now,
        };
        if let Some(recorded) = self.outcomes.by_id.get(&envelope.command_id) {
            let reply = if recorded.fingerprint == envelope.fingerprint {
                recorded.clone()
            } else {
                let version = recorded_version(&recorded.outcome);
                reply(rejected(
                    RejectionKind::Invalid,
                    codes::IDEMPOTENCY_KEY_REUSED,
                    "the idempotency key was already used for a different request".into(),
                    version,
                ))
            };
            return Decision {
                events: Vec::new(),
                reply,
            };
        }
        let Some(slot) = self.slot(&envelope.aggregate_id) else {
            let outcome = rejected(
                RejectionKind::Invalid,
                codes::MALFORMED_COMMAND,
                format!("{aggregate} takes no commands"),
                0,
            );
            return Decision {
                events: Vec::new(),
                reply: reply(outcome),
            };
        };
        let version = slot.version();
        let (events, outcome) = match envelope.expected_version {
            _ if !visible_to_issuer(slot, envelope) => (
                Vec::new(),
                rejected(
                    RejectionKind::NotFound,
                    "not_found",
                    "order not found".into(),
                    0,
                ),
            ),
            Some(expected) if expected != version => (
                Vec::new(),
                rejected(
                    RejectionKind::Conflict,
                    codes::VERSION_CONFLICT,
                    format!("expected version {expected}, but the current version is {version}"),
                    version,
                ),
            ),
            _ => decide_slot(slot, aggregate, envelope, now),
        };
        let reply = reply(outcome);
        self.outcomes.record(reply.clone());
        Decision { events, reply }
    }
}

/// A customer acts only on their own orders, and must not learn whether
/// someone else's exists: anything else looks like a missing order.
fn visible_to_issuer(slot: &Slot, envelope: &CommandEnvelope) -> bool {
    if envelope.issued_by.role != Role::Customer {
        return true;
    }
    let subject = envelope.issued_by.subject.as_str();
    match (slot, &envelope.command) {
        (Slot::Order(_), DomainCommand::Order(OrderCommand::PlaceOrder { customer_id, .. })) => {
            customer_id.as_str() == subject
        }
        (Slot::Order(order), DomainCommand::Order(_)) => order
            .state
            .customer_id()
            .is_some_and(|owner| owner.as_str() == subject),
        _ => false,
    }
}

fn recorded_version(outcome: &Outcome) -> u64 {
    match outcome {
        Outcome::Accepted { version, .. } | Outcome::Rejected { version, .. } => *version,
    }
}

fn rejected(kind: RejectionKind, code: &str, message: String, version: u64) -> Outcome {
    Outcome::Rejected {
        kind,
        code: code.to_owned(),
        message,
        version,
    }
}

fn decide_slot(
    slot: &mut Slot,
    aggregate: AggregateType,
    envelope: &CommandEnvelope,
    now: DateTime<Utc>,
) -> (Vec<NewEvent>, Outcome) {
    let stamp = Stamp {
        aggregate,
        envelope,
        now,
    };
    match (slot, &envelope.command) {
        (Slot::Catalog(v), DomainCommand::CatalogItem(c)) => stamp.decide(v, c),
        (Slot::Order(v), DomainCommand::Order(c)) => stamp.decide(v, c),
        (Slot::Payment(v), DomainCommand::Payment(c)) => stamp.decide(v, c),
        (Slot::Shipment(v), DomainCommand::Shipment(c)) => stamp.decide(v, c),
        (slot, command) => {
            let message = format!(
                "a {} command was sent to the {aggregate} topic",
                command.aggregate_type()
            );
            (
                Vec::new(),
                rejected(
                    RejectionKind::Invalid,
                    codes::MALFORMED_COMMAND,
                    message,
                    slot.version(),
                ),
            )
        }
    }
}

/// Everything needed to wrap a decision's events in envelopes.
struct Stamp<'a> {
    aggregate: AggregateType,
    envelope: &'a CommandEnvelope,
    now: DateTime<Utc>,
}

impl Stamp<'_> {
    fn decide<A>(&self, slot: &mut Versioned<A>, command: &A::Command) -> (Vec<NewEvent>, Outcome)
    where
        A: Aggregate,
        A::Event: EventPayload,
        A::Rejection: Rejection,
    {
        let events = match slot.state.decide(command) {
            Ok(events) => events,
            Err(rejection) => {
                let outcome = rejected(
                    rejection.kind(),
                    rejection.code(),
                    rejection.to_string(),
                    slot.version,
                );
                return (Vec::new(), outcome);
            }
        };
        let mut published = Vec::with_capacity(events.len());
        let mut types = Vec::with_capacity(events.len());
        for event in events {
            slot.version += 1;
            let meta = EventMeta {
                event_id: new_id(),
                event_type: event.event_type().to_owned(),
                schema_version: A::Event::SCHEMA_VERSION,
                aggregate_type: self.aggregate,
                aggregate_id: self.envelope.aggregate_id.clone(),
                sequence: slot.version,
                occurred_at: self.now,
                command_id: self.envelope.command_id,
                correlation_id: self.envelope.correlation_id,
                causation_id: self.envelope.command_id,
                traceparent: self.envelope.traceparent.clone(),
            };
            // Serializing plain data enums to JSON cannot fail.
            let payload = serde_json::to_vec(&event).unwrap_or_default();
            types.push(meta.event_type.clone());
            slot.state = std::mem::take(&mut slot.state).evolve(&event);
            published.push(NewEvent { meta, payload });
        }
        let outcome = Outcome::Accepted {
            version: slot.version,
            events: types,
        };
        (published, outcome)
    }
}

fn restore_into<A>(
    slot: &mut Versioned<A>,
    meta: &EventMeta,
    payload: &[u8],
) -> Result<(), DecodeError>
where
    A: Aggregate,
    A::Event: EventPayload,
{
    let event = A::Event::decode(meta, payload)?;
    slot.state = std::mem::take(&mut slot.state).evolve(&event);
    slot.version = meta.sequence;
    Ok(())
}

#[cfg(test)]
mod tests;
