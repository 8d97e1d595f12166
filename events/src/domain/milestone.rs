//! The milestones of an order's way to `confirmed`, as marked by the events
//! of its four streams: one mapping, used by the benchmark's end-to-end
//! phase and by the tests that check the pivot rule and print per-hop
//! latency.

use uuid::Uuid;

use super::{CatalogEvent, OrderEvent, PaymentEvent, ShipmentEvent};
use crate::message::EventPayload;
use crate::{AggregateType, EventMeta};

/// The milestones of a `tok_ok` order, in the order of the README's saga.
pub const NAMES: [&str; 8] = [
    "placed",
    "reserved",
    "priced",
    "authorized",
    "scheduled",
    "captured",
    "committed",
    "confirmed",
];

/// The event streams whose events mark milestones.
pub const STREAMS: [AggregateType; 4] = [
    AggregateType::Order,
    AggregateType::Payment,
    AggregateType::Shipment,
    AggregateType::CatalogItem,
];

/// What one event tells about its order's progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mark {
    pub order_id: Uuid,
    /// The index in [`NAMES`] of the milestone the event marks, if any.
    pub milestone: Option<usize>,
    /// Confirmed (true) or rejected or cancelled (false), when the event
    /// settles the order.
    pub outcome: Option<bool>,
}

/// The mark of an event of the order, payment, shipment or catalog streams;
/// `None` for other events and for records that do not decode.
pub fn mark(meta: &EventMeta, payload: &[u8]) -> Option<Mark> {
    let index = |name: &str| NAMES.iter().position(|n| *n == name);
    let this_order = || meta.aggregate_id.parse::<Uuid>().ok();
    let (order_id, milestone, outcome) = match meta.aggregate_type {
        AggregateType::Order => match OrderEvent::decode(meta, payload).ok()? {
            OrderEvent::OrderPlaced { .. } => (this_order()?, index("placed"), None),
            OrderEvent::OrderPriced { .. } => (this_order()?, index("priced"), None),
            OrderEvent::OrderConfirmed => (this_order()?, index("confirmed"), Some(true)),
            OrderEvent::OrderRejected { .. } | OrderEvent::OrderCancelled { .. } => {
                (this_order()?, None, Some(false))
            }
            _ => return None,
        },
        AggregateType::Payment => match PaymentEvent::decode(meta, payload).ok()? {
            PaymentEvent::PaymentAuthorized { .. } => (this_order()?, index("authorized"), None),
            PaymentEvent::PaymentCaptured { .. } => (this_order()?, index("captured"), None),
            _ => return None,
        },
        AggregateType::Shipment => match ShipmentEvent::decode(meta, payload).ok()? {
            ShipmentEvent::ShipmentScheduled { .. } => (this_order()?, index("scheduled"), None),
            _ => return None,
        },
        AggregateType::CatalogItem => match CatalogEvent::decode(meta, payload).ok()? {
            CatalogEvent::StockReserved { order_id, .. } => {
                (*order_id.as_uuid(), index("reserved"), None)
            }
            CatalogEvent::StockCommitted { order_id, .. } => {
                (*order_id.as_uuid(), index("committed"), None)
            }
            _ => return None,
        },
        _ => return None,
    };
    Some(Mark {
        order_id,
        milestone,
        outcome,
    })
}
