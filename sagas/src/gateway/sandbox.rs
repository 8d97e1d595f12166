//! The deterministic sandbox provider and carrier, like a payment provider's
//! test cards:
//!
//! - `tok_ok` and any other unknown token: authorized and captured normally;
//! - `tok_decline`: authorization declined;
//! - `tok_no_response`: the authorization is never answered;
//! - `tok_capture_fail`: authorized, every capture fails;
//! - `tok_capture_no_response`: authorized, no capture is ever answered (the
//!   saga parks for an operator: only a person can find out whether the
//!   money was taken);
//! - `tok_flaky`: the first two tries of each call fail transiently, then
//!   succeed (judged by the call's attempt number, so the answers are the
//!   same after a restart);
//! - a shipping address in country `ZZ`: the carrier refuses the shipment.
//!
//! Every call answers after `latency`, asynchronously like a real provider.

use std::time::Duration;

use events::domain::{Address, Money, OrderId};

use super::provider::{
    Authorization, Booking, Capture, Carrier, PaymentProvider, PaymentRef, Transient,
};

pub const TOKEN_DECLINE: &str = "tok_decline";
pub const TOKEN_NO_RESPONSE: &str = "tok_no_response";
pub const TOKEN_CAPTURE_FAIL: &str = "tok_capture_fail";
pub const TOKEN_CAPTURE_NO_RESPONSE: &str = "tok_capture_no_response";
pub const TOKEN_FLAKY: &str = "tok_flaky";
pub const REFUSED_COUNTRY: &str = "ZZ";

/// Tries of each call of a flaky payment that fail.
const FLAKY_FAILURES: u32 = 2;

/// The sandbox holds no state: every answer follows from the call alone.
#[derive(Debug, Default)]
pub struct Sandbox {
    latency: Duration,
}

impl Sandbox {
    pub fn new(latency: Duration) -> Sandbox {
        Sandbox { latency }
    }

    /// Waits like a network call; fails the first tries of a flaky payment.
    async fn call(&self, payment: &PaymentRef, kind: &'static str) -> Result<(), Transient> {
        tokio::time::sleep(self.latency).await;
        if payment.token == TOKEN_FLAKY && payment.attempt <= FLAKY_FAILURES {
            return Err(Transient(format!(
                "sandbox: {kind} try {} failed (tok_flaky)",
                payment.attempt
            )));
        }
        Ok(())
    }
}

impl PaymentProvider for Sandbox {
    async fn authorize(
        &self,
        payment: &PaymentRef,
        _amount: Money,
    ) -> Result<Authorization, Transient> {
        self.call(payment, "authorize").await?;
        Ok(match payment.token.as_str() {
            TOKEN_DECLINE => Authorization::Declined {
                reason: "card_declined".to_owned(),
            },
            TOKEN_NO_RESPONSE => Authorization::NoAnswer,
            _ => Authorization::Authorized {
                provider_ref: format!("sbx_auth_{}", payment.order_id),
            },
        })
    }

    async fn capture(&self, payment: &PaymentRef, _amount: Money) -> Result<Capture, Transient> {
        self.call(payment, "capture").await?;
        Ok(match payment.token.as_str() {
            TOKEN_CAPTURE_FAIL => Capture::Failed {
                reason: "capture_failed".to_owned(),
            },
            TOKEN_CAPTURE_NO_RESPONSE => Capture::NoAnswer,
            _ => Capture::Captured,
        })
    }

    async fn void(&self, payment: &PaymentRef) -> Result<(), Transient> {
        self.call(payment, "void").await
    }

    async fn refund(&self, payment: &PaymentRef, _amount: Money) -> Result<(), Transient> {
        self.call(payment, "refund").await
    }
}

/// The sandbox carrier's id: tokens with `role: carrier, sub: sandbox-carrier`
/// dispatch and deliver its shipments.
pub const SANDBOX_CARRIER: &str = "sandbox-carrier";

impl Carrier for Sandbox {
    fn id(&self) -> &str {
        SANDBOX_CARRIER
    }

    async fn schedule(&self, order_id: OrderId, address: &Address) -> Result<Booking, Transient> {
        tokio::time::sleep(self.latency).await;
        Ok(if address.country == REFUSED_COUNTRY {
            Booking::Refused {
                reason: "destination_not_served".to_owned(),
            }
        } else {
            Booking::Scheduled {
                tracking_ref: format!("SBX-{order_id}"),
            }
        })
    }

    async fn cancel(
        &self,
        _order_id: OrderId,
        _tracking_ref: Option<&str>,
    ) -> Result<(), Transient> {
        tokio::time::sleep(self.latency).await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use events::domain::Currency;
    use uuid::Uuid;

    fn payment(token: &str) -> PaymentRef {
        PaymentRef {
            order_id: OrderId::from_uuid(Uuid::from_u128(7)),
            token: token.to_owned(),
            provider_ref: None,
            attempt: 1,
        }
    }

    fn usd() -> Money {
        Money::new(1000, Currency::new("USD").unwrap())
    }

    #[tokio::test]
    async fn tokens_behave_as_documented() {
        let sandbox = Sandbox::new(Duration::ZERO);
        let authorize = |token: &str| {
            let payment = payment(token);
            let sandbox = &sandbox;
            async move { sandbox.authorize(&payment, usd()).await }
        };
        assert!(matches!(
            authorize("tok_ok").await,
            Ok(Authorization::Authorized { .. })
        ));
        assert!(matches!(
            authorize("tok_anything").await,
            Ok(Authorization::Authorized { .. })
        ));
        assert!(matches!(
            authorize(TOKEN_DECLINE).await,
            Ok(Authorization::Declined { .. })
        ));
        assert_eq!(
            authorize(TOKEN_NO_RESPONSE).await.unwrap(),
            Authorization::NoAnswer
        );
        let failing = payment(TOKEN_CAPTURE_FAIL);
        for _ in 0..5 {
            let capture = sandbox.capture(&failing, usd()).await.unwrap();
            assert!(matches!(capture, Capture::Failed { .. }));
        }
        assert_eq!(
            sandbox.capture(&payment("tok_ok"), usd()).await.unwrap(),
            Capture::Captured
        );
        let silent = payment(TOKEN_CAPTURE_NO_RESPONSE);
        assert!(matches!(
            sandbox.authorize(&silent, usd()).await,
            Ok(Authorization::Authorized { .. })
        ));
        assert_eq!(
            sandbox.capture(&silent, usd()).await.unwrap(),
            Capture::NoAnswer
        );
    }

    #[tokio::test]
    async fn flaky_fails_the_first_two_tries_of_every_call_then_succeeds() {
        let flaky = payment(TOKEN_FLAKY);
        // A fresh sandbox (a restarted gateway) answers exactly the same.
        for sandbox in [Sandbox::new(Duration::ZERO), Sandbox::new(Duration::ZERO)] {
            assert!(sandbox.authorize(&flaky.at(1), usd()).await.is_err());
            assert!(sandbox.authorize(&flaky.at(2), usd()).await.is_err());
            assert!(sandbox.authorize(&flaky.at(3), usd()).await.is_ok());
            assert!(sandbox.capture(&flaky.at(2), usd()).await.is_err());
            assert_eq!(
                sandbox.capture(&flaky.at(3), usd()).await.unwrap(),
                Capture::Captured
            );
        }
    }

    #[tokio::test]
    async fn the_carrier_refuses_country_zz() {
        let sandbox = Sandbox::new(Duration::ZERO);
        let mut address = Address {
            name: "A".into(),
            line1: "1 Main St".into(),
            city: "X".into(),
            postal_code: "1".into(),
            country: "US".into(),
        };
        let order = OrderId::from_uuid(Uuid::from_u128(1));
        assert!(matches!(
            sandbox.schedule(order, &address).await,
            Ok(Booking::Scheduled { .. })
        ));
        address.country = REFUSED_COUNTRY.into();
        assert!(matches!(
            sandbox.schedule(order, &address).await,
            Ok(Booking::Refused { .. })
        ));
    }
}
