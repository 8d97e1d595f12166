//! The rows of a bulk rebuild rendered as `COPY ... (FORMAT csv)` text, by
//! the fold (off the writer's connection): the order, payment and shipment
//! rows appended to the shadow's tables without keys, and the timeline.
//!
//! Every text field is quoted, so it reads back as the text itself (an
//! empty quoted field is an empty string); an absent value is an empty
//! unquoted field, which `COPY` reads as NULL. Times carry microseconds,
//! what PostgreSQL keeps.

use std::fmt::Write as _;

use chrono::{DateTime, SecondsFormat, Utc};
use sqlx::{Postgres, Transaction};

use super::order_payments::PaymentRow;
use super::order_shipments::ShipmentRow;
use super::order_timeline::TimelineEntry;
use super::orders::OrderRow;

pub const ORDERS: &str = "COPY orders (order_id, customer_id, status, status_reason, \
    cancellation_reason, currency, lines, total_minor, version, placed_at, updated_at) \
    FROM STDIN (FORMAT csv)";
pub const PAYMENTS: &str = "COPY order_payments (order_id, status, authorization_state, \
    capture_state, void_state, refund_state, amount_minor, currency, version, updated_at) \
    FROM STDIN (FORMAT csv)";
pub const SHIPMENTS: &str = "COPY order_shipments (order_id, status, tracking_ref, version, \
    updated_at) FROM STDIN (FORMAT csv)";
pub const TIMELINE: &str = "COPY order_timeline (order_id, source, sequence, event_type, \
    occurred_at, detail) FROM STDIN (FORMAT csv)";

/// Sends `csv` with the `COPY` statement `copy`; nothing when empty.
pub async fn copy(
    tx: &mut Transaction<'_, Postgres>,
    copy: &str,
    csv: String,
) -> Result<(), sqlx::Error> {
    if csv.is_empty() {
        return Ok(());
    }
    let mut sink = tx.copy_in_raw(copy).await?;
    sink.send(csv.into_bytes()).await?;
    sink.finish().await?;
    Ok(())
}

pub fn order(out: &mut String, r: &OrderRow) {
    let _ = write!(out, "{},", r.order_id);
    text(out, &r.customer_id);
    text(out, &r.status);
    maybe(out, r.status_reason.as_deref());
    maybe(out, r.cancellation_reason.as_deref());
    text(out, &r.currency);
    // Plain data (string keys, no maps with other keys): serializing cannot fail.
    text(out, &events::message::encode_plain(&r.lines.0));
    if let Some(total) = r.total_minor {
        let _ = write!(out, "{total}");
    }
    let _ = write!(out, ",{},", r.version);
    time(out, r.placed_at);
    out.push(',');
    time(out, r.updated_at);
    out.push('\n');
}

pub fn payment(out: &mut String, r: &PaymentRow) {
    let _ = write!(out, "{},", r.order_id);
    for field in [
        &r.status,
        &r.authorization_state,
        &r.capture_state,
        &r.void_state,
        &r.refund_state,
    ] {
        text(out, field);
    }
    let _ = write!(out, "{},", r.amount_minor);
    text(out, &r.currency);
    let _ = write!(out, "{},", r.version);
    time(out, r.updated_at);
    out.push('\n');
}

pub fn shipment(out: &mut String, r: &ShipmentRow) {
    let _ = write!(out, "{},", r.order_id);
    text(out, &r.status);
    maybe(out, r.tracking_ref.as_deref());
    let _ = write!(out, "{},", r.version);
    time(out, r.updated_at);
    out.push('\n');
}

pub fn timeline(out: &mut String, e: &TimelineEntry) {
    let _ = write!(out, "{},", e.order_id);
    text(out, &e.source);
    let _ = write!(out, "{},", e.sequence);
    text(out, &e.event_type);
    time(out, e.occurred_at);
    out.push(',');
    quoted(out, e.detail.get());
    out.push('\n');
}

/// A quoted field and its separator.
fn text(out: &mut String, value: &str) {
    quoted(out, value);
    out.push(',');
}

/// A quoted field, or NULL, and its separator.
fn maybe(out: &mut String, value: Option<&str>) {
    if let Some(value) = value {
        quoted(out, value);
    }
    out.push(',');
}

fn quoted(out: &mut String, value: &str) {
    out.push('"');
    for part in value.split_inclusive('"') {
        out.push_str(part);
        if part.ends_with('"') {
            out.push('"');
        }
    }
    out.push('"');
}

fn time(out: &mut String, at: DateTime<Utc>) {
    let _ = write!(out, "{}", at.to_rfc3339_opts(SecondsFormat::Micros, true));
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::types::Json;
    use uuid::Uuid;

    fn at() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-12-02T10:00:00.123456Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn csv_fields_keep_quotes_commas_and_newlines() {
        let mut out = String::new();
        quoted(&mut out, r#"{"a":"x,\"y\"\n"}"#);
        assert_eq!(out, r#""{""a"":""x,\""y\""\n""}""#);
    }

    #[test]
    fn quotes_are_doubled_and_absent_values_are_null() {
        let row = ShipmentRow {
            order_id: Uuid::nil(),
            status: "say \"hi\"".to_owned(),
            tracking_ref: None,
            version: 3,
            updated_at: at(),
        };
        let mut out = String::new();
        shipment(&mut out, &row);
        assert_eq!(
            out,
            "00000000-0000-0000-0000-000000000000,\"say \"\"hi\"\"\",,3,\
             2026-12-02T10:00:00.123456Z\n"
        );
    }

    #[test]
    fn an_order_row_has_its_lines_as_json_and_an_empty_total_as_null() {
        let row = OrderRow {
            order_id: Uuid::nil(),
            customer_id: "c-1".to_owned(),
            status: "pending".to_owned(),
            status_reason: Some(String::new()),
            cancellation_reason: None,
            currency: "USD".to_owned(),
            lines: Json(Vec::new()),
            total_minor: None,
            version: 1,
            placed_at: at(),
            updated_at: at(),
        };
        let mut out = String::new();
        order(&mut out, &row);
        assert_eq!(
            out,
            "00000000-0000-0000-0000-000000000000,\"c-1\",\"pending\",\"\",,\"USD\",\"[]\",,1,\
             2026-12-02T10:00:00.123456Z,2026-12-02T10:00:00.123456Z\n"
        );
    }
}
