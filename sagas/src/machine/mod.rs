//! The pure state machine of the order fulfilment saga.
//!
//! [`start`] turns an `OrderPlaced` into a [`Saga`] and its first commands;
//! [`Saga::handle`] folds one [`Input`] (an event of one of the four
//! aggregates, a fired deadline, or an operator's decision) into the state and
//! returns the commands to send. Nothing here does I/O or reads a clock: the
//! worker passes `now`, stores the saga as JSON, writes the returned commands
//! to its outbox and arms a timer for [`Saga::deadline`].
//!
//! The saga keeps the facts it has observed about every aggregate (which lines
//! are reserved, whether the payment is authorized, ...) separately from the
//! step it is in, and derives both its next step and its commands from those
//! facts. That makes duplicated and reordered events harmless: an event that
//! teaches nothing new changes nothing, and a late one (a reservation arriving
//! after the saga decided to compensate) is simply one more fact to undo.
//!
//! - [`state`]: the saga state, its observed facts and step history
//! - `observe`: folding events into the facts
//! - `transitions`: choosing the next step from the facts
//! - `commands`: the commands each step needs, and their deterministic ids
//! - `compensation`: how a step is undone

mod commands;
mod compensation;
mod observe;
pub mod state;
mod transitions;

#[cfg(test)]
pub(crate) mod tests;

use chrono::{DateTime, Utc};
use events::command::DomainCommand;
use events::domain::{
    Address, CatalogEvent, Currency, CustomerId, OrderEvent, OrderId, OrderLine, PaymentEvent,
    ShipmentEvent, Sku,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use commands::command_id;
pub use events::domain::{SagaStatus, StepRecord};
pub use state::{Pace, Saga};
pub use transitions::{MAX_CAPTURE_ATTEMPTS, MAX_FORWARD_ATTEMPTS, MAX_SETTLING_ATTEMPTS};

/// What the saga needs to know about an order, taken from its `OrderPlaced`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderPlacedFacts {
    pub order_id: OrderId,
    pub customer_id: CustomerId,
    pub currency: Currency,
    pub lines: Vec<OrderLine>,
    pub shipping_address: Address,
    pub payment_token: String,
}

impl OrderPlacedFacts {
    /// The facts of `event` when it is an `OrderPlaced` of order `order_id`.
    pub fn from_event(order_id: OrderId, event: &OrderEvent) -> Option<Self> {
        match event {
            OrderEvent::OrderPlaced {
                customer_id,
                currency,
                lines,
                shipping_address,
                payment_token,
            } => Some(Self {
                order_id,
                customer_id: customer_id.clone(),
                currency: *currency,
                lines: lines.clone(),
                shipping_address: shipping_address.clone(),
                payment_token: payment_token.clone(),
            }),
            _ => None,
        }
    }
}

/// Something the saga reacts to. Events are those of this saga's order only:
/// the worker routes catalog events by their `order_id` and the others by
/// their aggregate id. Operator inputs only act on a saga in
/// `needs_attention`; elsewhere they change nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Input {
    Catalog {
        sku: Sku,
        event: CatalogEvent,
        /// The event's position in the SKU's stream (`EventMeta::sequence`):
        /// the same for a redelivery, different for another event. It names
        /// the release of a stray reservation (see `compensation`).
        #[serde(default)]
        sequence: u64,
    },
    Order(OrderEvent),
    Payment(PaymentEvent),
    Shipment(ShipmentEvent),
    /// The timer found `deadline()` passed; stale firings are ignored.
    DeadlineFired,
    /// An operator asks a parked saga to try its pending step again.
    OperatorRetry,
    /// An operator settled a parked saga by hand.
    OperatorResolve {
        note: String,
    },
}

/// A command the saga wants sent, with an id that is the same every time the
/// same transition is computed (see `commands::command_id`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outgoing {
    pub command_id: Uuid,
    pub aggregate_id: String,
    pub command: DomainCommand,
}

/// Starts the saga of a freshly placed order: reserve stock for every line.
pub fn start(order: &OrderPlacedFacts, pace: Pace, now: DateTime<Utc>) -> (Saga, Vec<Outgoing>) {
    let mut saga = Saga::new(order.clone(), pace, now);
    let outgoing = saga.progress(now);
    (saga, outgoing)
}

/// Refuses a freshly placed order before anything is reserved: the saga goes
/// straight to the compensation that closes the order with `RejectOrder`
/// (`reason`), as nothing was reserved, authorized or booked.
pub fn refuse(
    order: &OrderPlacedFacts,
    reason: &str,
    pace: Pace,
    now: DateTime<Utc>,
) -> (Saga, Vec<Outgoing>) {
    let mut saga = Saga::new(order.clone(), pace, now);
    let outgoing = saga.refuse(reason, now);
    (saga, outgoing)
}

/// Why an order was refused because its customer has too many open orders.
pub const TOO_MANY_OPEN_ORDERS: &str = "too_many_open_orders";

/// Reason given to `RejectOrder` / `CancelOrder` when the customer asked to cancel.
pub const CANCELLED_BY_CUSTOMER: &str = "cancelled_by_customer";
