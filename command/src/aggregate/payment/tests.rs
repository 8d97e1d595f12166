//! Given/when/then tests of the saga's payment intents, and of the state the
//! provider adapter reads.

use events::domain::money::{Currency, Money};
use events::domain::payment::{
    PaymentCommand as C, PaymentEvent as E, PaymentRejection as R, PaymentStatus,
};

use super::fixtures::*;
use super::{Payment, PaymentAction, PaymentLedger};
use crate::aggregate::Aggregate;
use crate::aggregate::testing::given_nothing;

fn request(amount: Money, token: &str) -> C {
    C::RequestAuthorization {
        amount,
        token: token.into(),
    }
}

#[test]
fn request_authorization_opens_the_payment() {
    given_nothing::<Payment>()
        .when(request(amount(), "tok_ok"))
        .then_events([authorization_requested()])
        .then_repeat_is_noop()
        .then_state(|payment| {
            assert!(payment.exists());
            assert_eq!(payment.status(), Some(PaymentStatus::AuthorizationPending));
            assert_eq!(payment.amount(), Some(amount()));
            assert_eq!(payment.token(), Some("tok_ok"));
        });
}

#[test]
fn request_authorization_validates_amount_and_token() {
    for minor in [0, -5] {
        given_nothing::<Payment>()
            .when(request(usd(minor), "tok_ok"))
            .then_rejects(R::InvalidAmount { amount: usd(minor) });
    }
    for token in ["", "  ", &"t".repeat(201)] {
        given_nothing::<Payment>()
            .when(request(amount(), token))
            .then_rejects(R::InvalidToken);
    }
}

#[test]
fn request_authorization_again_is_a_noop_when_identical_at_every_stage() {
    for stage in ALL_STAGES {
        expect(stage, request(amount(), "tok_ok"), Ok(vec![]));
        expect(stage, request(usd(1), "tok_ok"), Err(R::AlreadyRequested));
        expect(
            stage,
            request(amount(), "tok_other"),
            Err(R::AlreadyRequested),
        );
    }
}

#[test]
fn every_other_command_on_a_missing_payment_is_not_found() {
    let commands = [
        C::RequestCapture,
        C::RequestVoid,
        C::RequestRefund { amount: None },
        C::RecordAuthorized {
            provider_ref: "auth_1".into(),
        },
        C::RecordDeclined {
            reason: "no".into(),
        },
        C::RecordCaptured,
        C::RecordCaptureFailed {
            reason: "no".into(),
        },
        C::RecordVoided,
        C::RecordRefunded,
    ];
    for command in commands {
        given_nothing::<Payment>()
            .when(command)
            .then_rejects(R::NotFound);
    }
}

#[test]
fn request_capture_at_every_stage() {
    for stage in ALL_STAGES {
        let outcome = match stage {
            Stage::AuthorizationPending | Stage::VoidUnanswered => Err(R::AuthorizationPending),
            Stage::Declined => Err(R::Declined),
            Stage::Authorized | Stage::CaptureFailed => Ok(vec![capture_requested()]),
            Stage::CapturePending | Stage::Captured | Stage::RefundPending | Stage::Refunded => {
                Ok(vec![])
            }
            Stage::LateAuthorization | Stage::VoidPending | Stage::VoidAfterCaptureFailure => {
                Err(R::VoidPending)
            }
            Stage::Voided => Err(R::Voided),
        };
        expect(stage, C::RequestCapture, outcome);
    }
}

#[test]
fn request_void_at_every_stage() {
    for stage in ALL_STAGES {
        let outcome = match stage {
            Stage::AuthorizationPending | Stage::Authorized | Stage::CaptureFailed => {
                Ok(vec![E::PaymentVoidRequested])
            }
            Stage::Declined
            | Stage::VoidUnanswered
            | Stage::LateAuthorization
            | Stage::VoidPending
            | Stage::VoidAfterCaptureFailure
            | Stage::Voided => Ok(vec![]),
            Stage::CapturePending => Err(R::CapturePending),
            Stage::Captured | Stage::RefundPending | Stage::Refunded => Err(R::AlreadyCaptured),
        };
        expect(stage, C::RequestVoid, outcome);
    }
}

#[test]
fn request_refund_at_every_stage() {
    for stage in ALL_STAGES {
        let outcome = match stage {
            Stage::Captured => Ok(vec![refund_requested()]),
            Stage::RefundPending | Stage::Refunded => Ok(vec![]),
            _ => Err(R::NotCaptured),
        };
        expect(stage, C::RequestRefund { amount: None }, outcome);
    }
}

#[test]
fn request_refund_of_a_part_is_allowed_once() {
    let part = usd(1000);
    expect(
        Stage::Captured,
        C::RequestRefund { amount: Some(part) },
        Ok(vec![E::PaymentRefundRequested { amount: part }]),
    );
    let partly_refunded = [
        history(Stage::Captured),
        vec![E::PaymentRefundRequested { amount: part }],
    ];
    let payment = Payment::replay(&partly_refunded.concat());
    assert_eq!(
        payment.decide(&C::RequestRefund { amount: Some(part) }),
        Ok(vec![])
    );
    assert_eq!(
        payment.decide(&C::RequestRefund { amount: None }),
        Err(R::RefundAlreadyRequested { amount: part })
    );
}

#[test]
fn request_refund_validates_the_amount() {
    let captured = amount();
    let cases = [
        (usd(0), R::InvalidAmount { amount: usd(0) }),
        (
            usd(4499),
            R::RefundExceedsCaptured {
                requested: usd(4499),
                captured,
            },
        ),
        (
            Money::new(100, Currency::new("EUR").unwrap()),
            R::RefundCurrencyMismatch {
                expected: captured.currency,
                actual: Currency::new("EUR").unwrap(),
            },
        ),
    ];
    for (refund, rejection) in cases {
        expect(
            Stage::Captured,
            C::RequestRefund {
                amount: Some(refund),
            },
            Err(rejection),
        );
    }
}

#[test]
fn status_at_every_stage() {
    for stage in ALL_STAGES {
        let expected = match stage {
            Stage::AuthorizationPending => PaymentStatus::AuthorizationPending,
            Stage::Declined => PaymentStatus::Declined,
            Stage::Authorized => PaymentStatus::Authorized,
            Stage::CapturePending => PaymentStatus::CapturePending,
            Stage::CaptureFailed => PaymentStatus::CaptureFailed,
            Stage::Captured => PaymentStatus::Captured,
            Stage::VoidUnanswered
            | Stage::LateAuthorization
            | Stage::VoidPending
            | Stage::VoidAfterCaptureFailure => PaymentStatus::VoidPending,
            Stage::Voided => PaymentStatus::Voided,
            Stage::RefundPending => PaymentStatus::RefundPending,
            Stage::Refunded => PaymentStatus::Refunded,
        };
        let payment = Payment::replay(&history(stage));
        assert_eq!(payment.status(), Some(expected), "{stage:?}");
    }
}

#[test]
fn pending_action_tells_the_adapter_what_to_call() {
    let void = || PaymentAction::Void {
        provider_ref: "auth_1".into(),
        amount: amount(),
    };
    for stage in ALL_STAGES {
        let expected = match stage {
            Stage::AuthorizationPending => Some(PaymentAction::Authorize {
                amount: amount(),
                token: "tok_ok".into(),
            }),
            Stage::CapturePending => Some(PaymentAction::Capture { amount: amount() }),
            Stage::LateAuthorization | Stage::VoidPending | Stage::VoidAfterCaptureFailure => {
                Some(void())
            }
            Stage::RefundPending => Some(PaymentAction::Refund { amount: amount() }),
            Stage::Declined
            | Stage::Authorized
            | Stage::CaptureFailed
            | Stage::Captured
            | Stage::VoidUnanswered
            | Stage::Voided
            | Stage::Refunded => None,
        };
        let payment = Payment::replay(&history(stage));
        assert_eq!(payment.pending_action(), expected, "{stage:?}");
    }
}

#[test]
fn ledger_at_every_stage() {
    let zero = usd(0);
    for stage in ALL_STAGES {
        let authorized = if is_authorized(stage) { amount() } else { zero };
        let captured = match stage {
            Stage::Captured | Stage::RefundPending | Stage::Refunded => amount(),
            _ => zero,
        };
        let voided = if stage == Stage::Voided {
            amount()
        } else {
            zero
        };
        let refunded = if stage == Stage::Refunded {
            amount()
        } else {
            zero
        };
        let expected = PaymentLedger {
            authorized,
            captured,
            voided,
            refunded,
        };
        let payment = Payment::replay(&history(stage));
        assert_eq!(payment.ledger(), Some(expected), "{stage:?}");
    }
}

#[test]
fn a_late_authorization_is_recorded_and_left_to_void() {
    let payment = Payment::replay(&history(Stage::LateAuthorization));
    assert!(payment.void_pending());
    assert_eq!(payment.provider_ref(), Some("auth_1"));
    assert_eq!(payment.status(), Some(PaymentStatus::VoidPending));
}

#[test]
fn a_decline_settles_a_void_that_was_requested_before_it() {
    let history = vec![
        authorization_requested(),
        E::PaymentVoidRequested,
        declined(),
    ];
    let payment = Payment::replay(&history);
    assert!(!payment.void_pending());
    assert_eq!(payment.status(), Some(PaymentStatus::Declined));
    assert_eq!(payment.decline_reason(), Some("card declined"));
    assert_eq!(payment.pending_action(), None);
}
