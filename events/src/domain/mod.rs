//! Domain messages of the four aggregates: the payloads every service reads and
//! writes, and the vocabulary (ids, money, addresses) they are made of.
//!
//! Each aggregate has one file with three closed enums: `XCommand`
//! (imperatives), `XEvent` (past-tense facts) and `XRejection` (why a command
//! changed nothing). Commands and events serialize internally tagged, so the
//! JSON names the variant: `{"type": "OrderPlaced", ...}`.
//!
//! A payload never repeats the id of its own aggregate: the envelope carries
//! the aggregate type, id and sequence. Payloads name other aggregates only,
//! such as the `order_id` of a stock reservation.
//!
//! - [`ids`]: `Sku`, `OrderId`, `CustomerId`
//! - [`money`]: `Currency`, `Money`
//! - [`address`]: the shipping `Address` shared by orders and shipments
//! - [`text`]: bounds on free text (names, reasons, references)
//! - [`catalog`], [`order`], [`payment`], [`shipment`]: one file per aggregate
//! - [`saga`]: the fulfilment saga's events (for its view) and operator commands

pub mod address;
pub mod catalog;
pub mod ids;
pub mod milestone;
pub mod money;
pub mod order;
pub mod payment;
pub mod saga;
pub mod shipment;
pub mod text;

#[cfg(test)]
mod tests;

pub use address::{Address, AddressField};
pub use catalog::{CatalogCommand, CatalogEvent, CatalogRejection, ReservationRejectedReason};
pub use ids::{CustomerId, IdError, OrderId, Sku};
pub use money::{Currency, Money, MoneyError};
pub use order::{OrderCommand, OrderEvent, OrderLine, OrderRejection, OrderStatus, PricedLine};
pub use payment::{PaymentCommand, PaymentEvent, PaymentRejection, PaymentStatus};
pub use saga::{SagaCommand, SagaEvent, SagaProgress, SagaRejection, SagaStatus, StepRecord};
pub use shipment::{ShipmentCommand, ShipmentEvent, ShipmentRejection, ShipmentStatus};
