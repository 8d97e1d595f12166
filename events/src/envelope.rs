//! The event envelope: the metadata every event on every topic carries.
//!
//! On Kafka the metadata travels as CloudEvents headers (see [`crate::kafka`])
//! and the record value is the JSON payload alone, so off-the-shelf consumers
//! can read the topics. In PostgreSQL and in the replay tools the envelope is
//! kept whole.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The aggregate (or process) a stream belongs to. Each has its own pair of
/// topics, `<topic>.commands` and `<topic>.events`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AggregateType {
    CatalogItem,
    Order,
    Payment,
    Shipment,
    Saga,
    /// End-to-end pipeline probes: a synthetic write that travels the whole
    /// path (command service -> Kafka -> projector -> query API).
    Probe,
}

impl AggregateType {
    pub const ALL: [AggregateType; 6] = [
        AggregateType::CatalogItem,
        AggregateType::Order,
        AggregateType::Payment,
        AggregateType::Shipment,
        AggregateType::Saga,
        AggregateType::Probe,
    ];

    /// The aggregates the command processors own.
    pub const AGGREGATES: [AggregateType; 4] = [
        AggregateType::CatalogItem,
        AggregateType::Order,
        AggregateType::Payment,
        AggregateType::Shipment,
    ];

    /// The streams that take commands (and so have commands and replies
    /// topics): the aggregates, and the saga for its operator commands.
    pub const COMMANDED: [AggregateType; 5] = [
        AggregateType::CatalogItem,
        AggregateType::Order,
        AggregateType::Payment,
        AggregateType::Shipment,
        AggregateType::Saga,
    ];

    /// The stable name used in topic names and headers.
    pub fn as_str(self) -> &'static str {
        match self {
            AggregateType::CatalogItem => "catalog",
            AggregateType::Order => "orders",
            AggregateType::Payment => "payments",
            AggregateType::Shipment => "shipments",
            AggregateType::Saga => "sagas",
            AggregateType::Probe => "probes",
        }
    }

    pub fn parse(name: &str) -> Option<AggregateType> {
        AggregateType::ALL.into_iter().find(|t| t.as_str() == name)
    }
}

impl std::fmt::Display for AggregateType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Everything about an event except its payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct EventMeta {
    /// UUIDv7: unique and roughly time-ordered.
    pub event_id: Uuid,
    /// The payload's variant name, e.g. `OrderPlaced`.
    pub event_type: String,
    /// Version of the payload schema of this event type, for upcasting.
    pub schema_version: u16,
    pub aggregate_type: AggregateType,
    pub aggregate_id: String,
    /// 1-based position of the event in its aggregate's stream.
    pub sequence: u64,
    pub occurred_at: DateTime<Utc>,
    /// The command whose decision produced this event.
    pub command_id: Uuid,
    /// The business transaction the event belongs to (for an order: its saga).
    pub correlation_id: Uuid,
    /// The message that directly caused this one.
    pub causation_id: Uuid,
    /// W3C trace context, when the cause was traced.
    pub traceparent: Option<String>,
}

/// An event with its metadata; `E` is a typed payload or raw JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Envelope<E> {
    #[serde(flatten)]
    pub meta: EventMeta,
    pub payload: E,
}

/// A fresh UUIDv7 for a new event or command.
pub fn new_id() -> Uuid {
    Uuid::now_v7()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aggregate_type_names_round_trip() {
        for t in AggregateType::ALL {
            assert_eq!(AggregateType::parse(t.as_str()), Some(t));
        }
        assert_eq!(AggregateType::parse("nope"), None);
    }

    #[test]
    fn the_processors_never_take_saga_commands_but_the_bus_hears_their_replies() {
        assert!(!AggregateType::AGGREGATES.contains(&AggregateType::Saga));
        assert!(AggregateType::COMMANDED.contains(&AggregateType::Saga));
        let commanded = |t: &AggregateType| AggregateType::COMMANDED.contains(t);
        assert!(AggregateType::AGGREGATES.iter().all(commanded));
    }

    #[test]
    fn new_ids_are_version_7_and_increase() {
        let a = new_id();
        let b = new_id();
        assert_eq!(a.get_version_num(), 7);
        assert!(a < b);
    }
}
