//! Which saga a consumed record is for, and what it tells that saga.
//!
//! Order, payment and shipment streams are keyed by order id. Catalog events
//! about a reservation name their order; `Restocked` names none, so it is
//! routed back to the saga that sent the `Restock` by its command id. Operator
//! commands on `sagas.commands` are keyed by order id.

use std::collections::HashMap;

use events::command::{CommandEnvelope, DomainCommand};
use events::domain::{CatalogEvent, OrderEvent, OrderId, PaymentEvent, ShipmentEvent, Sku};
use events::message::EventPayload;
use events::record::Record;
use events::{AggregateType, EventMeta, KafkaConfig};
use uuid::Uuid;

use crate::machine::{Input, OrderPlacedFacts};

/// What a record means to the sagas.
#[derive(Debug, Clone)]
pub enum Routed {
    /// An `OrderPlaced`: start its saga (unless it exists).
    Start(OrderPlacedFacts, EventMeta),
    /// An input for the saga of `order_id`, when there is one.
    Feed {
        order_id: Uuid,
        input: Input,
        meta: EventMeta,
    },
    /// A `Restocked` caused by the command `command_id`; its saga is found
    /// through the outbox.
    Restocked {
        command_id: Uuid,
        sku: Sku,
        event: CatalogEvent,
        meta: EventMeta,
    },
    /// An operator's command for the saga of `order_id`.
    Operator {
        order_id: Uuid,
        envelope: Box<CommandEnvelope>,
    },
    /// Nothing a saga reacts to (catalog edits, deliveries of other
    /// processes ...).
    Ignore,
}

/// The topics the worker consumes and what each carries.
#[derive(Debug, Clone)]
pub struct Topics {
    events: HashMap<String, AggregateType>,
    operator: String,
}

impl Topics {
    pub fn new(kafka: &KafkaConfig) -> Topics {
        let events = AggregateType::AGGREGATES
            .into_iter()
            .map(|stream| (kafka.events_topic(stream), stream))
            .collect();
        Topics {
            events,
            operator: kafka.commands_topic(AggregateType::Saga),
        }
    }

    /// The topics that carry the aggregates' answers to the saga's commands.
    pub fn answers(&self) -> Vec<String> {
        let mut topics: Vec<String> = self.events.keys().cloned().collect();
        topics.sort();
        topics
    }

    pub fn all(&self) -> Vec<String> {
        let mut topics: Vec<String> = self.events.keys().cloned().collect();
        topics.push(self.operator.clone());
        topics.sort();
        topics
    }

    /// Reads `record`; an error is a poison record for the dead letters.
    pub fn route(&self, record: &Record) -> Result<Routed, String> {
        if record.topic == self.operator {
            return operator(record);
        }
        let Some(stream) = self.events.get(&record.topic).copied() else {
            return Err(format!("a record of the unexpected topic {}", record.topic));
        };
        let meta = record.meta().map_err(|e| e.to_string())?;
        if meta.aggregate_type != stream {
            return Err(format!(
                "a {} event on the {stream} stream",
                meta.aggregate_type
            ));
        }
        let payload = record.payload.as_deref().ok_or("record has no payload")?;
        match stream {
            AggregateType::CatalogItem => catalog(decode(&meta, payload)?, meta),
            AggregateType::Order => order(decode(&meta, payload)?, meta),
            AggregateType::Payment => {
                let event: PaymentEvent = decode(&meta, payload)?;
                feed(Input::Payment(event), meta)
            }
            AggregateType::Shipment => {
                let event: ShipmentEvent = decode(&meta, payload)?;
                feed(Input::Shipment(event), meta)
            }
            AggregateType::Saga | AggregateType::Probe => Ok(Routed::Ignore),
        }
    }
}

fn decode<E: EventPayload>(meta: &EventMeta, payload: &[u8]) -> Result<E, String> {
    E::decode(meta, payload).map_err(|e| e.to_string())
}

fn order_id_of(meta: &EventMeta) -> Result<Uuid, String> {
    meta.aggregate_id
        .parse::<Uuid>()
        .map_err(|_| format!("{} is not an order id", meta.aggregate_id))
}

fn feed(input: Input, meta: EventMeta) -> Result<Routed, String> {
    let order_id = order_id_of(&meta)?;
    Ok(Routed::Feed {
        order_id,
        input,
        meta,
    })
}

fn order(event: OrderEvent, meta: EventMeta) -> Result<Routed, String> {
    let order_id = order_id_of(&meta)?;
    match OrderPlacedFacts::from_event(OrderId::from(order_id), &event) {
        Some(facts) => Ok(Routed::Start(facts, meta)),
        None => feed(Input::Order(event), meta),
    }
}

fn catalog(event: CatalogEvent, meta: EventMeta) -> Result<Routed, String> {
    let sku = Sku::new(meta.aggregate_id.clone()).map_err(|e| e.to_string())?;
    let order_id = match &event {
        CatalogEvent::StockReserved { order_id, .. }
        | CatalogEvent::StockReservationRejected { order_id, .. }
        | CatalogEvent::StockReleased { order_id, .. }
        | CatalogEvent::StockCommitted { order_id, .. } => *order_id.as_uuid(),
        CatalogEvent::Restocked { .. } => {
            return Ok(Routed::Restocked {
                command_id: meta.command_id,
                sku,
                event,
                meta,
            });
        }
        CatalogEvent::ItemCreated { .. } | CatalogEvent::PriceChanged { .. } => {
            return Ok(Routed::Ignore);
        }
    };
    Ok(Routed::Feed {
        order_id,
        input: Input::Catalog {
            sku,
            event,
            sequence: meta.sequence,
        },
        meta,
    })
}

fn operator(record: &Record) -> Result<Routed, String> {
    let payload = record.payload.as_deref().ok_or("record has no payload")?;
    let envelope: CommandEnvelope = serde_json::from_slice(payload)
        .map_err(|e| format!("an unreadable operator command: {e}"))?;
    if !matches!(envelope.command, DomainCommand::Saga(_)) {
        return Err(format!(
            "a {} command on the saga commands topic",
            envelope.command.command_type()
        ));
    }
    let order_id = envelope
        .aggregate_id
        .parse::<Uuid>()
        .map_err(|_| format!("{} is not an order id", envelope.aggregate_id))?;
    Ok(Routed::Operator {
        order_id,
        envelope: Box::new(envelope),
    })
}
