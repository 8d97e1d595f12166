//! Shared test data for the Payment aggregate tests: every stage a payment
//! can reach, with the history that leads there.

use events::domain::money::{Currency, Money};
use events::domain::payment::{PaymentCommand, PaymentEvent as E, PaymentRejection};

use crate::aggregate::testing::given;

pub fn usd(minor: i64) -> Money {
    Money::new(minor, Currency::new("USD").unwrap())
}

/// The amount every fixture payment is for: 44.98 USD.
pub fn amount() -> Money {
    usd(4498)
}

pub fn authorization_requested() -> E {
    E::PaymentAuthorizationRequested {
        amount: amount(),
        token: "tok_ok".into(),
    }
}

pub fn authorized() -> E {
    E::PaymentAuthorized {
        provider_ref: "auth_1".into(),
        amount: amount(),
    }
}

pub fn declined() -> E {
    E::PaymentDeclined {
        reason: "card declined".into(),
    }
}

pub fn capture_requested() -> E {
    E::PaymentCaptureRequested { amount: amount() }
}

pub fn captured() -> E {
    E::PaymentCaptured { amount: amount() }
}

pub fn capture_failed() -> E {
    E::PaymentCaptureFailed {
        reason: "provider unavailable".into(),
    }
}

pub fn voided() -> E {
    E::PaymentVoided { amount: amount() }
}

pub fn refund_requested() -> E {
    E::PaymentRefundRequested { amount: amount() }
}

pub fn refunded() -> E {
    E::PaymentRefunded { amount: amount() }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    AuthorizationPending,
    Declined,
    Authorized,
    CapturePending,
    CaptureFailed,
    Captured,
    /// A void was requested before the provider answered the authorization.
    VoidUnanswered,
    /// The authorization arrived after the void request.
    LateAuthorization,
    VoidPending,
    /// Capture failed, then the saga gave up and requested a void.
    VoidAfterCaptureFailure,
    Voided,
    RefundPending,
    Refunded,
}

pub const ALL_STAGES: [Stage; 13] = [
    Stage::AuthorizationPending,
    Stage::Declined,
    Stage::Authorized,
    Stage::CapturePending,
    Stage::CaptureFailed,
    Stage::Captured,
    Stage::VoidUnanswered,
    Stage::LateAuthorization,
    Stage::VoidPending,
    Stage::VoidAfterCaptureFailure,
    Stage::Voided,
    Stage::RefundPending,
    Stage::Refunded,
];

/// The stages in which the provider has authorized the payment.
pub fn is_authorized(stage: Stage) -> bool {
    !matches!(
        stage,
        Stage::AuthorizationPending | Stage::Declined | Stage::VoidUnanswered
    )
}

pub fn history(stage: Stage) -> Vec<E> {
    let void = E::PaymentVoidRequested;
    let authorized_history = vec![authorization_requested(), authorized()];
    let with = |base: &[E], more: &[E]| [base, more].concat();
    let captured_history = with(&authorized_history, &[capture_requested(), captured()]);
    let failed_history = with(
        &authorized_history,
        &[capture_requested(), capture_failed()],
    );
    match stage {
        Stage::AuthorizationPending => vec![authorization_requested()],
        Stage::Declined => vec![authorization_requested(), declined()],
        Stage::Authorized => authorized_history,
        Stage::CapturePending => with(&authorized_history, &[capture_requested()]),
        Stage::CaptureFailed => failed_history,
        Stage::Captured => captured_history,
        Stage::VoidUnanswered => vec![authorization_requested(), void],
        Stage::LateAuthorization => vec![authorization_requested(), void, authorized()],
        Stage::VoidPending => with(&authorized_history, &[void]),
        Stage::VoidAfterCaptureFailure => with(&failed_history, &[void]),
        Stage::Voided => with(&authorized_history, &[void, voided()]),
        Stage::RefundPending => with(&captured_history, &[refund_requested()]),
        Stage::Refunded => with(&captured_history, &[refund_requested(), refunded()]),
    }
}

/// Runs `command` at `stage` and checks the whole outcome.
#[track_caller]
pub fn expect(stage: Stage, command: PaymentCommand, outcome: Result<Vec<E>, PaymentRejection>) {
    let then = given(history(stage)).when(command);
    match outcome {
        Ok(events) => then.then_events(events),
        Err(rejection) => then.then_rejects(rejection),
    };
}
