//! Given/when/then tests of the provider adapter's answers at every stage.

use events::domain::payment::{PaymentCommand as C, PaymentEvent as E, PaymentRejection as R};

use super::fixtures::*;
use crate::aggregate::Aggregate;
use crate::aggregate::testing::given;

fn record_authorized(provider_ref: &str) -> C {
    C::RecordAuthorized {
        provider_ref: provider_ref.into(),
    }
}

#[test]
fn record_authorized_at_every_stage() {
    for stage in ALL_STAGES {
        let outcome = match stage {
            Stage::AuthorizationPending | Stage::VoidUnanswered => Ok(vec![authorized()]),
            Stage::Declined => Err(R::Declined),
            _ => Ok(vec![]),
        };
        expect(stage, record_authorized("auth_1"), outcome);
    }
}

#[test]
fn record_authorized_under_another_reference_is_a_conflict() {
    for stage in ALL_STAGES.into_iter().filter(|s| is_authorized(*s)) {
        expect(
            stage,
            record_authorized("auth_2"),
            Err(R::ProviderRefMismatch),
        );
    }
}

#[test]
fn record_declined_at_every_stage() {
    let command = || C::RecordDeclined {
        reason: "card declined".into(),
    };
    for stage in ALL_STAGES {
        let outcome = match stage {
            Stage::AuthorizationPending | Stage::VoidUnanswered => Ok(vec![declined()]),
            Stage::Declined => Ok(vec![]),
            _ => Err(R::AlreadyAuthorized),
        };
        expect(stage, command(), outcome);
    }
}

#[test]
fn record_captured_at_every_stage() {
    for stage in ALL_STAGES {
        let outcome = match stage {
            Stage::CapturePending | Stage::CaptureFailed | Stage::VoidAfterCaptureFailure => {
                Ok(vec![captured()])
            }
            Stage::Captured | Stage::RefundPending | Stage::Refunded => Ok(vec![]),
            Stage::AuthorizationPending | Stage::Declined | Stage::VoidUnanswered => {
                Err(R::NotAuthorized)
            }
            Stage::Authorized | Stage::LateAuthorization | Stage::VoidPending => {
                Err(R::CaptureNotRequested)
            }
            Stage::Voided => Err(R::Voided),
        };
        expect(stage, C::RecordCaptured, outcome);
    }
}

#[test]
fn a_capture_that_succeeds_after_a_void_request_wins_and_needs_a_refund() {
    given(history(Stage::VoidAfterCaptureFailure))
        .when(C::RecordCaptured)
        .then_repeat_is_noop()
        .then_state(|payment| {
            assert!(!payment.void_pending());
            assert_eq!(payment.pending_action(), None);
        })
        .then_state(|payment| {
            let refund = payment.decide(&C::RequestRefund { amount: None });
            assert_eq!(refund, Ok(vec![refund_requested()]));
        });
}

#[test]
fn record_capture_failed_at_every_stage() {
    let command = || C::RecordCaptureFailed {
        reason: "provider unavailable".into(),
    };
    for stage in ALL_STAGES {
        let outcome = match stage {
            Stage::CapturePending => Ok(vec![capture_failed()]),
            Stage::CaptureFailed | Stage::VoidAfterCaptureFailure => Ok(vec![]),
            Stage::Captured | Stage::RefundPending | Stage::Refunded => Err(R::AlreadyCaptured),
            _ => Err(R::CaptureNotRequested),
        };
        expect(stage, command(), outcome);
    }
}

#[test]
fn record_voided_at_every_stage() {
    for stage in ALL_STAGES {
        let outcome = match stage {
            Stage::LateAuthorization | Stage::VoidPending | Stage::VoidAfterCaptureFailure => {
                Ok(vec![voided()])
            }
            Stage::Voided => Ok(vec![]),
            Stage::VoidUnanswered => Err(R::NotAuthorized),
            _ => Err(R::VoidNotRequested),
        };
        expect(stage, C::RecordVoided, outcome);
    }
}

#[test]
fn record_refunded_at_every_stage() {
    for stage in ALL_STAGES {
        let outcome = match stage {
            Stage::RefundPending => Ok(vec![refunded()]),
            Stage::Refunded => Ok(vec![]),
            _ => Err(R::RefundNotRequested),
        };
        expect(stage, C::RecordRefunded, outcome);
    }
}

#[test]
fn provider_answers_are_validated() {
    for bad in ["", " ", &"x".repeat(201)] {
        expect(
            Stage::AuthorizationPending,
            record_authorized(bad),
            Err(R::InvalidProviderRef),
        );
    }
    for bad in ["", "\n", &"x".repeat(501)] {
        let decline = C::RecordDeclined { reason: bad.into() };
        expect(Stage::AuthorizationPending, decline, Err(R::InvalidReason));
        let failure = C::RecordCaptureFailed { reason: bad.into() };
        expect(Stage::CapturePending, failure, Err(R::InvalidReason));
    }
}

#[test]
fn the_happy_path_captures_once() {
    given(history(Stage::Authorized))
        .when(C::RequestCapture)
        .then_events([E::PaymentCaptureRequested { amount: amount() }])
        .then_repeat_is_noop();
    given(history(Stage::CapturePending))
        .when(C::RecordCaptured)
        .then_events([captured()])
        .then_repeat_is_noop();
}
