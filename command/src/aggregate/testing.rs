//! A given/when/then harness for aggregates, in the style of cqrs-es's
//! `TestFramework`:
//!
//! ```text
//! given([placed()]).when(OrderCommand::ConfirmOrder).then_rejects(NotPriced);
//! ```
//!
//! Every `when` also decides twice and compares the results, so a `decide`
//! that is accidentally impure (a clock, a random number) fails every test.

use std::fmt::Debug;

use events::domain::catalog::CatalogEvent;
use events::domain::order::OrderEvent;
use events::domain::payment::PaymentEvent;
use events::domain::shipment::ShipmentEvent;

use super::{Aggregate, CatalogItem, Order, Payment, Shipment};

/// A state built from past events, waiting for a command.
pub struct Given<A: Aggregate> {
    state: A,
}

/// The outcome of one command on a given state.
pub struct Then<A: Aggregate> {
    state: A,
    command: A::Command,
    result: Result<Vec<A::Event>, A::Rejection>,
}

/// Names the aggregate an event type belongs to, so that `given(events)`
/// needs no type annotation.
pub trait EventOf: Sized {
    type Aggregate: Aggregate<Event = Self>;
}

impl EventOf for CatalogEvent {
    type Aggregate = CatalogItem;
}

impl EventOf for OrderEvent {
    type Aggregate = Order;
}

impl EventOf for PaymentEvent {
    type Aggregate = Payment;
}

impl EventOf for ShipmentEvent {
    type Aggregate = Shipment;
}

/// Starts a scenario from the fold of `events`.
pub fn given<E: EventOf>(events: impl IntoIterator<Item = E>) -> Given<E::Aggregate> {
    let events: Vec<E> = events.into_iter().collect();
    Given {
        state: E::Aggregate::replay(&events),
    }
}

/// Starts a scenario from an aggregate that does not exist yet.
pub fn given_nothing<A: Aggregate>() -> Given<A> {
    Given {
        state: A::default(),
    }
}

impl<A> Given<A>
where
    A: Aggregate,
    A::Event: PartialEq + Debug,
    A::Rejection: PartialEq + Debug,
{
    #[track_caller]
    pub fn when(self, command: A::Command) -> Then<A> {
        let result = self.state.decide(&command);
        assert_eq!(
            result,
            self.state.decide(&command),
            "decide must be deterministic"
        );
        Then {
            state: self.state,
            command,
            result,
        }
    }
}

impl<A> Then<A>
where
    A: Aggregate,
    A::Event: PartialEq + Debug,
    A::Rejection: PartialEq + Debug,
{
    /// Asserts the command was accepted with exactly `expected`.
    #[track_caller]
    pub fn then_events(self, expected: impl IntoIterator<Item = A::Event>) -> Self {
        let expected: Vec<A::Event> = expected.into_iter().collect();
        assert_eq!(self.result, Ok(expected));
        self
    }

    /// Asserts the command was accepted as already applied: no events.
    #[track_caller]
    pub fn then_no_events(self) -> Self {
        self.then_events([])
    }

    /// Asserts the command was refused with `expected`.
    #[track_caller]
    pub fn then_rejects(self, expected: A::Rejection) -> Self {
        assert_eq!(self.result, Err(expected));
        self
    }

    /// Asserts something about the state after the produced events.
    #[track_caller]
    pub fn then_state(self, check: impl FnOnce(&A)) -> Self {
        check(&self.next_state());
        self
    }

    /// Asserts that sending the same command again, after its events were
    /// applied, changes nothing: the property that makes retries safe.
    #[track_caller]
    pub fn then_repeat_is_noop(self) -> Self {
        let again = self.next_state().decide(&self.command);
        assert_eq!(again, Ok(vec![]), "repeating {:?}", self.result);
        self
    }

    fn next_state(&self) -> A {
        match &self.result {
            Ok(events) => events.iter().fold(self.state.clone(), A::evolve),
            Err(_) => self.state.clone(),
        }
    }
}
