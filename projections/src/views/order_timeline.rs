//! The `order_timeline` view: one row per order, payment or shipment event of
//! an order, keyed by `(order_id, source, sequence)` so a redelivery inserts
//! nothing.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use events::EventMeta;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use sqlx::{Postgres, Transaction};
use uuid::Uuid;

use super::sequence;

/// Payload fields that never leave the write side: a payment token is a
/// credential, even in a customer's own timeline.
const HIDDEN_FIELDS: [&str; 3] = ["type", "payment_token", "token"];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct TimelineEntry {
    #[serde(skip_serializing)]
    #[schema(ignore)]
    pub order_id: Uuid,
    /// The stream the event came from: `orders`, `payments` or `shipments`.
    pub source: String,
    pub sequence: i64,
    pub event_type: String,
    pub occurred_at: DateTime<Utc>,
    #[schema(value_type = Object)]
    #[sqlx(json)]
    pub detail: Detail,
}

/// An entry's payload as JSON text, kept as text: a document carries it as
/// it is, so reading a stored timeline for a document neither parses it
/// into a tree nor prints it again (that took about a fifth of a catching
/// up projector's CPU, BENCHMARKS.md). The column is `json`, so an entry
/// is stored and read back as the text it was written with: serde_json's,
/// or, for entries written while the column was `jsonb` (before migration
/// 0009), PostgreSQL's rendering of it (its own spacing and key order).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Detail(Box<RawValue>);

impl Detail {
    /// The payload of `event` without the fields of [`HIDDEN_FIELDS`]: the
    /// event is printed once and its top-level fields are kept as the text
    /// printed (going through a `serde_json::Value` tree instead cost a
    /// tenth of a rebuild's CPU, BENCHMARKS.md). The fields come out in key
    /// order, as a tree prints them.
    pub fn of<E: Serialize>(event: &E) -> Detail {
        let text = events::message::encode_plain(event);
        let kept: Option<BTreeMap<&str, &RawValue>> =
            serde_json::from_str::<BTreeMap<&str, &RawValue>>(&text)
                .ok()
                .map(|fields| {
                    fields
                        .into_iter()
                        .filter(|(name, _)| !HIDDEN_FIELDS.contains(name))
                        .collect()
                });
        match kept {
            Some(kept) => Detail(
                serde_json::value::to_raw_value(&kept).expect("text keys and JSON text print"),
            ),
            // Not an object of plain keys (a key with an escape cannot be
            // borrowed): the tree, which hides the same fields.
            None => {
                let mut detail = events::message::value_plain(event);
                if let Some(fields) = detail.as_object_mut() {
                    for hidden in HIDDEN_FIELDS {
                        fields.remove(hidden);
                    }
                }
                Detail::from(&detail)
            }
        }
    }

    /// The JSON text.
    pub fn get(&self) -> &str {
        self.0.get()
    }
}

impl From<&serde_json::Value> for Detail {
    fn from(value: &serde_json::Value) -> Detail {
        // A `Value` always serializes (its keys are strings).
        Detail(serde_json::value::to_raw_value(value).expect("a JSON value serializes"))
    }
}

/// Equal when both hold the same JSON value, whatever the text's spacing
/// and key order (one may come from PostgreSQL, the other from serde_json).
impl PartialEq for Detail {
    fn eq(&self, other: &Detail) -> bool {
        let value = |d: &Detail| serde_json::from_str::<serde_json::Value>(d.get()).ok();
        self.get() == other.get() || value(self) == value(other)
    }
}

/// The timeline entry of one event; `detail` is the payload minus its type
/// tag and any credential.
pub fn entry<E: Serialize>(order_id: Uuid, meta: &EventMeta, event: &E) -> TimelineEntry {
    TimelineEntry {
        order_id,
        source: meta.aggregate_type.as_str().to_owned(),
        sequence: sequence(meta),
        event_type: meta.event_type.clone(),
        occurred_at: meta.occurred_at,
        detail: Detail::of(event),
    }
}

pub async fn store(
    tx: &mut Transaction<'_, Postgres>,
    entries: &[TimelineEntry],
) -> Result<(), sqlx::Error> {
    if entries.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO order_timeline (order_id, source, sequence, event_type, occurred_at, detail)
         SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::bigint[], $4::text[],
                              $5::timestamptz[], $6::text[]::json[])
         ON CONFLICT (order_id, source, sequence) DO NOTHING",
    )
    .bind(entries.iter().map(|e| e.order_id).collect::<Vec<_>>())
    .bind(
        entries
            .iter()
            .map(|e| e.source.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(entries.iter().map(|e| e.sequence).collect::<Vec<_>>())
    .bind(
        entries
            .iter()
            .map(|e| e.event_type.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(entries.iter().map(|e| e.occurred_at).collect::<Vec<_>>())
    .bind(entries.iter().map(|e| e.detail.get()).collect::<Vec<_>>())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Appends `entries` with `COPY` (CSV), for a rebuild's shadow: no conflict
/// check, so the table needs no index while the bulk of the log goes in.
/// The positions committed with the entries keep a record from being
/// appended twice.
pub async fn copy(
    tx: &mut Transaction<'_, Postgres>,
    entries: &[TimelineEntry],
) -> Result<(), sqlx::Error> {
    let mut csv = String::with_capacity(entries.len() * 256);
    for entry in entries {
        super::order_set_csv::timeline(&mut csv, entry);
    }
    super::order_set_csv::copy(tx, super::order_set_csv::TIMELINE, csv).await
}

/// The timeline of an order, oldest first.
pub async fn find(
    conn: &mut sqlx::PgConnection,
    order_id: Uuid,
) -> Result<Vec<TimelineEntry>, sqlx::Error> {
    sqlx::query_as(
        "SELECT order_id, source, sequence, event_type, occurred_at, detail
         FROM order_timeline WHERE order_id = $1
         ORDER BY occurred_at, source, sequence",
    )
    .bind(order_id)
    .fetch_all(conn)
    .await
}

/// The timelines of the orders under `ids`, each oldest first.
pub async fn find_many(
    conn: &mut sqlx::PgConnection,
    ids: &[Uuid],
) -> Result<Vec<TimelineEntry>, sqlx::Error> {
    sqlx::query_as(
        "SELECT order_id, source, sequence, event_type, occurred_at, detail
         FROM order_timeline WHERE order_id = ANY($1)
         ORDER BY order_id, occurred_at, source, sequence",
    )
    .bind(ids)
    .fetch_all(conn)
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::views::testing::meta;
    use events::AggregateType;
    use events::domain::{Currency, Money, PaymentEvent};

    #[test]
    fn entries_name_their_source_and_hide_credentials() {
        let id = Uuid::from_u128(9);
        let event = PaymentEvent::PaymentAuthorizationRequested {
            amount: Money::new(500, Currency::new("USD").unwrap()),
            token: "tok_secret".into(),
        };
        let m = meta(
            AggregateType::Payment,
            &id.to_string(),
            1,
            event.event_type(),
        );
        let e = entry(id, &m, &event);
        assert_eq!(
            (e.source.as_str(), e.sequence, e.event_type.as_str()),
            ("payments", 1, "PaymentAuthorizationRequested")
        );
        assert_eq!(
            e.detail,
            Detail::from(&serde_json::json!({"amount": {"minor": 500, "currency": "USD"}}))
        );
        assert_eq!(
            e.detail.get(),
            r#"{"amount":{"minor":500,"currency":"USD"}}"#
        );
    }

    #[test]
    fn a_detail_hides_the_same_fields_with_or_without_a_tree() {
        #[derive(Serialize)]
        struct Escaped {
            #[serde(rename = "to\\ken")]
            odd: u8,
            token: &'static str,
            kept: u8,
        }
        let event = Escaped {
            odd: 1,
            token: "tok_secret",
            kept: 2,
        };
        // The escaped key takes the tree; the credential is gone either way.
        assert_eq!(Detail::of(&event).get(), r#"{"kept":2,"to\\ken":1}"#);
    }

    #[test]
    fn a_detail_is_written_as_read_and_compared_as_json() {
        // As PostgreSQL renders a jsonb: its own spacing and key order.
        let stored: Detail =
            serde_json::from_str(r#"{"to": "ZZ", "amount": {"minor": 5}}"#).unwrap();
        assert_eq!(
            serde_json::to_string(&stored).unwrap(),
            r#"{"to": "ZZ", "amount": {"minor": 5}}"#
        );
        let folded = Detail::from(&serde_json::json!({"amount": {"minor": 5}, "to": "ZZ"}));
        assert_eq!(folded.get(), r#"{"amount":{"minor":5},"to":"ZZ"}"#);
        assert_eq!(stored, folded);
        assert_ne!(
            stored,
            Detail::from(&serde_json::json!({"amount": {"minor": 6}, "to": "ZZ"}))
        );
    }
}
