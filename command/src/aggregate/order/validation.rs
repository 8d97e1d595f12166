//! Validation of an order's content: the placed lines, reasons, and a
//! proposed pricing checked against what the customer placed.

use std::collections::HashSet;

use events::domain::money::{Currency, Money};
use events::domain::order::{
    MAX_LINE_QUANTITY, MAX_ORDER_LINES, OrderEvent, OrderLine, OrderRejection, PricedLine,
};
use events::domain::text::is_valid_reason;

use super::{PlacedOrder, Pricing};

pub(super) fn check_lines(lines: &[OrderLine]) -> Result<(), OrderRejection> {
    if lines.is_empty() {
        return Err(OrderRejection::NoLines);
    }
    if lines.len() > MAX_ORDER_LINES {
        return Err(OrderRejection::TooManyLines { count: lines.len() });
    }
    let mut seen = HashSet::new();
    for line in lines {
        if !(1..=MAX_LINE_QUANTITY).contains(&line.quantity) {
            return Err(OrderRejection::InvalidQuantity {
                sku: line.sku.clone(),
                quantity: line.quantity,
            });
        }
        if !seen.insert(&line.sku) {
            return Err(OrderRejection::DuplicateSku {
                sku: line.sku.clone(),
            });
        }
    }
    Ok(())
}

pub(super) fn check_reason(reason: &str) -> Result<(), OrderRejection> {
    if is_valid_reason(reason) {
        Ok(())
    } else {
        Err(OrderRejection::InvalidReason)
    }
}

impl PlacedOrder {
    pub(super) fn placed_event(&self) -> OrderEvent {
        OrderEvent::OrderPlaced {
            customer_id: self.customer_id.clone(),
            currency: self.currency,
            lines: self.lines.clone(),
            shipping_address: self.shipping_address.clone(),
            payment_token: self.payment_token.clone(),
        }
    }

    /// Checks a proposed pricing against the placed lines and returns it with
    /// the lines in placed order, so equal pricings compare equal.
    pub(super) fn check_pricing(
        &self,
        lines: &[PricedLine],
        total: Money,
    ) -> Result<Pricing, OrderRejection> {
        if lines.len() != self.lines.len() {
            return Err(OrderRejection::PricingMismatch);
        }
        let mut ordered = Vec::with_capacity(lines.len());
        for placed in &self.lines {
            let priced = lines
                .iter()
                .find(|l| l.sku == placed.sku && l.quantity == placed.quantity)
                .ok_or(OrderRejection::PricingMismatch)?;
            self.check_currency(priced.unit_price.currency)?;
            if !priced.unit_price.is_positive() {
                return Err(OrderRejection::InvalidUnitPrice {
                    sku: priced.sku.clone(),
                    unit_price: priced.unit_price,
                });
            }
            ordered.push(priced.clone());
        }
        self.check_currency(total.currency)?;
        let line_totals = ordered
            .iter()
            .map(PricedLine::line_total)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| OrderRejection::TotalOverflow)?;
        let expected = Money::checked_sum(self.currency, line_totals)
            .map_err(|_| OrderRejection::TotalOverflow)?;
        if expected != total {
            return Err(OrderRejection::TotalMismatch {
                expected,
                actual: total,
            });
        }
        Ok(Pricing {
            lines: ordered,
            total,
        })
    }

    fn check_currency(&self, actual: Currency) -> Result<(), OrderRejection> {
        if actual == self.currency {
            Ok(())
        } else {
            Err(OrderRejection::CurrencyMismatch {
                expected: self.currency,
                actual,
            })
        }
    }
}
