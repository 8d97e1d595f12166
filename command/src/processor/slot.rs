//! One aggregate of any type with its version: what a partition's store
//! holds, and what a snapshot record carries as JSON.

use events::AggregateType;
use serde::{Deserialize, Serialize};

use crate::aggregate::{CatalogItem, Order, Payment, Shipment};

/// An aggregate's state and how many events it has.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
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
    pub(super) fn new(aggregate: AggregateType) -> Option<Slot> {
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

    /// The state and version as JSON: a snapshot record's value.
    pub fn encode(&self) -> Result<Vec<u8>, events::message::EncodeError> {
        match self {
            Slot::Catalog(v) => events::message::encode(v),
            Slot::Order(v) => events::message::encode(v),
            Slot::Payment(v) => events::message::encode(v),
            Slot::Shipment(v) => events::message::encode(v),
        }
    }

    /// Reads what [`Slot::encode`] wrote for an aggregate of this type.
    pub fn decode(
        aggregate: AggregateType,
        bytes: &[u8],
    ) -> Result<Option<Slot>, serde_json::Error> {
        Ok(Some(match aggregate {
            AggregateType::CatalogItem => Slot::Catalog(serde_json::from_slice(bytes)?),
            AggregateType::Order => Slot::Order(serde_json::from_slice(bytes)?),
            AggregateType::Payment => Slot::Payment(serde_json::from_slice(bytes)?),
            AggregateType::Shipment => Slot::Shipment(serde_json::from_slice(bytes)?),
            AggregateType::Saga | AggregateType::Probe => return Ok(None),
        }))
    }
}
