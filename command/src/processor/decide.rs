//! Deciding one command against one aggregate's state, and folding one
//! committed event into it: the pure part of [`super::store::PartitionStore`],
//! which stamps the aggregate's events with their envelope, and who may act
//! on which aggregate.

use chrono::{DateTime, Utc};
use events::command::{CommandEnvelope, DomainCommand, Outcome, RejectionKind, Role, codes};
use events::domain::{OrderCommand, ShipmentCommand};
use events::message::{DecodeError, EventPayload, Rejection, encode_plain};
use events::{AggregateType, EventMeta, new_id, telemetry};
use rdkafka::Message;
use rdkafka::message::OwnedMessage;

use super::store::{NewEvent, Slot, Versioned};
use crate::aggregate::Aggregate;

pub(super) fn rejected(kind: RejectionKind, code: &str, message: String, version: u64) -> Outcome {
    Outcome::Rejected {
        kind,
        code: code.to_owned(),
        message,
        version,
    }
}

pub(super) fn decide_slot(
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
                // The decide span's context, when traces are exported.
                traceparent: telemetry::current_traceparent(self.envelope.traceparent.as_ref()),
            };
            // Serializing plain data enums to JSON cannot fail.
            let payload = encode_plain(&event).into_bytes();
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

/// The span of one command's decision: a child of the span that sent it
/// (the Kafka headers, or the envelope for records written without them).
pub(super) fn span(message: &OwnedMessage, envelope: &CommandEnvelope) -> tracing::Span {
    let span = tracing::info_span!(
        target: telemetry::TARGET,
        "processor decide",
        otel.name = %format_args!("decide {}", envelope.command.command_type()),
        otel.kind = "consumer",
        messaging.destination.name = message.topic(),
        messaging.kafka.offset = message.offset(),
        command.id = %envelope.command_id,
        aggregate.id = %envelope.aggregate_id,
    );
    telemetry::continue_from_kafka(&span, message.headers(), envelope.traceparent.as_deref());
    span
}

pub(super) fn restore_into<A>(
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

/// A customer acts only on their own orders, and a carrier only on the
/// shipments booked with it (its token's `sub` is the carrier id the booking
/// recorded); neither may learn whether someone else's exists: anything
/// else looks like a missing order.
pub(super) fn visible_to_issuer(slot: &Slot, envelope: &CommandEnvelope) -> bool {
    let subject = envelope.issued_by.subject.as_str();
    match envelope.issued_by.role {
        Role::Customer => match (slot, &envelope.command) {
            (
                Slot::Order(_),
                DomainCommand::Order(OrderCommand::PlaceOrder { customer_id, .. }),
            ) => customer_id.as_str() == subject,
            (Slot::Order(order), DomainCommand::Order(_)) => order
                .state
                .customer_id()
                .is_some_and(|owner| owner.as_str() == subject),
            _ => false,
        },
        Role::Carrier => match (slot, &envelope.command) {
            (
                Slot::Shipment(shipment),
                DomainCommand::Shipment(ShipmentCommand::Dispatch | ShipmentCommand::Deliver),
            ) => shipment.state.carrier() == Some(subject),
            _ => false,
        },
        Role::Admin | Role::System => true,
    }
}

pub(super) fn recorded_version(outcome: &Outcome) -> u64 {
    match outcome {
        Outcome::Accepted { version, .. } | Outcome::Rejected { version, .. } => *version,
    }
}
