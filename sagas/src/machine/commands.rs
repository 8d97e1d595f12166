//! The commands each step needs, and their deterministic ids.
//!
//! A command id is the UUIDv5 of `(order id, step, attempt, target)`. The same
//! transition computed again (the worker crashed before storing the saga and
//! re-ran the event) yields the same ids, so the processors deduplicate it.
//!
//! A retry after a deadline uses the next attempt, hence a new id, because a
//! processor answers a duplicate id with its recorded outcome: a RequestVoid
//! first refused while a capture was in flight, or a shipment Cancel that
//! overtook its RequestShipment, would be refused again forever under the old
//! id. A new id is safe because those commands are idempotent by state (the
//! aggregates answer an already-applied command with no events). The one
//! exception is `Restock`, which adds stock every time it is applied: its
//! retries reuse attempt 1, so the processor applies it at most once.
//! `CommitStock` does the same: the catalog remembers only its most recent
//! commits, and a retry under a new id that arrived after that memory moved
//! on would commit a stray reservation of the same order a second time. Its
//! first attempt cannot be refused once the saga saw the reservation, so a
//! new id would buy nothing.
//!
//! The release of a stray reservation (`Saga::stray_release`) is named by
//! the reservation event's position in its SKU's stream instead of an
//! attempt: a redelivered event gives the same id, a second stray
//! reservation a new one.

use events::command::DomainCommand;
use events::domain::{CatalogCommand, OrderCommand, OrderId, PaymentCommand, ShipmentCommand};
use uuid::Uuid;

use super::Outgoing;
use super::state::{LineFacts, Phase, Reservation, Saga};

/// Namespace of the saga's command ids (a fixed, random UUID).
const COMMAND_ID_NAMESPACE: Uuid = Uuid::from_u128(0x5a6a_0c1e_93d4_4b7e_a0f1_2c3d_4e5f_6071);

/// Deterministic id of the command that `step` sends to `target` in `attempt`.
pub fn command_id(order_id: OrderId, step: &str, attempt: u32, target: &str) -> Uuid {
    let name = format!("{order_id}/{step}/{attempt}/{target}");
    Uuid::new_v5(&COMMAND_ID_NAMESPACE, name.as_bytes())
}

/// Deterministic id of the release of the stray reservation that the
/// event at `sequence` of `sku`'s stream made for `order_id`.
pub(super) fn stray_release_id(order_id: OrderId, sku: &str, sequence: u64) -> Uuid {
    let name = format!("{order_id}/release_stray_stock/{sequence}/{sku}");
    Uuid::new_v5(&COMMAND_ID_NAMESPACE, name.as_bytes())
}

/// A command a step wants sent in the current attempt.
pub(super) struct Planned {
    pub step: &'static str,
    pub target: String,
    pub aggregate_id: String,
    pub command: DomainCommand,
    /// Retries reuse attempt 1 (see the module docs on `Restock` and
    /// `CommitStock`).
    pub same_id_on_retry: bool,
}

impl Saga {
    pub(super) fn plan(&self, step: &'static str, target: &str, command: DomainCommand) -> Planned {
        let aggregate_id = match &command {
            DomainCommand::CatalogItem(_) => target.to_owned(),
            _ => self.order.order_id.to_string(),
        };
        Planned {
            step,
            target: target.to_owned(),
            aggregate_id,
            command,
            same_id_on_retry: false,
        }
    }

    /// The commands the current step still needs, from the facts.
    fn planned(&self) -> Vec<Planned> {
        let order_id = self.order.order_id;
        match &self.phase {
            Phase::ReservingStock => self.per_line(
                "reserve_stock",
                |line| line.reservation == Reservation::Pending,
                |line| CatalogCommand::ReserveStock {
                    order_id,
                    quantity: line.quantity,
                },
            ),
            Phase::AuthorizingAndScheduling => self.authorize_and_schedule(),
            Phase::CapturingPayment => {
                let target = format!("capture-{}", self.captures);
                let command = DomainCommand::Payment(PaymentCommand::RequestCapture);
                vec![self.plan("capture_payment", &target, command)]
            }
            Phase::CommittingAndConfirming => {
                let mut planned = self.per_line(
                    "commit_stock",
                    |line| line.reservation != Reservation::Committed,
                    |_| CatalogCommand::CommitStock { order_id },
                );
                for commit in &mut planned {
                    commit.same_id_on_retry = true;
                }
                if !self.facts.order.confirmed {
                    let command = DomainCommand::Order(OrderCommand::ConfirmOrder);
                    planned.push(self.plan("confirm_order", "order", command));
                }
                // The money is taken: the carrier may now dispatch.
                if !self.facts.shipment.released {
                    let command = DomainCommand::Shipment(ShipmentCommand::Release);
                    planned.push(self.plan("release_shipment", "shipment", command));
                }
                planned
            }
            Phase::Compensating(compensation) => self.compensation_commands(compensation),
            Phase::Completed { .. } => self.follow_the_parcel(),
            Phase::AwaitingCaptureRetry
            | Phase::Compensated { .. }
            | Phase::NeedsAttention { .. }
            | Phase::Resolved { .. } => vec![],
        }
    }

    /// One catalog command per line that `wanted` selects.
    fn per_line(
        &self,
        step: &'static str,
        wanted: impl Fn(&LineFacts) -> bool,
        command: impl Fn(&LineFacts) -> CatalogCommand,
    ) -> Vec<Planned> {
        let lines = self.facts.lines.iter().filter(|line| wanted(line));
        lines
            .map(|line| {
                let command = DomainCommand::CatalogItem(command(line));
                self.plan(step, line.sku.as_str(), command)
            })
            .collect()
    }

    /// After completion the order follows its parcel: shipped when the
    /// carrier dispatched it, delivered when it arrived.
    fn follow_the_parcel(&self) -> Vec<Planned> {
        let (shipment, order) = (&self.facts.shipment, &self.facts.order);
        let mut planned = Vec::new();
        if shipment.dispatched && !order.shipped {
            let command = DomainCommand::Order(OrderCommand::MarkShipped);
            planned.push(self.plan("mark_shipped", "order", command));
        }
        if shipment.delivered && !order.delivered {
            let command = DomainCommand::Order(OrderCommand::MarkDelivered);
            planned.push(self.plan("mark_delivered", "order", command));
        }
        planned
    }

    /// What the step after the reservations still needs: the price, the
    /// authorization and the booking, each until its outcome is known.
    fn authorize_and_schedule(&self) -> Vec<Planned> {
        let facts = &self.facts;
        let mut planned = Vec::new();
        if !facts.order.priced {
            planned.extend(self.price_order());
        }
        if !facts.payment.authorized && !facts.payment.declined {
            planned.extend(self.authorize());
        }
        if !facts.shipment.scheduled && !facts.shipment.refused {
            let address = self.order.shipping_address.clone();
            let command = ShipmentCommand::RequestShipment { address };
            let command = DomainCommand::Shipment(command);
            planned.push(self.plan("request_shipment", "shipment", command));
        }
        planned
    }

    fn authorize(&self) -> Option<Planned> {
        let amount = self.total?;
        let token = self.order.payment_token.clone();
        let command = PaymentCommand::RequestAuthorization { amount, token };
        Some(self.plan(
            "authorize_payment",
            "payment",
            DomainCommand::Payment(command),
        ))
    }

    /// PriceOrder from the reserved unit prices; the saga left
    /// `ReservingStock` only when they had a checked total.
    fn price_order(&self) -> Option<Planned> {
        let (lines, total) = self.pricing().ok()?;
        let command = DomainCommand::Order(OrderCommand::PriceOrder { lines, total });
        Some(self.plan("price_order", "order", command))
    }

    /// Turns the planned commands into outgoing ones, leaving out those
    /// already returned in this attempt.
    pub(super) fn issue(&mut self) -> Vec<Outgoing> {
        let order_id = self.order.order_id;
        let mut outgoing = Vec::new();
        for planned in self.planned() {
            let attempt = if planned.same_id_on_retry {
                1
            } else {
                self.attempt
            };
            let command_id = command_id(order_id, planned.step, attempt, &planned.target);
            if self.issued.insert(command_id) {
                self.record_issued(&planned.command, &planned.target);
                outgoing.push(Outgoing {
                    command_id,
                    aggregate_id: planned.aggregate_id,
                    command: planned.command,
                });
            }
        }
        outgoing
    }

    /// Remembers what was asked, so the saga knows which aggregates may hold
    /// something to undo and which restock event is its own.
    fn record_issued(&mut self, command: &DomainCommand, target: &str) {
        match command {
            DomainCommand::Payment(PaymentCommand::RequestAuthorization { .. }) => {
                self.facts.payment.authorization_issued = true;
            }
            DomainCommand::Shipment(ShipmentCommand::RequestShipment { .. }) => {
                self.facts.shipment.issued = true;
            }
            DomainCommand::CatalogItem(CatalogCommand::Restock { .. }) => {
                let line = self
                    .facts
                    .lines
                    .iter_mut()
                    .find(|l| l.sku.as_str() == target);
                if let Some(line) = line {
                    line.restock_issued = true;
                }
            }
            _ => {}
        }
    }
}
