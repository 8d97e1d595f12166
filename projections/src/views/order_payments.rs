//! The `order_payments` view: the payment status of each order, fed by
//! `payments.events` (whose aggregate id is the order id).
//!
//! The row keeps the four independent parts of a payment (authorization,
//! capture, void, refund) because its status is derived from all of them,
//! exactly as the Payment aggregate derives it: a late authorization after a
//! void request stays `void_pending`, a late capture wins over a pending void.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use events::EventMeta;
use events::domain::{PaymentEvent, PaymentStatus};
use serde::Deserialize;
use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;

use super::{already_applied, sequence};

const NOT_REQUESTED: &str = "not_requested";
const PENDING: &str = "pending";

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, sqlx::FromRow)]
pub struct PaymentRow {
    pub order_id: Uuid,
    pub status: String,
    /// `pending`, `authorized` or `declined`.
    pub authorization_state: String,
    /// `not_requested`, `pending`, `failed` or `captured`.
    pub capture_state: String,
    /// `not_requested`, `pending` or `voided`.
    pub void_state: String,
    /// `not_requested`, `pending` or `refunded`.
    pub refund_state: String,
    pub amount_minor: i64,
    pub currency: String,
    pub version: i64,
    pub updated_at: DateTime<Utc>,
}

/// The fold: one payment event applied to the payment it names.
pub fn evolve(
    row: Option<PaymentRow>,
    meta: &EventMeta,
    event: &PaymentEvent,
) -> Option<PaymentRow> {
    if let Some(row) = &row
        && already_applied(row.version, meta)
    {
        return Some(row.clone());
    }
    let mut row = match (row, event) {
        (None, PaymentEvent::PaymentAuthorizationRequested { amount, .. }) => PaymentRow {
            order_id: Uuid::parse_str(&meta.aggregate_id).ok()?,
            status: String::new(),
            authorization_state: PENDING.into(),
            capture_state: NOT_REQUESTED.into(),
            void_state: NOT_REQUESTED.into(),
            refund_state: NOT_REQUESTED.into(),
            amount_minor: amount.minor,
            currency: amount.currency.code().to_owned(),
            version: 0,
            updated_at: meta.occurred_at,
        },
        (None, _) => return None,
        (Some(row), event) => apply(row, event),
    };
    row.status = status(&row).as_str().to_owned();
    row.version = sequence(meta);
    row.updated_at = meta.occurred_at;
    Some(row)
}

fn apply(mut row: PaymentRow, event: &PaymentEvent) -> PaymentRow {
    let set = |field: &mut String, value: &str| *field = value.to_owned();
    match event {
        PaymentEvent::PaymentAuthorizationRequested { .. } => {}
        PaymentEvent::PaymentAuthorized { .. } => set(&mut row.authorization_state, "authorized"),
        PaymentEvent::PaymentDeclined { .. } => {
            set(&mut row.authorization_state, "declined");
            // A void requested before the decline has nothing left to do.
            if row.void_state == PENDING {
                set(&mut row.void_state, NOT_REQUESTED);
            }
        }
        PaymentEvent::PaymentCaptureRequested { .. } => set(&mut row.capture_state, PENDING),
        PaymentEvent::PaymentCaptured { .. } => {
            // The money moved, so a pending void is moot: the way back is a refund.
            set(&mut row.capture_state, "captured");
            if row.void_state == PENDING {
                set(&mut row.void_state, NOT_REQUESTED);
            }
        }
        PaymentEvent::PaymentCaptureFailed { .. } => set(&mut row.capture_state, "failed"),
        PaymentEvent::PaymentVoidRequested => set(&mut row.void_state, PENDING),
        PaymentEvent::PaymentVoided { .. } => set(&mut row.void_state, "voided"),
        PaymentEvent::PaymentRefundRequested { .. } => set(&mut row.refund_state, PENDING),
        PaymentEvent::PaymentRefunded { .. } => set(&mut row.refund_state, "refunded"),
    }
    row
}

/// The status the Payment aggregate reports for these parts, in its precedence.
fn status(row: &PaymentRow) -> PaymentStatus {
    let parts = (
        row.authorization_state.as_str(),
        row.capture_state.as_str(),
        row.void_state.as_str(),
        row.refund_state.as_str(),
    );
    match parts {
        (_, _, "voided", _) => PaymentStatus::Voided,
        (_, _, _, "refunded") => PaymentStatus::Refunded,
        (_, _, _, PENDING) => PaymentStatus::RefundPending,
        (_, "captured", _, _) => PaymentStatus::Captured,
        ("declined", _, _, _) => PaymentStatus::Declined,
        (_, _, PENDING, _) => PaymentStatus::VoidPending,
        (_, PENDING, _, _) => PaymentStatus::CapturePending,
        (_, "failed", _, _) => PaymentStatus::CaptureFailed,
        ("authorized", _, _, _) => PaymentStatus::Authorized,
        _ => PaymentStatus::AuthorizationPending,
    }
}

const COLUMNS: &str = "order_id, status, authorization_state, capture_state, void_state, \
                       refund_state, amount_minor, currency, version, updated_at";

pub async fn store(
    tx: &mut Transaction<'_, Postgres>,
    mut rows: Vec<&PaymentRow>,
) -> Result<(), sqlx::Error> {
    if rows.is_empty() {
        return Ok(());
    }
    rows.sort_by_key(|r| r.order_id);
    let text = |f: fn(&PaymentRow) -> &str| rows.iter().map(|r| f(r)).collect::<Vec<_>>();
    sqlx::query(&format!(
        "INSERT INTO order_payments ({COLUMNS})
         SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[],
                              $6::text[], $7::bigint[], $8::text[], $9::bigint[],
                              $10::timestamptz[])
         ON CONFLICT (order_id) DO UPDATE SET
           status = EXCLUDED.status, authorization_state = EXCLUDED.authorization_state,
           capture_state = EXCLUDED.capture_state, void_state = EXCLUDED.void_state,
           refund_state = EXCLUDED.refund_state, version = EXCLUDED.version,
           updated_at = EXCLUDED.updated_at
         WHERE order_payments.version < EXCLUDED.version"
    ))
    .bind(rows.iter().map(|r| r.order_id).collect::<Vec<_>>())
    .bind(text(|r| &r.status))
    .bind(text(|r| &r.authorization_state))
    .bind(text(|r| &r.capture_state))
    .bind(text(|r| &r.void_state))
    .bind(text(|r| &r.refund_state))
    .bind(rows.iter().map(|r| r.amount_minor).collect::<Vec<_>>())
    .bind(text(|r| &r.currency))
    .bind(rows.iter().map(|r| r.version).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.updated_at).collect::<Vec<_>>())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The rows of the orders under `ids` that have one.
pub async fn find_many(
    conn: &mut sqlx::PgConnection,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, PaymentRow>, sqlx::Error> {
    super::rows_by_order(conn, "order_payments", COLUMNS, ids, |r: &PaymentRow| {
        r.order_id
    })
    .await
}

pub async fn version(pool: &PgPool, order_id: Uuid) -> Result<i64, sqlx::Error> {
    let row: Option<(i64,)> =
        sqlx::query_as("SELECT version FROM order_payments WHERE order_id = $1")
            .bind(order_id)
            .fetch_optional(pool)
            .await?;
    Ok(row.map_or(0, |(v,)| v))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::views::testing::meta;
    use events::AggregateType;
    use events::domain::{Currency, Money};

    const ID: &str = "01900000-0000-7000-8000-000000000002";

    fn usd(minor: i64) -> Money {
        Money::new(minor, Currency::new("USD").unwrap())
    }

    fn status_after(events: &[PaymentEvent]) -> Option<String> {
        let row = events.iter().enumerate().fold(None, |row, (n, event)| {
            evolve(
                row,
                &meta(AggregateType::Payment, ID, n as u64 + 1, event.event_type()),
                event,
            )
        });
        row.map(|r| r.status)
    }

    fn requested() -> PaymentEvent {
        PaymentEvent::PaymentAuthorizationRequested {
            amount: usd(500),
            token: "tok_ok".into(),
        }
    }

    fn authorized() -> PaymentEvent {
        PaymentEvent::PaymentAuthorized {
            provider_ref: "p-1".into(),
            amount: usd(500),
        }
    }

    #[test]
    fn the_happy_path_ends_captured() {
        assert_eq!(
            status_after(&[requested()]).as_deref(),
            Some("authorization_pending")
        );
        assert_eq!(
            status_after(&[requested(), authorized()]).as_deref(),
            Some("authorized")
        );
        let captured = [
            requested(),
            authorized(),
            PaymentEvent::PaymentCaptureRequested { amount: usd(500) },
            PaymentEvent::PaymentCaptured { amount: usd(500) },
        ];
        assert_eq!(status_after(&captured).as_deref(), Some("captured"));
    }

    #[test]
    fn a_late_authorization_after_a_void_request_stays_void_pending() {
        let events = [
            requested(),
            PaymentEvent::PaymentVoidRequested,
            authorized(),
        ];
        assert_eq!(status_after(&events).as_deref(), Some("void_pending"));
        let voided = [
            requested(),
            PaymentEvent::PaymentVoidRequested,
            authorized(),
            PaymentEvent::PaymentVoided { amount: usd(500) },
        ];
        assert_eq!(status_after(&voided).as_deref(), Some("voided"));
    }

    #[test]
    fn declines_failures_and_refunds_have_their_own_status() {
        let declined = [
            requested(),
            PaymentEvent::PaymentVoidRequested,
            PaymentEvent::PaymentDeclined {
                reason: "no".into(),
            },
        ];
        assert_eq!(status_after(&declined).as_deref(), Some("declined"));
        let failed = [
            requested(),
            authorized(),
            PaymentEvent::PaymentCaptureRequested { amount: usd(500) },
            PaymentEvent::PaymentCaptureFailed { reason: "x".into() },
        ];
        assert_eq!(status_after(&failed).as_deref(), Some("capture_failed"));
        let refunded = [
            requested(),
            authorized(),
            PaymentEvent::PaymentCaptured { amount: usd(500) },
            PaymentEvent::PaymentRefundRequested { amount: usd(500) },
        ];
        assert_eq!(status_after(&refunded).as_deref(), Some("refund_pending"));
    }

    #[test]
    fn events_without_a_request_are_not_shown() {
        assert_eq!(status_after(&[authorized()]), None);
    }
}
