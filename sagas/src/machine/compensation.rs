//! How the saga undoes what it did, in three stages: cancel the shipment;
//! then settle the payment (void or refund) and the stock (release or
//! restock) together; then close the order (RejectOrder or CancelOrder).
//!
//! What each stage sends is derived from the facts every time, so a fact
//! learned late (a reservation that arrives after the decision to compensate,
//! a capture that succeeded after all) adds the command that undoes it.
//! The saga never waits for an event that a no-op command would not produce:
//! it only releases lines it saw reserved, and it does not wait for a void of
//! a payment that was declined or never authorized. A reservation that
//! arrives after its line is over is released on the spot, in any step
//! (`stray_release`).

use events::command::DomainCommand;
use events::domain::{
    CatalogCommand, CatalogEvent, OrderCommand, PaymentCommand, ShipmentCommand, Sku,
};

use super::Outgoing;
use super::commands::{Planned, stray_release_id};
use super::state::{Compensation, CompensationKind, Phase, Reservation, Saga, Stage};

/// What the payment still needs before the saga may close the order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PaymentNeed {
    Nothing,
    Void,
    Refund,
}

impl Saga {
    pub(super) fn compensation_commands(&self, compensation: &Compensation) -> Vec<Planned> {
        match compensation.stage {
            Stage::CancelShipment if self.shipment_needs_cancel() => {
                let command = DomainCommand::Shipment(ShipmentCommand::Cancel);
                vec![self.plan("cancel_shipment", "shipment", command)]
            }
            Stage::CancelShipment => vec![],
            Stage::SettlePaymentAndStock => {
                let mut planned = self.payment_commands();
                planned.extend(self.stock_commands());
                planned
            }
            Stage::CloseOrder => {
                let reason = compensation.reason.clone();
                let (step, command) = match compensation.kind {
                    CompensationKind::Reject => {
                        ("reject_order", OrderCommand::RejectOrder { reason })
                    }
                    CompensationKind::Cancel => {
                        ("cancel_order", OrderCommand::CancelOrder { reason })
                    }
                };
                vec![self.plan(step, "order", DomainCommand::Order(command))]
            }
        }
    }

    /// The step after `compensation`'s stage, once the stage is done.
    pub(super) fn next_compensation(&self, compensation: &Compensation) -> Option<Phase> {
        let next_stage = |stage| {
            Some(Phase::Compensating(Compensation {
                stage,
                ..compensation.clone()
            }))
        };
        match compensation.stage {
            Stage::CancelShipment if self.facts.shipment.dispatched => {
                Some(self.dispatched_while_compensating(compensation.kind))
            }
            Stage::CancelShipment if !self.shipment_needs_cancel() => {
                next_stage(Stage::SettlePaymentAndStock)
            }
            Stage::SettlePaymentAndStock
                if self.payment_need() == PaymentNeed::Nothing && self.stock_settled() =>
            {
                next_stage(Stage::CloseOrder)
            }
            Stage::CloseOrder if self.order_closed(compensation.kind) => Some(Phase::Compensated {
                reason: compensation.reason.clone(),
            }),
            _ => None,
        }
    }

    /// A cancellation after capture is moot once the parcel left: the saga
    /// stays completed. Before the capture it means goods left unpaid, which
    /// only a person can sort out.
    fn dispatched_while_compensating(&self, kind: CompensationKind) -> Phase {
        match kind {
            CompensationKind::Cancel => Phase::Completed {
                cancellation_moot: true,
            },
            CompensationKind::Reject => Phase::NeedsAttention {
                reason: "shipment was dispatched before the payment was captured".to_owned(),
                parked: Box::new(self.phase.clone()),
                parked_attempt: self.attempt,
            },
        }
    }

    fn shipment_needs_cancel(&self) -> bool {
        let shipment = &self.facts.shipment;
        shipment.issued && !shipment.cancelled && !shipment.refused
    }

    /// A requested void settles a payment that was never authorized: the
    /// payment then keeps the void pending, and the provider adapter voids a
    /// late authorization on its own.
    fn payment_need(&self) -> PaymentNeed {
        let payment = &self.facts.payment;
        if !payment.authorization_issued {
            PaymentNeed::Nothing
        } else if payment.captured {
            if payment.refunded {
                PaymentNeed::Nothing
            } else {
                PaymentNeed::Refund
            }
        } else if payment.declined
            || payment.voided
            || (payment.void_requested && !payment.authorized)
        {
            PaymentNeed::Nothing
        } else {
            PaymentNeed::Void
        }
    }

    fn payment_commands(&self) -> Vec<Planned> {
        let command = match self.payment_need() {
            PaymentNeed::Nothing => return vec![],
            PaymentNeed::Void => ("void_payment", PaymentCommand::RequestVoid),
            PaymentNeed::Refund => (
                "refund_payment",
                PaymentCommand::RequestRefund { amount: None },
            ),
        };
        vec![self.plan(command.0, "payment", DomainCommand::Payment(command.1))]
    }

    fn stock_commands(&self) -> Vec<Planned> {
        let order_id = self.order.order_id;
        let mut planned = Vec::new();
        for line in &self.facts.lines {
            let sku = line.sku.as_str();
            match line.reservation {
                Reservation::Reserved { .. } => {
                    let command = CatalogCommand::ReleaseStock { order_id };
                    let command = DomainCommand::CatalogItem(command);
                    planned.push(self.plan("release_stock", sku, command));
                }
                Reservation::Committed if !line.restocked => {
                    let quantity = line.quantity;
                    let command = DomainCommand::CatalogItem(CatalogCommand::Restock { quantity });
                    let mut restock = self.plan("restock", sku, command);
                    restock.same_id_on_retry = true;
                    planned.push(restock);
                }
                // A pending reservation is waited for, not released: its
                // outcome event always comes, and releasing now would be a
                // no-op that produces nothing to wait for.
                _ => {}
            }
        }
        planned
    }

    /// The release of a reservation nobody will use: a `StockReserved` of
    /// this order on a line whose reservation is already over (rejected,
    /// released or committed), or on any line not held once the saga is
    /// finished. It comes from a ReserveStock retry that reached the catalog
    /// late, after the catalog had forgotten the order's commit (it only
    /// remembers its most recent ones) or, since it never remembers
    /// releases, after the release. The saga does not wait for the release:
    /// releasing always succeeds, and the outbox delivers it. A redelivered
    /// reservation that was already released or committed gets a release
    /// too, which the catalog answers with nothing.
    pub(super) fn stray_release(
        &self,
        sku: &Sku,
        event: &CatalogEvent,
        sequence: u64,
    ) -> Option<Outgoing> {
        let CatalogEvent::StockReserved { order_id, .. } = event else {
            return None;
        };
        let line = self.facts.lines.iter().find(|line| line.sku == *sku)?;
        let finished = matches!(
            self.phase,
            Phase::Completed { .. } | Phase::Compensated { .. } | Phase::Resolved { .. }
        );
        let stray = match line.reservation {
            Reservation::Rejected { .. } | Reservation::Released | Reservation::Committed => true,
            Reservation::Pending => finished,
            Reservation::Reserved { .. } => false,
        };
        (stray && *order_id == self.order.order_id).then(|| Outgoing {
            command_id: stray_release_id(*order_id, sku.as_str(), sequence),
            aggregate_id: sku.as_str().to_owned(),
            command: DomainCommand::CatalogItem(CatalogCommand::ReleaseStock {
                order_id: *order_id,
            }),
        })
    }

    fn stock_settled(&self) -> bool {
        self.facts.lines.iter().all(|line| match line.reservation {
            Reservation::Rejected { .. } | Reservation::Released => true,
            Reservation::Committed => line.restocked,
            Reservation::Pending | Reservation::Reserved { .. } => false,
        })
    }

    fn order_closed(&self, kind: CompensationKind) -> bool {
        match kind {
            CompensationKind::Reject => self.facts.order.rejected,
            CompensationKind::Cancel => self.facts.order.cancelled,
        }
    }

    /// What a stalled compensation still waits for, for the operator.
    pub(super) fn compensation_wait(&self, compensation: &Compensation) -> String {
        let mut waiting: Vec<String> = self
            .compensation_commands(compensation)
            .iter()
            .map(|planned| format!("{} {}", planned.step, planned.target))
            .collect();
        let pending = self.facts.lines.iter();
        let pending = pending.filter(|line| line.reservation == Reservation::Pending);
        waiting.extend(pending.map(|line| format!("the reservation outcome of {}", line.sku)));
        if waiting.is_empty() {
            "an outcome event".to_owned()
        } else {
            waiting.join(", ")
        }
    }
}
