//! Property: whatever sequence of saga intents and provider answers arrives,
//! in whatever order and however often repeated, the ledger holds:
//! captured <= authorized, refunded <= captured, nothing is both voided and
//! captured, and money is captured and refunded at most once.

use events::domain::money::{Currency, Money};
use events::domain::payment::{PaymentCommand as C, PaymentEvent as E};
use proptest::prelude::*;

use super::Payment;
use crate::aggregate::Aggregate;

/// Few distinct amounts, mostly in one currency, so that refunds and
/// authorizations often meet at, just below and just above each other.
fn money() -> impl Strategy<Value = Money> {
    let currency = prop_oneof![4 => Just("USD"), 1 => Just("EUR")];
    let minor = prop::sample::select(vec![-1i64, 0, 1, 999, 1000, 1001]);
    (minor, currency).prop_map(|(minor, code)| Money::new(minor, Currency::new(code).unwrap()))
}

/// Weighted towards the happy path, so that long sequences reach captures and
/// refunds instead of dying early on a decline or a void.
fn command() -> impl Strategy<Value = C> {
    let text = || prop_oneof![Just("auth_1".to_owned()), Just("auth_2".to_owned())];
    let token = prop_oneof![Just("tok_ok"), Just("tok_x")];
    prop_oneof![
        2 => (money(), token).prop_map(|(amount, token)| C::RequestAuthorization {
            amount,
            token: token.into(),
        }),
        3 => Just(C::RequestCapture),
        1 => Just(C::RequestVoid),
        3 => prop::option::of(money()).prop_map(|amount| C::RequestRefund { amount }),
        3 => text().prop_map(|provider_ref| C::RecordAuthorized { provider_ref }),
        1 => text().prop_map(|reason| C::RecordDeclined { reason }),
        3 => Just(C::RecordCaptured),
        1 => text().prop_map(|reason| C::RecordCaptureFailed { reason }),
        2 => Just(C::RecordVoided),
        3 => Just(C::RecordRefunded),
    ]
}

/// Money that moved according to the events themselves, independently of the
/// aggregate's own bookkeeping.
#[derive(Debug, Default)]
struct Moved {
    authorized: i64,
    captures: u32,
    captured: i64,
    refunds: u32,
    refunded: i64,
    voided: i64,
}

impl Moved {
    fn record(&mut self, event: &E) {
        match event {
            E::PaymentAuthorized { amount, .. } => self.authorized += amount.minor,
            E::PaymentCaptured { amount } => {
                self.captures += 1;
                self.captured += amount.minor;
            }
            E::PaymentRefunded { amount } => {
                self.refunds += 1;
                self.refunded += amount.minor;
            }
            E::PaymentVoided { amount } => self.voided += amount.minor,
            _ => {}
        }
    }
}

fn check(payment: &Payment, moved: &Moved) -> Result<(), TestCaseError> {
    prop_assert!(moved.captures <= 1 && moved.refunds <= 1, "{:?}", moved);
    prop_assert!(moved.captured <= moved.authorized, "{:?}", moved);
    prop_assert!(moved.refunded <= moved.captured, "{:?}", moved);
    prop_assert!(moved.voided == 0 || moved.captured == 0, "{:?}", moved);
    prop_assert!(moved.refunded >= 0);
    if let Some(ledger) = payment.ledger() {
        let currency = ledger.authorized.currency;
        prop_assert!(ledger.captured.minor <= ledger.authorized.minor);
        prop_assert!(ledger.refunded.minor <= ledger.captured.minor);
        prop_assert!(ledger.voided.minor + ledger.captured.minor <= ledger.authorized.minor);
        prop_assert_eq!(ledger.captured.minor, moved.captured);
        prop_assert_eq!(ledger.refunded.minor, moved.refunded);
        for amount in [ledger.captured, ledger.voided, ledger.refunded] {
            prop_assert_eq!(amount.currency, currency);
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn the_ledger_always_holds(commands in prop::collection::vec(command(), 0..60)) {
        let mut payment = Payment::default();
        let mut moved = Moved::default();
        for command in &commands {
            if let Ok((next, events)) = payment.clone().handle(command) {
                events.iter().for_each(|event| moved.record(event));
                payment = next;
            }
            check(&payment, &moved)?;
        }
    }

    #[test]
    fn repeating_any_accepted_command_moves_no_more_money(
        commands in prop::collection::vec(command(), 0..60),
    ) {
        let mut payment = Payment::default();
        let mut moved = Moved::default();
        for command in &commands {
            // Every command is delivered twice, as a redelivery would.
            for _ in 0..2 {
                if let Ok((next, events)) = payment.clone().handle(command) {
                    events.iter().for_each(|event| moved.record(event));
                    payment = next;
                }
            }
            check(&payment, &moved)?;
        }
    }
}
