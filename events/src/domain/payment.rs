//! Messages of the Payment aggregate: one payment per order, keyed by its
//! [`OrderId`].
//!
//! The saga records intents (`Request*`) and the asynchronous provider adapter
//! records the provider's answers (`Record*`), as a real payment provider
//! answers later. Ledger rule: captured <= authorized and refunded <= captured;
//! a void only before a capture, a refund only after one, and never a second
//! capture or refund.
//!
//! [`OrderId`]: crate::domain::ids::OrderId

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::domain::money::{Currency, Money};

/// Where a payment is, as the views and the provider adapter see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PaymentStatus {
    AuthorizationPending,
    Declined,
    Authorized,
    CapturePending,
    /// Authorized, and the last capture attempt failed; the saga may retry.
    CaptureFailed,
    /// A void was requested and the authorization (possibly a late one) is not
    /// voided yet.
    VoidPending,
    Voided,
    Captured,
    RefundPending,
    Refunded,
}

impl PaymentStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::AuthorizationPending => "authorization_pending",
            Self::Declined => "declined",
            Self::Authorized => "authorized",
            Self::CapturePending => "capture_pending",
            Self::CaptureFailed => "capture_failed",
            Self::VoidPending => "void_pending",
            Self::Voided => "voided",
            Self::Captured => "captured",
            Self::RefundPending => "refund_pending",
            Self::Refunded => "refunded",
        }
    }
}

impl fmt::Display for PaymentStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What can be asked of a payment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "type")]
pub enum PaymentCommand {
    /// Saga: authorize `amount` with the customer's payment token.
    RequestAuthorization { amount: Money, token: String },
    /// Saga: capture the full authorized amount.
    RequestCapture,
    /// Saga: release the authorization; only before a capture.
    RequestVoid,
    /// Saga: refund after a capture. `None` refunds everything captured. A
    /// payment is refunded at most once.
    RequestRefund { amount: Option<Money> },
    /// Provider adapter: the authorization succeeded.
    RecordAuthorized { provider_ref: String },
    /// Provider adapter: the authorization was declined.
    RecordDeclined { reason: String },
    /// Provider adapter: the requested capture succeeded.
    RecordCaptured,
    /// Provider adapter: the requested capture failed.
    RecordCaptureFailed { reason: String },
    /// Provider adapter: the authorization was voided.
    RecordVoided,
    /// Provider adapter: the requested refund was paid out.
    RecordRefunded,
}

impl PaymentCommand {
    pub fn command_type(&self) -> &'static str {
        match self {
            Self::RequestAuthorization { .. } => "RequestAuthorization",
            Self::RequestCapture => "RequestCapture",
            Self::RequestVoid => "RequestVoid",
            Self::RequestRefund { .. } => "RequestRefund",
            Self::RecordAuthorized { .. } => "RecordAuthorized",
            Self::RecordDeclined { .. } => "RecordDeclined",
            Self::RecordCaptured => "RecordCaptured",
            Self::RecordCaptureFailed { .. } => "RecordCaptureFailed",
            Self::RecordVoided => "RecordVoided",
            Self::RecordRefunded => "RecordRefunded",
        }
    }
}

/// What happened to a payment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "type")]
pub enum PaymentEvent {
    PaymentAuthorizationRequested {
        amount: Money,
        token: String,
    },
    /// May arrive after a void was requested; the void then stays pending so
    /// the provider adapter releases this late authorization.
    PaymentAuthorized {
        provider_ref: String,
        amount: Money,
    },
    PaymentDeclined {
        reason: String,
    },
    PaymentCaptureRequested {
        amount: Money,
    },
    PaymentCaptured {
        amount: Money,
    },
    PaymentCaptureFailed {
        reason: String,
    },
    PaymentVoidRequested,
    PaymentVoided {
        amount: Money,
    },
    PaymentRefundRequested {
        amount: Money,
    },
    PaymentRefunded {
        amount: Money,
    },
}

impl PaymentEvent {
    pub const SCHEMA_VERSION: u16 = 1;

    pub fn event_type(&self) -> &'static str {
        match self {
            Self::PaymentAuthorizationRequested { .. } => "PaymentAuthorizationRequested",
            Self::PaymentAuthorized { .. } => "PaymentAuthorized",
            Self::PaymentDeclined { .. } => "PaymentDeclined",
            Self::PaymentCaptureRequested { .. } => "PaymentCaptureRequested",
            Self::PaymentCaptured { .. } => "PaymentCaptured",
            Self::PaymentCaptureFailed { .. } => "PaymentCaptureFailed",
            Self::PaymentVoidRequested => "PaymentVoidRequested",
            Self::PaymentVoided { .. } => "PaymentVoided",
            Self::PaymentRefundRequested { .. } => "PaymentRefundRequested",
            Self::PaymentRefunded { .. } => "PaymentRefunded",
        }
    }
}

/// Why a payment command was refused without recording anything.
#[derive(
    Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum PaymentRejection {
    #[error("payment not found")]
    NotFound,
    #[error("invalid payment amount {amount}: must be positive")]
    InvalidAmount { amount: Money },
    #[error("invalid payment token: expected 1 to 200 printable characters")]
    InvalidToken,
    #[error("invalid provider reference: expected 1 to 200 printable characters")]
    InvalidProviderRef,
    #[error("invalid reason: expected 1 to 500 printable characters")]
    InvalidReason,
    #[error("payment authorization was already requested with a different amount or token")]
    AlreadyRequested,
    #[error("payment authorization is still pending")]
    AuthorizationPending,
    #[error("payment was declined")]
    Declined,
    #[error("payment was already authorized")]
    AlreadyAuthorized,
    #[error("payment was already authorized under a different provider reference")]
    ProviderRefMismatch,
    #[error("payment is not authorized")]
    NotAuthorized,
    #[error("a void of the payment is pending")]
    VoidPending,
    #[error("payment was voided")]
    Voided,
    #[error("payment was already captured")]
    AlreadyCaptured,
    #[error("payment capture is in progress")]
    CapturePending,
    #[error("no payment capture was requested")]
    CaptureNotRequested,
    #[error("no payment void was requested")]
    VoidNotRequested,
    #[error("payment is not captured")]
    NotCaptured,
    #[error("payment is in {expected}, a refund in {actual} is not possible")]
    RefundCurrencyMismatch {
        expected: Currency,
        actual: Currency,
    },
    #[error("refund of {requested} exceeds the captured {captured}")]
    RefundExceedsCaptured { requested: Money, captured: Money },
    #[error("a refund of {amount} was already requested")]
    RefundAlreadyRequested { amount: Money },
    #[error("no payment refund was requested")]
    RefundNotRequested,
}

impl PaymentRejection {
    /// Stable snake_case code, the suffix of the problem+json `type`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotFound => "payment_not_found",
            Self::InvalidAmount { .. } => "invalid_payment_amount",
            Self::InvalidToken => "invalid_payment_token",
            Self::InvalidProviderRef => "invalid_provider_ref",
            Self::InvalidReason => "invalid_reason",
            Self::AlreadyRequested => "payment_already_requested",
            Self::AuthorizationPending => "payment_authorization_pending",
            Self::Declined => "payment_declined",
            Self::AlreadyAuthorized => "payment_already_authorized",
            Self::ProviderRefMismatch => "payment_provider_ref_mismatch",
            Self::NotAuthorized => "payment_not_authorized",
            Self::VoidPending => "payment_void_pending",
            Self::Voided => "payment_voided",
            Self::AlreadyCaptured => "payment_already_captured",
            Self::CapturePending => "payment_capture_pending",
            Self::CaptureNotRequested => "payment_capture_not_requested",
            Self::VoidNotRequested => "payment_void_not_requested",
            Self::NotCaptured => "payment_not_captured",
            Self::RefundCurrencyMismatch { .. } => "refund_currency_mismatch",
            Self::RefundExceedsCaptured { .. } => "refund_exceeds_captured",
            Self::RefundAlreadyRequested { .. } => "refund_already_requested",
            Self::RefundNotRequested => "refund_not_requested",
        }
    }

    /// True when the payment's state conflicts with the command (HTTP 409);
    /// false when the command itself is invalid (HTTP 422).
    pub fn is_conflict(&self) -> bool {
        // An exhaustive match, so a new variant forces a decision here.
        match self {
            Self::NotFound
            | Self::InvalidAmount { .. }
            | Self::InvalidToken
            | Self::InvalidProviderRef
            | Self::InvalidReason
            | Self::RefundCurrencyMismatch { .. }
            | Self::RefundExceedsCaptured { .. } => false,
            Self::AlreadyRequested
            | Self::AuthorizationPending
            | Self::Declined
            | Self::AlreadyAuthorized
            | Self::ProviderRefMismatch
            | Self::NotAuthorized
            | Self::VoidPending
            | Self::Voided
            | Self::AlreadyCaptured
            | Self::CapturePending
            | Self::CaptureNotRequested
            | Self::VoidNotRequested
            | Self::NotCaptured
            | Self::RefundAlreadyRequested { .. }
            | Self::RefundNotRequested => true,
        }
    }

    /// True when the payment does not exist (HTTP 404).
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::NotFound)
    }
}
