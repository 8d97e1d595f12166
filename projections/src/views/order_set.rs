//! Applies a batch of `orders`, `payments` and `shipments` events to the four
//! order tables: decode every record, fold each stream into its own table,
//! append the timeline, all in the caller's transaction.

use std::collections::HashMap;
use std::hash::Hash;

use events::domain::{OrderEvent, PaymentEvent, ShipmentEvent};
use events::message::EventPayload;
use events::{AggregateType, EventMeta};
use serde::Serialize;
use sqlx::{Postgres, Transaction};
use uuid::Uuid;

use super::order_timeline::{self, TimelineEntry};
use super::{decode, fold_into, order_payments, order_shipments, orders, sales};
use crate::dead_letters::DeadLetter;
use crate::record::Record;

/// The projection name under which the order views store their positions.
pub const PROJECTION: &str = "orders";

/// A batch decoded and split by stream.
#[derive(Default)]
struct Decoded {
    orders: Vec<(Uuid, EventMeta, OrderEvent)>,
    payments: Vec<(Uuid, EventMeta, PaymentEvent)>,
    shipments: Vec<(Uuid, EventMeta, ShipmentEvent)>,
    timeline: Vec<TimelineEntry>,
}

/// Applies `records`; `stream_of` names the stream of each record's topic.
/// Answers the dead letters and the orders the batch named.
pub async fn apply_batch(
    tx: &mut Transaction<'_, Postgres>,
    records: &[Record],
    stream_of: impl Fn(&Record) -> Option<AggregateType>,
) -> Result<(Vec<DeadLetter>, Vec<Uuid>), sqlx::Error> {
    let mut batch = Decoded::default();
    let mut dead = Vec::new();
    for record in records {
        let decoded = match stream_of(record) {
            Some(AggregateType::Order) => one(
                record,
                AggregateType::Order,
                &mut batch.orders,
                &mut batch.timeline,
            ),
            Some(AggregateType::Payment) => one(
                record,
                AggregateType::Payment,
                &mut batch.payments,
                &mut batch.timeline,
            ),
            Some(AggregateType::Shipment) => one(
                record,
                AggregateType::Shipment,
                &mut batch.shipments,
                &mut batch.timeline,
            ),
            _ => Err(format!("topic {} is not an order stream", record.topic)),
        };
        if let Err(error) = decoded {
            dead.push(DeadLetter::new(PROJECTION, record, error));
        }
    }
    let mut rows = orders::find_many(tx, &ids(&batch.orders)).await?;
    let mut sold = Vec::new();
    for (key, meta, event) in &batch.orders {
        // The sale is read off the order as it was just before the event.
        sold.extend(sales::delta(rows.get(key), meta, event));
        fold_into(&mut rows, *key, meta, event, orders::evolve);
    }
    orders::store(tx, rows.into_values().collect()).await?;
    sales::store(tx, &sold).await?;

    let mut rows = order_payments::find_many(tx, &ids(&batch.payments)).await?;
    fold_all(&mut rows, &batch.payments, order_payments::evolve);
    order_payments::store(tx, rows.into_values().collect()).await?;

    let mut rows = order_shipments::find_many(tx, &ids(&batch.shipments)).await?;
    fold_all(&mut rows, &batch.shipments, order_shipments::evolve);
    order_shipments::store(tx, rows.into_values().collect()).await?;

    order_timeline::store(tx, &batch.timeline).await?;
    let mut touched: Vec<Uuid> = batch.timeline.iter().map(|e| e.order_id).collect();
    touched.sort();
    touched.dedup();
    Ok((dead, touched))
}

/// Decodes one record of an order-keyed stream and queues it and its timeline entry.
fn one<E: EventPayload + Serialize>(
    record: &Record,
    stream: AggregateType,
    events: &mut Vec<(Uuid, EventMeta, E)>,
    timeline: &mut Vec<TimelineEntry>,
) -> Result<(), String> {
    let (meta, event) = decode::<E>(record, stream)?;
    let order_id = Uuid::parse_str(&meta.aggregate_id)
        .map_err(|_| format!("aggregate id {:?} is not an order id", meta.aggregate_id))?;
    timeline.push(order_timeline::entry(order_id, &meta, &event));
    events.push((order_id, meta, event));
    Ok(())
}

fn ids<E>(events: &[(Uuid, EventMeta, E)]) -> Vec<Uuid> {
    let mut ids: Vec<Uuid> = events.iter().map(|(id, _, _)| *id).collect();
    ids.sort();
    ids.dedup();
    ids
}

fn fold_all<K: Hash + Eq + Copy, R, E>(
    rows: &mut HashMap<K, R>,
    events: &[(K, EventMeta, E)],
    evolve: fn(Option<R>, &EventMeta, &E) -> Option<R>,
) {
    for (key, meta, event) in events {
        fold_into(rows, *key, meta, event, evolve);
    }
}
