//! How a requested payment decides on each command after the first.
//!
//! Each check is ordered so that an already-applied command is recognized
//! before any conflict, which is what makes retries by the saga and the
//! provider adapter safe.

use events::domain::money::Money;
use events::domain::payment::{PaymentEvent, PaymentRejection};

use super::{Authorization, Capture, Decision, Refund, Requested, Void};

impl Requested {
    pub(super) fn record_authorized(&self, provider_ref: &str) -> Decision {
        match &self.authorization {
            // Recorded even after a void request: the pending void then makes
            // the adapter release this late authorization.
            Authorization::Pending => Ok(vec![PaymentEvent::PaymentAuthorized {
                provider_ref: provider_ref.to_owned(),
                amount: self.amount,
            }]),
            Authorization::Authorized {
                provider_ref: known,
            } if known == provider_ref => Ok(vec![]),
            Authorization::Authorized { .. } => Err(PaymentRejection::ProviderRefMismatch),
            Authorization::Declined { .. } => Err(PaymentRejection::Declined),
        }
    }

    pub(super) fn record_declined(&self, reason: &str) -> Decision {
        match &self.authorization {
            Authorization::Pending => Ok(vec![PaymentEvent::PaymentDeclined {
                reason: reason.to_owned(),
            }]),
            Authorization::Declined { .. } => Ok(vec![]),
            Authorization::Authorized { .. } => Err(PaymentRejection::AlreadyAuthorized),
        }
    }

    pub(super) fn request_capture(&self) -> Decision {
        match (&self.authorization, self.void) {
            (Authorization::Pending, _) => return Err(PaymentRejection::AuthorizationPending),
            (Authorization::Declined { .. }, _) => return Err(PaymentRejection::Declined),
            (_, Void::Voided) => return Err(PaymentRejection::Voided),
            (_, Void::Pending) => return Err(PaymentRejection::VoidPending),
            (Authorization::Authorized { .. }, Void::NotRequested) => {}
        }
        match self.capture {
            Capture::Captured | Capture::Pending => Ok(vec![]),
            Capture::NotRequested | Capture::Failed { .. } => {
                Ok(vec![PaymentEvent::PaymentCaptureRequested {
                    amount: self.amount,
                }])
            }
        }
    }

    /// A success reported after a failure is still recorded: the provider is
    /// the authority on whether money moved.
    pub(super) fn record_captured(&self) -> Decision {
        if self.capture == Capture::Captured {
            return Ok(vec![]);
        }
        if !self.is_authorized() {
            return Err(PaymentRejection::NotAuthorized);
        }
        if self.void == Void::Voided {
            return Err(PaymentRejection::Voided);
        }
        match self.capture {
            Capture::NotRequested => Err(PaymentRejection::CaptureNotRequested),
            _ => Ok(vec![PaymentEvent::PaymentCaptured {
                amount: self.amount,
            }]),
        }
    }

    pub(super) fn record_capture_failed(&self, reason: &str) -> Decision {
        match self.capture {
            Capture::Pending => Ok(vec![PaymentEvent::PaymentCaptureFailed {
                reason: reason.to_owned(),
            }]),
            Capture::Failed { .. } => Ok(vec![]),
            Capture::Captured => Err(PaymentRejection::AlreadyCaptured),
            Capture::NotRequested => Err(PaymentRejection::CaptureNotRequested),
        }
    }

    pub(super) fn request_void(&self) -> Decision {
        if matches!(self.void, Void::Pending | Void::Voided) {
            return Ok(vec![]);
        }
        match (&self.authorization, &self.capture) {
            (_, Capture::Captured) => Err(PaymentRejection::AlreadyCaptured),
            (_, Capture::Pending) => Err(PaymentRejection::CapturePending),
            // Nothing was authorized, so nothing is left to release.
            (Authorization::Declined { .. }, _) => Ok(vec![]),
            _ => Ok(vec![PaymentEvent::PaymentVoidRequested]),
        }
    }

    pub(super) fn record_voided(&self) -> Decision {
        match self.void {
            Void::Voided => Ok(vec![]),
            Void::NotRequested => Err(PaymentRejection::VoidNotRequested),
            Void::Pending if !self.is_authorized() => Err(PaymentRejection::NotAuthorized),
            Void::Pending => Ok(vec![PaymentEvent::PaymentVoided {
                amount: self.amount,
            }]),
        }
    }

    /// `None` refunds everything captured. One refund per payment, so a repeat
    /// of the same refund is recognized and a different one is a conflict.
    pub(super) fn request_refund(&self, amount: Option<Money>) -> Decision {
        if self.capture != Capture::Captured {
            return Err(PaymentRejection::NotCaptured);
        }
        let captured = self.amount;
        let amount = amount.unwrap_or(captured);
        if amount.currency != captured.currency {
            return Err(PaymentRejection::RefundCurrencyMismatch {
                expected: captured.currency,
                actual: amount.currency,
            });
        }
        if amount.minor > captured.minor {
            return Err(PaymentRejection::RefundExceedsCaptured {
                requested: amount,
                captured,
            });
        }
        match self.refund {
            Refund::NotRequested => Ok(vec![PaymentEvent::PaymentRefundRequested { amount }]),
            Refund::Pending { amount: known } | Refund::Refunded { amount: known } => {
                if known == amount {
                    Ok(vec![])
                } else {
                    Err(PaymentRejection::RefundAlreadyRequested { amount: known })
                }
            }
        }
    }

    pub(super) fn record_refunded(&self) -> Decision {
        match self.refund {
            Refund::Pending { amount } => Ok(vec![PaymentEvent::PaymentRefunded { amount }]),
            Refund::Refunded { .. } => Ok(vec![]),
            Refund::NotRequested => Err(PaymentRejection::RefundNotRequested),
        }
    }
}
