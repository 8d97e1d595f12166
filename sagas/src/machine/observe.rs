//! Folding events into the saga's facts.
//!
//! Each function answers whether the event taught the saga anything new; an
//! event that did not (a duplicate, or one overtaken by a later fact) changes
//! neither the facts nor the step.

use events::domain::{CatalogEvent, OrderEvent, PaymentEvent, ShipmentEvent, Sku};

use super::state::{Facts, Reservation};

/// Sets `flag` and reports whether it was unset.
fn learn(flag: &mut bool) -> bool {
    !std::mem::replace(flag, true)
}

impl Facts {
    pub(super) fn observe_catalog(
        &mut self,
        order_id: events::domain::OrderId,
        sku: &Sku,
        event: &CatalogEvent,
    ) -> bool {
        let Some(line) = self.lines.iter_mut().find(|line| line.sku == *sku) else {
            return false;
        };
        let for_us = |id: &events::domain::OrderId| *id == order_id;
        let current = line.reservation;
        // Reservations only move forward: Pending -> Reserved/Rejected ->
        // Released/Committed. A StockReserved after the release must not
        // resurrect the reservation; `Saga::stray_release` answered it
        // before it got here.
        let next = match event {
            CatalogEvent::StockReserved {
                order_id,
                unit_price,
                ..
            } if for_us(order_id) && current == Reservation::Pending => Reservation::Reserved {
                unit_price: *unit_price,
            },
            CatalogEvent::StockReservationRejected {
                order_id, reason, ..
            } if for_us(order_id) && current == Reservation::Pending => {
                Reservation::Rejected { reason: *reason }
            }
            CatalogEvent::StockReleased { order_id, .. }
                if for_us(order_id)
                    && matches!(current, Reservation::Pending | Reservation::Reserved { .. }) =>
            {
                Reservation::Released
            }
            CatalogEvent::StockCommitted { order_id, .. }
                if for_us(order_id)
                    && matches!(current, Reservation::Pending | Reservation::Reserved { .. }) =>
            {
                Reservation::Committed
            }
            // A restock carries no order id; one of the right size after the
            // saga asked for it is taken as the answer.
            CatalogEvent::Restocked { quantity }
                if line.restock_issued && *quantity == line.quantity =>
            {
                return learn(&mut line.restocked);
            }
            _ => return false,
        };
        line.reservation = next;
        true
    }

    pub(super) fn observe_order(&mut self, event: &OrderEvent) -> bool {
        let order = &mut self.order;
        match event {
            OrderEvent::OrderPriced { .. } => learn(&mut order.priced),
            OrderEvent::OrderConfirmed => learn(&mut order.confirmed),
            OrderEvent::OrderRejected { .. } => learn(&mut order.rejected),
            OrderEvent::OrderCancellationRequested { .. } => {
                learn(&mut order.cancellation_requested)
            }
            OrderEvent::OrderCancelled { .. } => learn(&mut order.cancelled),
            OrderEvent::OrderShipped => learn(&mut order.shipped),
            OrderEvent::OrderDelivered => learn(&mut order.shipped) | learn(&mut order.delivered),
            OrderEvent::OrderPlaced { .. } => false,
        }
    }

    /// `capture` is the number of the capture attempt in flight, which a
    /// `PaymentCaptureFailed` is attributed to.
    pub(super) fn observe_payment(&mut self, event: &PaymentEvent, capture: u32) -> bool {
        let payment = &mut self.payment;
        match event {
            PaymentEvent::PaymentAuthorized { .. } => learn(&mut payment.authorized),
            PaymentEvent::PaymentDeclined { .. } => learn(&mut payment.declined),
            PaymentEvent::PaymentCaptured { .. } => learn(&mut payment.captured),
            PaymentEvent::PaymentCaptureFailed { .. } => {
                let new = payment.failed_capture < capture && !payment.captured;
                if new {
                    payment.failed_capture = capture;
                }
                new
            }
            PaymentEvent::PaymentVoidRequested => learn(&mut payment.void_requested),
            PaymentEvent::PaymentVoided { .. } => learn(&mut payment.voided),
            PaymentEvent::PaymentRefunded { .. } => learn(&mut payment.refunded),
            // Intents the saga itself caused: their outcomes are what count.
            PaymentEvent::PaymentAuthorizationRequested { .. }
            | PaymentEvent::PaymentCaptureRequested { .. }
            | PaymentEvent::PaymentRefundRequested { .. } => false,
        }
    }

    pub(super) fn observe_shipment(&mut self, event: &ShipmentEvent) -> bool {
        let shipment = &mut self.shipment;
        match event {
            ShipmentEvent::ShipmentScheduled { .. } => learn(&mut shipment.scheduled),
            ShipmentEvent::ShipmentRefused { .. } => learn(&mut shipment.refused),
            ShipmentEvent::ShipmentReleased => learn(&mut shipment.released),
            ShipmentEvent::ShipmentCancelled => learn(&mut shipment.cancelled),
            // A parcel that left needs no release (logs from before releases
            // existed may hold a dispatch without one).
            ShipmentEvent::ShipmentDispatched => {
                learn(&mut shipment.dispatched) | learn(&mut shipment.released)
            }
            ShipmentEvent::ShipmentDelivered => {
                learn(&mut shipment.dispatched)
                    | learn(&mut shipment.delivered)
                    | learn(&mut shipment.released)
            }
            ShipmentEvent::ShipmentRequested { .. } => false,
        }
    }
}
