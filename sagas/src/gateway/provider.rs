//! What the gateway needs from a payment provider and a carrier. The
//! deterministic sandbox (`super::sandbox`) is the default implementation;
//! a real provider's client implements the same traits.

use std::future::Future;

use events::domain::{Address, Money, OrderId};

/// A call that failed in a way worth retrying (timeouts, 5xx, rate limits).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct Transient(pub String);

/// A payment as the provider knows it.
#[derive(Debug, Clone)]
pub struct PaymentRef {
    pub order_id: OrderId,
    /// The customer's payment token (a card token in production).
    pub token: String,
    /// The provider's reference, once authorized.
    pub provider_ref: Option<String>,
    /// Which try of this request the call is, from 1 (what a real
    /// provider's retry header carries).
    pub attempt: u32,
}

impl PaymentRef {
    /// The same payment, for try number `attempt` of a call.
    pub fn at(&self, attempt: u32) -> PaymentRef {
        PaymentRef {
            attempt,
            ..self.clone()
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Authorization {
    Authorized {
        provider_ref: String,
    },
    Declined {
        reason: String,
    },
    /// The provider took the request and never answered; the saga's
    /// deadline deals with it.
    NoAnswer,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Capture {
    Captured,
    Failed {
        reason: String,
    },
    /// The provider took the request and never answered; the saga's
    /// deadlines retry the capture and then park for an operator.
    NoAnswer,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Booking {
    Scheduled { tracking_ref: String },
    Refused { reason: String },
}

pub trait PaymentProvider: Send + Sync + 'static {
    fn authorize(
        &self,
        payment: &PaymentRef,
        amount: Money,
    ) -> impl Future<Output = Result<Authorization, Transient>> + Send;
    fn capture(
        &self,
        payment: &PaymentRef,
        amount: Money,
    ) -> impl Future<Output = Result<Capture, Transient>> + Send;
    /// Releases an authorization (also one that was never answered).
    fn void(&self, payment: &PaymentRef) -> impl Future<Output = Result<(), Transient>> + Send;
    fn refund(
        &self,
        payment: &PaymentRef,
        amount: Money,
    ) -> impl Future<Output = Result<(), Transient>> + Send;
}

pub trait Carrier: Send + Sync + 'static {
    /// The carrier's id: the `sub` of the tokens it dispatches and delivers with.
    fn id(&self) -> &str;
    fn schedule(
        &self,
        order_id: OrderId,
        address: &Address,
    ) -> impl Future<Output = Result<Booking, Transient>> + Send;
    /// Withdraws a booking (the shipment was cancelled).
    fn cancel(
        &self,
        order_id: OrderId,
        tracking_ref: Option<&str>,
    ) -> impl Future<Output = Result<(), Transient>> + Send;
}
