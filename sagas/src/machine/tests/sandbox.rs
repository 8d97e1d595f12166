//! The sandbox payment provider and carrier of the simulated world, and the
//! payment and shipment aggregates they answer through.

use events::domain::{
    PaymentCommand as Pay, PaymentEvent as PayE, ShipmentCommand as Ship, ShipmentEvent as ShipE,
};

use super::usd;
use super::world::{ShipStatus, Token, World};
use crate::machine::Input;

impl World {
    pub(super) fn payment_command(&mut self, command: Pay) {
        let p = &mut self.payment;
        let event = match command {
            Pay::RequestAuthorization { amount, token } if p.amount.is_none() => {
                p.amount = Some(amount);
                PayE::PaymentAuthorizationRequested { amount, token }
            }
            Pay::RequestCapture if p.authorized && !p.void_pending && !p.voided => {
                if p.captured || p.capture_pending {
                    return;
                }
                p.capture_pending = true;
                PayE::PaymentCaptureRequested {
                    amount: p.amount.unwrap_or(usd(0)),
                }
            }
            Pay::RequestVoid => {
                let blocked = p.void_pending || p.voided || p.captured || p.capture_pending;
                if blocked || p.declined || p.amount.is_none() {
                    return;
                }
                p.void_pending = true;
                PayE::PaymentVoidRequested
            }
            Pay::RequestRefund { .. } if p.captured && !p.refund_pending && !p.refunded => {
                p.refund_pending = true;
                let amount = p.amount.unwrap_or(usd(0));
                PayE::PaymentRefundRequested { amount }
            }
            _ => return,
        };
        self.emit("payment", Input::Payment(event));
    }

    /// Whether the sandbox provider has an answer to give now.
    pub fn provider_can_act(&self) -> bool {
        let p = &self.payment;
        let token = self.scenario.token;
        let awaiting_auth = p.amount.is_some() && !p.authorized && !p.declined;
        let answers_auth = match token {
            Token::NoResponse => false,
            Token::Late => p.void_pending,
            _ => !p.void_pending,
        };
        p.refund_pending
            || p.capture_pending
            || (p.void_pending && p.authorized)
            || (awaiting_auth && answers_auth)
    }

    /// The provider answers the call it owes, as `PaymentAction` orders them.
    pub fn provider_act(&mut self) {
        if !self.provider_can_act() {
            return;
        }
        let token = self.scenario.token;
        let p = &mut self.payment;
        let amount = p.amount.unwrap_or(usd(0));
        let event = if p.refund_pending {
            p.refund_pending = false;
            p.refunded = true;
            PayE::PaymentRefunded { amount }
        } else if p.capture_pending {
            p.capture_pending = false;
            p.capture_calls += 1;
            let fails =
                token == Token::CaptureFail || (token == Token::Flaky && p.capture_calls <= 2);
            if fails {
                let reason = "card_error".to_owned();
                PayE::PaymentCaptureFailed { reason }
            } else {
                p.captured = true;
                p.void_pending = false;
                PayE::PaymentCaptured { amount }
            }
        } else if p.void_pending && p.authorized {
            p.void_pending = false;
            p.voided = true;
            PayE::PaymentVoided { amount }
        } else if token == Token::Decline {
            p.declined = true;
            let reason = "card declined".to_owned();
            PayE::PaymentDeclined { reason }
        } else {
            p.authorized = true;
            let provider_ref = "auth-1".to_owned();
            PayE::PaymentAuthorized {
                provider_ref,
                amount,
            }
        };
        self.emit("payment", Input::Payment(event));
    }

    pub(super) fn shipment_command(&mut self, command: Ship) {
        let event = match (command, self.shipment) {
            (Ship::RequestShipment { address }, None) => {
                self.shipment = Some(ShipStatus::Requested);
                ShipE::ShipmentRequested { address }
            }
            (Ship::Release, Some(ShipStatus::Scheduled)) => {
                self.shipment = Some(ShipStatus::Released);
                ShipE::ShipmentReleased
            }
            (
                Ship::Cancel,
                Some(ShipStatus::Requested | ShipStatus::Scheduled | ShipStatus::Released),
            ) => {
                self.shipment = Some(ShipStatus::Cancelled);
                ShipE::ShipmentCancelled
            }
            _ => return,
        };
        self.emit("shipment", Input::Shipment(event));
    }

    pub fn carrier_can_act(&self) -> bool {
        self.shipment == Some(ShipStatus::Requested)
    }

    /// The carrier answers a requested shipment.
    pub fn carrier_act(&mut self) {
        if !self.carrier_can_act() {
            return;
        }
        let event = if self.scenario.carrier_refuses {
            self.shipment = Some(ShipStatus::Refused);
            let reason = "country ZZ".to_owned();
            ShipE::ShipmentRefused { reason }
        } else {
            self.shipment = Some(ShipStatus::Scheduled);
            let tracking_ref = "track-1".to_owned();
            ShipE::ShipmentScheduled {
                tracking_ref,
                carrier: None,
            }
        };
        self.emit("shipment", Input::Shipment(event));
    }

    /// The carrier ships as soon as the shipment is released (possibly
    /// before the order is confirmed), never earlier: the aggregate refuses.
    pub fn can_dispatch(&self) -> bool {
        self.scenario.carrier_dispatches && self.shipment == Some(ShipStatus::Released)
    }

    pub fn dispatch(&mut self) {
        if self.can_dispatch() {
            self.shipment = Some(ShipStatus::Dispatched);
            self.emit("shipment", Input::Shipment(ShipE::ShipmentDispatched));
        }
    }
}
