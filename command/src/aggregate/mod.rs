//! Aggregates as pure functions: `decide` turns a command into events or a
//! rejection, `evolve` folds an event into the state.
//!
//! Nothing here does I/O or reads a clock; the command processor restores the
//! state by folding the events topic, tracks sequence numbers, checks the
//! expected version, and publishes what `decide` returns.
//!
//! - [`catalog`]: `CatalogItem`, stock and reservations per order
//! - [`order`]: `Order`, lines, pricing and status
//! - [`payment`]: `Payment`, the authorize/capture/void/refund ledger
//! - [`shipment`]: `Shipment`, scheduling, dispatch and delivery

pub mod catalog;
pub mod order;
pub mod payment;
pub mod shipment;

#[cfg(test)]
mod testing;

pub use catalog::CatalogItem;
pub use order::Order;
pub use payment::{Payment, PaymentAction, PaymentLedger};
pub use shipment::Shipment;

/// One event-sourced aggregate: a state, the commands it decides on and the
/// events it evolves by.
///
/// The state before its creation event is `Default`, and every command other
/// than the creating one is rejected there with a not-found rejection.
pub trait Aggregate: Default + Clone + std::fmt::Debug {
    type Command;
    type Event;
    type Rejection;

    /// Pure: no I/O, no clock. Ok(vec![]) means the command was already applied (idempotent).
    fn decide(&self, command: &Self::Command) -> Result<Vec<Self::Event>, Self::Rejection>;

    /// Applies one committed event. Events come from the log and were produced
    /// by `decide`, so `evolve` trusts them and never fails; an event that does
    /// not fit the state leaves it unchanged rather than panicking a processor.
    fn evolve(self, event: &Self::Event) -> Self;

    /// Rebuilds a state from its history, oldest event first.
    fn replay<'a>(events: impl IntoIterator<Item = &'a Self::Event>) -> Self
    where
        Self::Event: 'a,
    {
        events.into_iter().fold(Self::default(), Self::evolve)
    }

    /// Decides on `command` and, when accepted, returns the state with the new
    /// events already applied, as a processor needs for its next command.
    fn handle(self, command: &Self::Command) -> Result<(Self, Vec<Self::Event>), Self::Rejection> {
        let events = self.decide(command)?;
        let state = events.iter().fold(self, Self::evolve);
        Ok((state, events))
    }
}
