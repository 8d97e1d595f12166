//! The Shipment aggregate: one per order, from the saga's request through the
//! carrier's answer to dispatch and delivery.
//!
//! A shipment can be cancelled until it is dispatched, and dispatched only
//! once the saga released it after capturing the payment (the pivot): before
//! that, a customer's cancel must still be able to stop the parcel, and goods
//! must not leave unpaid. The carrier answers asynchronously, so its answer
//! may arrive after a cancellation: a late booking is still recorded, so that
//! the carrier adapter knows which booking to withdraw.

use events::domain::address::Address;
use events::domain::shipment::{ShipmentCommand, ShipmentEvent, ShipmentRejection, ShipmentStatus};
use events::domain::text::{is_valid_reason, is_valid_reference};

use super::Aggregate;

#[cfg(test)]
mod tests;

type Decision = Result<Vec<ShipmentEvent>, ShipmentRejection>;

/// State of one order's shipment.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Shipment {
    requested: Option<Requested>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Requested {
    address: Address,
    status: ShipmentStatus,
    tracking_ref: Option<String>,
    refusal_reason: Option<String>,
    /// The carrier it is booked with, who alone may dispatch and deliver it.
    #[serde(default)]
    carrier: Option<String>,
}

impl Shipment {
    pub fn exists(&self) -> bool {
        self.requested.is_some()
    }

    pub fn status(&self) -> Option<ShipmentStatus> {
        self.requested.as_ref().map(|r| r.status)
    }

    pub fn address(&self) -> Option<&Address> {
        self.requested.as_ref().map(|r| &r.address)
    }

    pub fn tracking_ref(&self) -> Option<&str> {
        self.requested.as_ref()?.tracking_ref.as_deref()
    }

    /// The id of the carrier the shipment is booked with.
    pub fn carrier(&self) -> Option<&str> {
        self.requested.as_ref()?.carrier.as_deref()
    }

    pub fn refusal_reason(&self) -> Option<&str> {
        self.requested.as_ref()?.refusal_reason.as_deref()
    }

    /// The carrier booking the carrier adapter must withdraw: the tracking
    /// reference of a cancelled shipment, whether the booking came before or
    /// after the cancellation.
    pub fn booking_to_withdraw(&self) -> Option<&str> {
        match self.status() {
            Some(ShipmentStatus::Cancelled) => self.tracking_ref(),
            _ => None,
        }
    }

    fn existing(&self) -> Result<&Requested, ShipmentRejection> {
        self.requested.as_ref().ok_or(ShipmentRejection::NotFound)
    }

    fn request(&self, address: &Address) -> Decision {
        address
            .validate()
            .map_err(|field| ShipmentRejection::InvalidAddress { field })?;
        match &self.requested {
            None => Ok(vec![ShipmentEvent::ShipmentRequested {
                address: address.clone(),
            }]),
            Some(r) if r.address == *address => Ok(vec![]),
            Some(_) => Err(ShipmentRejection::AlreadyRequested),
        }
    }
}

impl Requested {
    fn same_booking(&self, tracking_ref: &str) -> Decision {
        match &self.tracking_ref {
            Some(known) if known == tracking_ref => Ok(vec![]),
            _ => Err(ShipmentRejection::TrackingRefMismatch),
        }
    }

    fn record_scheduled(&self, tracking_ref: &str, carrier: Option<&String>) -> Decision {
        let scheduled = || {
            Ok(vec![ShipmentEvent::ShipmentScheduled {
                tracking_ref: tracking_ref.to_owned(),
                carrier: carrier.cloned(),
            }])
        };
        match self.status {
            ShipmentStatus::Requested => scheduled(),
            ShipmentStatus::Cancelled if self.tracking_ref.is_none() => scheduled(),
            ShipmentStatus::Refused => Err(ShipmentRejection::Refused),
            ShipmentStatus::Cancelled
            | ShipmentStatus::Scheduled
            | ShipmentStatus::Released
            | ShipmentStatus::Dispatched
            | ShipmentStatus::Delivered => self.same_booking(tracking_ref),
        }
    }

    fn record_refused(&self, reason: &str) -> Decision {
        match self.status {
            ShipmentStatus::Requested => Ok(vec![ShipmentEvent::ShipmentRefused {
                reason: reason.to_owned(),
            }]),
            // Nothing was booked, so a refusal after a cancellation changes nothing.
            ShipmentStatus::Refused | ShipmentStatus::Cancelled => Ok(vec![]),
            ShipmentStatus::Scheduled
            | ShipmentStatus::Released
            | ShipmentStatus::Dispatched
            | ShipmentStatus::Delivered => Err(ShipmentRejection::AlreadyScheduled {
                status: self.status,
            }),
        }
    }

    /// The saga captured the payment: from now on the carrier may dispatch.
    fn release(&self) -> Decision {
        match self.status {
            ShipmentStatus::Scheduled => Ok(vec![ShipmentEvent::ShipmentReleased]),
            ShipmentStatus::Released | ShipmentStatus::Dispatched | ShipmentStatus::Delivered => {
                Ok(vec![])
            }
            ShipmentStatus::Requested => Err(ShipmentRejection::NotScheduled {
                status: self.status,
            }),
            ShipmentStatus::Refused => Err(ShipmentRejection::Refused),
            ShipmentStatus::Cancelled => Err(ShipmentRejection::Cancelled),
        }
    }

    fn cancel(&self) -> Decision {
        match self.status {
            ShipmentStatus::Requested | ShipmentStatus::Scheduled | ShipmentStatus::Released => {
                Ok(vec![ShipmentEvent::ShipmentCancelled])
            }
            ShipmentStatus::Cancelled | ShipmentStatus::Refused => Ok(vec![]),
            ShipmentStatus::Dispatched | ShipmentStatus::Delivered => {
                Err(ShipmentRejection::AlreadyDispatched {
                    status: self.status,
                })
            }
        }
    }

    /// Only a released shipment leaves: before the capture the saga may
    /// still have to cancel it.
    fn dispatch(&self) -> Decision {
        match self.status {
            ShipmentStatus::Released => Ok(vec![ShipmentEvent::ShipmentDispatched]),
            ShipmentStatus::Dispatched | ShipmentStatus::Delivered => Ok(vec![]),
            ShipmentStatus::Requested => Err(ShipmentRejection::NotScheduled {
                status: self.status,
            }),
            ShipmentStatus::Scheduled => Err(ShipmentRejection::NotReleased {
                status: self.status,
            }),
            ShipmentStatus::Refused => Err(ShipmentRejection::Refused),
            ShipmentStatus::Cancelled => Err(ShipmentRejection::Cancelled),
        }
    }

    fn deliver(&self) -> Decision {
        match self.status {
            ShipmentStatus::Dispatched => Ok(vec![ShipmentEvent::ShipmentDelivered]),
            ShipmentStatus::Delivered => Ok(vec![]),
            ShipmentStatus::Requested | ShipmentStatus::Scheduled | ShipmentStatus::Released => {
                Err(ShipmentRejection::NotDispatched {
                    status: self.status,
                })
            }
            ShipmentStatus::Refused => Err(ShipmentRejection::Refused),
            ShipmentStatus::Cancelled => Err(ShipmentRejection::Cancelled),
        }
    }

    fn apply(&mut self, event: &ShipmentEvent) {
        match event {
            ShipmentEvent::ShipmentRequested { .. } => {}
            ShipmentEvent::ShipmentScheduled {
                tracking_ref,
                carrier,
            } => {
                self.tracking_ref = Some(tracking_ref.clone());
                self.carrier.clone_from(carrier);
                // A late booking leaves a cancelled shipment cancelled.
                if self.status == ShipmentStatus::Requested {
                    self.status = ShipmentStatus::Scheduled;
                }
            }
            ShipmentEvent::ShipmentRefused { reason } => {
                self.status = ShipmentStatus::Refused;
                self.refusal_reason = Some(reason.clone());
            }
            ShipmentEvent::ShipmentReleased => {
                if self.status == ShipmentStatus::Scheduled {
                    self.status = ShipmentStatus::Released;
                }
            }
            ShipmentEvent::ShipmentCancelled => self.status = ShipmentStatus::Cancelled,
            ShipmentEvent::ShipmentDispatched => self.status = ShipmentStatus::Dispatched,
            ShipmentEvent::ShipmentDelivered => self.status = ShipmentStatus::Delivered,
        }
    }
}

impl Aggregate for Shipment {
    type Command = ShipmentCommand;
    type Event = ShipmentEvent;
    type Rejection = ShipmentRejection;

    fn decide(&self, command: &ShipmentCommand) -> Decision {
        match command {
            ShipmentCommand::RequestShipment { address } => self.request(address),
            ShipmentCommand::RecordScheduled {
                tracking_ref,
                carrier,
            } => {
                let carrier_ok = carrier.as_deref().is_none_or(is_valid_reference);
                if !is_valid_reference(tracking_ref) || !carrier_ok {
                    return Err(ShipmentRejection::InvalidTrackingRef);
                }
                self.existing()?
                    .record_scheduled(tracking_ref, carrier.as_ref())
            }
            ShipmentCommand::RecordRefused { reason } => {
                if !is_valid_reason(reason) {
                    return Err(ShipmentRejection::InvalidReason);
                }
                self.existing()?.record_refused(reason)
            }
            ShipmentCommand::Release => self.existing()?.release(),
            ShipmentCommand::Cancel => self.existing()?.cancel(),
            ShipmentCommand::Dispatch => self.existing()?.dispatch(),
            ShipmentCommand::Deliver => self.existing()?.deliver(),
        }
    }

    fn evolve(mut self, event: &ShipmentEvent) -> Self {
        if let ShipmentEvent::ShipmentRequested { address } = event {
            self.requested = Some(Requested {
                address: address.clone(),
                status: ShipmentStatus::Requested,
                tracking_ref: None,
                refusal_reason: None,
                carrier: None,
            });
        } else if let Some(requested) = &mut self.requested {
            requested.apply(event);
        }
        self
    }
}
