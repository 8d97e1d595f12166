//! The Order aggregate: what the customer asked for, what it costs, and where
//! the order is in `pending -> confirmed -> shipped -> delivered` (or ended
//! `rejected` / `cancelled`).
//!
//! Prices never come from the client. The saga prices the order from the stock
//! reservations, and `PriceOrder` is accepted only when it matches the placed
//! lines exactly and its total is the checked sum of the lines.

use events::domain::address::Address;
use events::domain::ids::CustomerId;
use events::domain::money::{Currency, Money};
use events::domain::order::{
    OrderCommand, OrderEvent, OrderLine, OrderRejection, OrderStatus, PricedLine,
};
use events::domain::text::is_valid_reference;

use super::Aggregate;
use validation::{check_lines, check_reason};

mod validation;

#[cfg(test)]
mod fixtures;
#[cfg(test)]
mod lifecycle_tests;
#[cfg(test)]
mod tests;

type Decision = Result<Vec<OrderEvent>, OrderRejection>;

/// State of one order.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Order {
    placed: Option<PlacedOrder>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct PlacedOrder {
    customer_id: CustomerId,
    currency: Currency,
    lines: Vec<OrderLine>,
    shipping_address: Address,
    payment_token: String,
    status: OrderStatus,
    pricing: Option<Pricing>,
    cancellation_request: Option<String>,
    closing_reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Pricing {
    lines: Vec<PricedLine>,
    total: Money,
}

impl Order {
    pub fn exists(&self) -> bool {
        self.placed.is_some()
    }

    pub fn status(&self) -> Option<OrderStatus> {
        self.placed.as_ref().map(|o| o.status)
    }

    pub fn customer_id(&self) -> Option<&CustomerId> {
        self.placed.as_ref().map(|o| &o.customer_id)
    }

    pub fn currency(&self) -> Option<Currency> {
        self.placed.as_ref().map(|o| o.currency)
    }

    /// The lines as placed; empty before the order exists.
    pub fn lines(&self) -> &[OrderLine] {
        self.placed.as_ref().map_or(&[], |o| &o.lines)
    }

    pub fn shipping_address(&self) -> Option<&Address> {
        self.placed.as_ref().map(|o| &o.shipping_address)
    }

    pub fn payment_token(&self) -> Option<&str> {
        self.placed.as_ref().map(|o| o.payment_token.as_str())
    }

    pub fn is_priced(&self) -> bool {
        self.pricing().is_some()
    }

    /// The priced lines in placed order; empty until the order is priced.
    pub fn priced_lines(&self) -> &[PricedLine] {
        self.pricing().map_or(&[], |p| &p.lines)
    }

    pub fn total(&self) -> Option<Money> {
        self.pricing().map(|p| p.total)
    }

    /// The customer's pending cancellation reason, until the order is rejected,
    /// cancelled or shipped.
    pub fn cancellation_requested(&self) -> Option<&str> {
        self.placed.as_ref()?.cancellation_request.as_deref()
    }

    /// Why the order was rejected or cancelled.
    pub fn closing_reason(&self) -> Option<&str> {
        self.placed.as_ref()?.closing_reason.as_deref()
    }

    fn pricing(&self) -> Option<&Pricing> {
        self.placed.as_ref()?.pricing.as_ref()
    }

    fn existing(&self) -> Result<&PlacedOrder, OrderRejection> {
        self.placed.as_ref().ok_or(OrderRejection::NotFound)
    }

    fn place(
        &self,
        customer_id: &CustomerId,
        currency: Currency,
        lines: &[OrderLine],
        shipping_address: &Address,
        payment_token: &str,
    ) -> Decision {
        check_lines(lines)?;
        shipping_address
            .validate()
            .map_err(|field| OrderRejection::InvalidAddress { field })?;
        if !is_valid_reference(payment_token) {
            return Err(OrderRejection::InvalidPaymentToken);
        }
        let placed = OrderEvent::OrderPlaced {
            customer_id: customer_id.clone(),
            currency,
            lines: lines.to_vec(),
            shipping_address: shipping_address.clone(),
            payment_token: payment_token.to_owned(),
        };
        match &self.placed {
            None => Ok(vec![placed]),
            // The id derives from the idempotency key, so the same content
            // again is a retry; different content under it is a conflict.
            Some(existing) if existing.placed_event() == placed => Ok(vec![]),
            Some(_) => Err(OrderRejection::AlreadyPlaced),
        }
    }
}

impl PlacedOrder {
    fn price(&self, lines: &[PricedLine], total: Money) -> Decision {
        let pricing = self.check_pricing(lines, total)?;
        match &self.pricing {
            Some(existing) if *existing == pricing => Ok(vec![]),
            Some(_) => Err(OrderRejection::AlreadyPriced),
            None if self.status != OrderStatus::Pending => Err(OrderRejection::NotPending {
                status: self.status,
            }),
            None => Ok(vec![OrderEvent::OrderPriced {
                lines: pricing.lines,
                total: pricing.total,
            }]),
        }
    }

    fn confirm(&self) -> Decision {
        use OrderStatus::*;
        match self.status {
            Pending if self.pricing.is_none() => Err(OrderRejection::NotPriced),
            Pending => Ok(vec![OrderEvent::OrderConfirmed]),
            Confirmed | Shipped | Delivered => Ok(vec![]),
            Rejected | Cancelled => Err(OrderRejection::Closed {
                status: self.status,
            }),
        }
    }

    fn reject(&self, reason: &str) -> Decision {
        use OrderStatus::*;
        check_reason(reason)?;
        match self.status {
            Pending => Ok(vec![OrderEvent::OrderRejected {
                reason: reason.to_owned(),
            }]),
            Rejected => Ok(vec![]),
            Confirmed | Shipped | Delivered => Err(OrderRejection::NotPending {
                status: self.status,
            }),
            Cancelled => Err(OrderRejection::Closed {
                status: self.status,
            }),
        }
    }

    fn request_cancellation(&self, reason: &str) -> Decision {
        use OrderStatus::*;
        check_reason(reason)?;
        match self.status {
            Pending | Confirmed if self.cancellation_request.is_some() => Ok(vec![]),
            Pending | Confirmed => Ok(vec![OrderEvent::OrderCancellationRequested {
                reason: reason.to_owned(),
            }]),
            Shipped | Delivered => Err(OrderRejection::AlreadyShipped {
                status: self.status,
            }),
            Rejected | Cancelled => Err(OrderRejection::Closed {
                status: self.status,
            }),
        }
    }

    fn cancel(&self, reason: &str) -> Decision {
        use OrderStatus::*;
        check_reason(reason)?;
        match self.status {
            Confirmed => Ok(vec![OrderEvent::OrderCancelled {
                reason: reason.to_owned(),
            }]),
            Cancelled => Ok(vec![]),
            Pending => Err(OrderRejection::NotConfirmed {
                status: self.status,
            }),
            Shipped | Delivered => Err(OrderRejection::AlreadyShipped {
                status: self.status,
            }),
            Rejected => Err(OrderRejection::Closed {
                status: self.status,
            }),
        }
    }

    fn mark_shipped(&self) -> Decision {
        use OrderStatus::*;
        match self.status {
            Confirmed => Ok(vec![OrderEvent::OrderShipped]),
            Shipped | Delivered => Ok(vec![]),
            Pending => Err(OrderRejection::NotConfirmed {
                status: self.status,
            }),
            Rejected | Cancelled => Err(OrderRejection::Closed {
                status: self.status,
            }),
        }
    }

    fn mark_delivered(&self) -> Decision {
        use OrderStatus::*;
        match self.status {
            Shipped => Ok(vec![OrderEvent::OrderDelivered]),
            Delivered => Ok(vec![]),
            Pending | Confirmed => Err(OrderRejection::NotShipped {
                status: self.status,
            }),
            Rejected | Cancelled => Err(OrderRejection::Closed {
                status: self.status,
            }),
        }
    }
}

impl Aggregate for Order {
    type Command = OrderCommand;
    type Event = OrderEvent;
    type Rejection = OrderRejection;

    fn decide(&self, command: &OrderCommand) -> Decision {
        match command {
            OrderCommand::PlaceOrder {
                customer_id,
                currency,
                lines,
                shipping_address,
                payment_token,
            } => self.place(
                customer_id,
                *currency,
                lines,
                shipping_address,
                payment_token,
            ),
            OrderCommand::PriceOrder { lines, total } => self.existing()?.price(lines, *total),
            OrderCommand::ConfirmOrder => self.existing()?.confirm(),
            OrderCommand::RejectOrder { reason } => self.existing()?.reject(reason),
            OrderCommand::RequestCancellation { reason } => {
                self.existing()?.request_cancellation(reason)
            }
            OrderCommand::CancelOrder { reason } => self.existing()?.cancel(reason),
            OrderCommand::MarkShipped => self.existing()?.mark_shipped(),
            OrderCommand::MarkDelivered => self.existing()?.mark_delivered(),
        }
    }

    fn evolve(mut self, event: &OrderEvent) -> Self {
        if let OrderEvent::OrderPlaced {
            customer_id,
            currency,
            lines,
            shipping_address,
            payment_token,
        } = event
        {
            self.placed = Some(PlacedOrder {
                customer_id: customer_id.clone(),
                currency: *currency,
                lines: lines.clone(),
                shipping_address: shipping_address.clone(),
                payment_token: payment_token.clone(),
                status: OrderStatus::Pending,
                pricing: None,
                cancellation_request: None,
                closing_reason: None,
            });
        } else if let Some(order) = &mut self.placed {
            order.apply(event);
        }
        self
    }
}

impl PlacedOrder {
    fn apply(&mut self, event: &OrderEvent) {
        match event {
            OrderEvent::OrderPlaced { .. } => {}
            OrderEvent::OrderPriced { lines, total } => {
                self.pricing = Some(Pricing {
                    lines: lines.clone(),
                    total: *total,
                });
            }
            OrderEvent::OrderConfirmed => self.status = OrderStatus::Confirmed,
            OrderEvent::OrderRejected { reason } => self.close(OrderStatus::Rejected, reason),
            OrderEvent::OrderCancellationRequested { reason } => {
                self.cancellation_request = Some(reason.clone());
            }
            OrderEvent::OrderCancelled { reason } => self.close(OrderStatus::Cancelled, reason),
            OrderEvent::OrderShipped => {
                // Once the parcel is on its way the customer's request is moot.
                self.status = OrderStatus::Shipped;
                self.cancellation_request = None;
            }
            OrderEvent::OrderDelivered => self.status = OrderStatus::Delivered,
        }
    }

    fn close(&mut self, status: OrderStatus, reason: &str) {
        self.status = status;
        self.closing_reason = Some(reason.to_owned());
        self.cancellation_request = None;
    }
}
