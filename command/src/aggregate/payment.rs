//! The Payment aggregate: one per order, recording the saga's intents and the
//! payment provider's answers.
//!
//! The provider answers asynchronously, so every step is two events: the
//! intent (`PaymentCaptureRequested`) and the outcome (`PaymentCaptured`). The
//! state exposes the provider call still owed as [`PaymentAction`], which is
//! all the provider adapter needs to know, including after a restart.
//!
//! Ledger rule, enforced by `decide`: captured <= authorized and refunded <=
//! captured. There is one capture (of the full authorization) and at most one
//! refund, so a duplicate command can never move money twice.

use events::domain::money::Money;
use events::domain::payment::{PaymentCommand, PaymentEvent, PaymentRejection, PaymentStatus};
use events::domain::text::{is_valid_reason, is_valid_reference};

use super::Aggregate;

mod decisions;
#[cfg(test)]
mod fixtures;
#[cfg(test)]
mod proptests;
#[cfg(test)]
mod provider_tests;
#[cfg(test)]
mod tests;

type Decision = Result<Vec<PaymentEvent>, PaymentRejection>;

/// State of one order's payment.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Payment {
    requested: Option<Requested>,
}

/// The provider call the payment still owes, for the provider adapter.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum PaymentAction {
    Authorize {
        amount: Money,
        token: String,
    },
    Capture {
        amount: Money,
    },
    /// Also owed for a late authorization that arrived after a void request.
    Void {
        provider_ref: String,
        amount: Money,
    },
    Refund {
        amount: Money,
    },
}

/// Money moved so far, all in the payment's currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PaymentLedger {
    pub authorized: Money,
    pub captured: Money,
    pub voided: Money,
    pub refunded: Money,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Requested {
    amount: Money,
    token: String,
    authorization: Authorization,
    capture: Capture,
    void: Void,
    refund: Refund,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
enum Authorization {
    Pending,
    Authorized { provider_ref: String },
    Declined { reason: String },
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
enum Capture {
    NotRequested,
    Pending,
    Failed { reason: String },
    Captured,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
enum Void {
    NotRequested,
    Pending,
    Voided,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
enum Refund {
    NotRequested,
    Pending { amount: Money },
    Refunded { amount: Money },
}

impl Payment {
    pub fn exists(&self) -> bool {
        self.requested.is_some()
    }

    pub fn status(&self) -> Option<PaymentStatus> {
        self.requested.as_ref().map(Requested::status)
    }

    /// The amount whose authorization was requested.
    pub fn amount(&self) -> Option<Money> {
        self.requested.as_ref().map(|r| r.amount)
    }

    pub fn token(&self) -> Option<&str> {
        self.requested.as_ref().map(|r| r.token.as_str())
    }

    pub fn provider_ref(&self) -> Option<&str> {
        self.requested.as_ref()?.provider_ref()
    }

    pub fn ledger(&self) -> Option<PaymentLedger> {
        self.requested.as_ref().map(Requested::ledger)
    }

    /// True while a requested void has not been confirmed by the provider.
    pub fn void_pending(&self) -> bool {
        self.requested
            .as_ref()
            .is_some_and(|r| r.void == Void::Pending)
    }

    pub fn decline_reason(&self) -> Option<&str> {
        match &self.requested.as_ref()?.authorization {
            Authorization::Declined { reason } => Some(reason),
            _ => None,
        }
    }

    /// Why the last capture attempt failed, while no capture succeeded.
    pub fn capture_failure(&self) -> Option<&str> {
        match &self.requested.as_ref()?.capture {
            Capture::Failed { reason } => Some(reason),
            _ => None,
        }
    }

    /// The provider call still owed, if any.
    pub fn pending_action(&self) -> Option<PaymentAction> {
        self.requested.as_ref()?.pending_action()
    }

    fn existing(&self) -> Result<&Requested, PaymentRejection> {
        self.requested.as_ref().ok_or(PaymentRejection::NotFound)
    }

    fn request_authorization(&self, amount: Money, token: &str) -> Decision {
        if !amount.is_positive() {
            return Err(PaymentRejection::InvalidAmount { amount });
        }
        if !is_valid_reference(token) {
            return Err(PaymentRejection::InvalidToken);
        }
        match &self.requested {
            None => Ok(vec![PaymentEvent::PaymentAuthorizationRequested {
                amount,
                token: token.to_owned(),
            }]),
            Some(r) if r.amount == amount && r.token == token => Ok(vec![]),
            Some(_) => Err(PaymentRejection::AlreadyRequested),
        }
    }
}

impl Requested {
    fn provider_ref(&self) -> Option<&str> {
        match &self.authorization {
            Authorization::Authorized { provider_ref } => Some(provider_ref),
            _ => None,
        }
    }

    fn is_authorized(&self) -> bool {
        self.provider_ref().is_some()
    }

    fn status(&self) -> PaymentStatus {
        match (&self.authorization, &self.capture, self.void, self.refund) {
            (_, _, Void::Voided, _) => PaymentStatus::Voided,
            (_, _, _, Refund::Refunded { .. }) => PaymentStatus::Refunded,
            (_, _, _, Refund::Pending { .. }) => PaymentStatus::RefundPending,
            (_, Capture::Captured, _, _) => PaymentStatus::Captured,
            (Authorization::Declined { .. }, _, _, _) => PaymentStatus::Declined,
            (_, _, Void::Pending, _) => PaymentStatus::VoidPending,
            (_, Capture::Pending, _, _) => PaymentStatus::CapturePending,
            (_, Capture::Failed { .. }, _, _) => PaymentStatus::CaptureFailed,
            (Authorization::Authorized { .. }, _, _, _) => PaymentStatus::Authorized,
            (Authorization::Pending, _, _, _) => PaymentStatus::AuthorizationPending,
        }
    }

    fn ledger(&self) -> PaymentLedger {
        let zero = Money::zero(self.amount.currency);
        let amount_if = |held: bool| if held { self.amount } else { zero };
        PaymentLedger {
            authorized: amount_if(self.is_authorized()),
            captured: amount_if(self.capture == Capture::Captured),
            voided: amount_if(self.void == Void::Voided),
            refunded: match self.refund {
                Refund::Refunded { amount } => amount,
                _ => zero,
            },
        }
    }

    fn pending_action(&self) -> Option<PaymentAction> {
        if let Refund::Pending { amount } = self.refund {
            return Some(PaymentAction::Refund { amount });
        }
        if self.capture == Capture::Pending {
            return Some(PaymentAction::Capture {
                amount: self.amount,
            });
        }
        match (&self.authorization, self.void) {
            (Authorization::Authorized { provider_ref }, Void::Pending) => {
                Some(PaymentAction::Void {
                    provider_ref: provider_ref.clone(),
                    amount: self.amount,
                })
            }
            (Authorization::Pending, Void::NotRequested) => Some(PaymentAction::Authorize {
                amount: self.amount,
                token: self.token.clone(),
            }),
            _ => None,
        }
    }
}

impl Aggregate for Payment {
    type Command = PaymentCommand;
    type Event = PaymentEvent;
    type Rejection = PaymentRejection;

    fn decide(&self, command: &PaymentCommand) -> Decision {
        match command {
            PaymentCommand::RequestAuthorization { amount, token } => {
                self.request_authorization(*amount, token)
            }
            PaymentCommand::RequestCapture => self.existing()?.request_capture(),
            PaymentCommand::RequestVoid => self.existing()?.request_void(),
            PaymentCommand::RequestRefund { amount } => {
                if let Some(amount) = amount.filter(|a| !a.is_positive()) {
                    return Err(PaymentRejection::InvalidAmount { amount });
                }
                self.existing()?.request_refund(*amount)
            }
            PaymentCommand::RecordAuthorized { provider_ref } => {
                if !is_valid_reference(provider_ref) {
                    return Err(PaymentRejection::InvalidProviderRef);
                }
                self.existing()?.record_authorized(provider_ref)
            }
            PaymentCommand::RecordDeclined { reason } => {
                check_reason(reason)?;
                self.existing()?.record_declined(reason)
            }
            PaymentCommand::RecordCaptured => self.existing()?.record_captured(),
            PaymentCommand::RecordCaptureFailed { reason } => {
                check_reason(reason)?;
                self.existing()?.record_capture_failed(reason)
            }
            PaymentCommand::RecordVoided => self.existing()?.record_voided(),
            PaymentCommand::RecordRefunded => self.existing()?.record_refunded(),
        }
    }

    fn evolve(mut self, event: &PaymentEvent) -> Self {
        if let PaymentEvent::PaymentAuthorizationRequested { amount, token } = event {
            self.requested = Some(Requested {
                amount: *amount,
                token: token.clone(),
                authorization: Authorization::Pending,
                capture: Capture::NotRequested,
                void: Void::NotRequested,
                refund: Refund::NotRequested,
            });
        } else if let Some(requested) = &mut self.requested {
            requested.apply(event);
        }
        self
    }
}

fn check_reason(reason: &str) -> Result<(), PaymentRejection> {
    if is_valid_reason(reason) {
        Ok(())
    } else {
        Err(PaymentRejection::InvalidReason)
    }
}

impl Requested {
    fn apply(&mut self, event: &PaymentEvent) {
        match event {
            PaymentEvent::PaymentAuthorizationRequested { .. } => {}
            PaymentEvent::PaymentAuthorized { provider_ref, .. } => {
                self.authorization = Authorization::Authorized {
                    provider_ref: provider_ref.clone(),
                };
            }
            PaymentEvent::PaymentDeclined { reason } => {
                self.authorization = Authorization::Declined {
                    reason: reason.clone(),
                };
                // A void requested before the decline has nothing left to do.
                if self.void == Void::Pending {
                    self.void = Void::NotRequested;
                }
            }
            PaymentEvent::PaymentCaptureRequested { .. } => self.capture = Capture::Pending,
            PaymentEvent::PaymentCaptured { .. } => {
                // A capture that succeeded late wins over a pending void: the
                // money moved, so the way back is now a refund.
                self.capture = Capture::Captured;
                if self.void == Void::Pending {
                    self.void = Void::NotRequested;
                }
            }
            PaymentEvent::PaymentCaptureFailed { reason } => {
                self.capture = Capture::Failed {
                    reason: reason.clone(),
                };
            }
            PaymentEvent::PaymentVoidRequested => self.void = Void::Pending,
            PaymentEvent::PaymentVoided { .. } => self.void = Void::Voided,
            PaymentEvent::PaymentRefundRequested { amount } => {
                self.refund = Refund::Pending { amount: *amount };
            }
            PaymentEvent::PaymentRefunded { amount } => {
                self.refund = Refund::Refunded { amount: *amount };
            }
        }
    }
}
