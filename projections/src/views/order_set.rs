//! Applies a batch of `orders`, `payments` and `shipments` events to the four
//! order tables: fold each stream into its own table, append the timeline,
//! all in the caller's transaction; and, when asked, build the order
//! documents of the batch from the rows just folded, for the cache.

use std::collections::HashMap;
use std::hash::Hash;

use events::domain::{OrderEvent, PaymentEvent, ShipmentEvent};
use events::message::EventPayload;
use events::{AggregateType, EventMeta};
use sqlx::{Postgres, Transaction};
use uuid::Uuid;

use super::order_payments::PaymentRow;
use super::order_shipments::ShipmentRow;
use super::order_timeline::{self, TimelineEntry};
use super::orders::OrderRow;
use super::recent_timelines::{RecentTimelines, Versions};
use super::{decode, fold_into, order_payments, order_set_csv, order_shipments, orders, sales};
use crate::dispatch::Mode;
use crate::documents::{self, OrderEntries};
use crate::record::Record;

/// The projection name under which the order views store their positions.
pub const PROJECTION: &str = "orders";

/// One record of an order-keyed stream, decoded, with its order id.
#[derive(Debug)]
pub enum OrderSetEvent {
    Order(Uuid, EventMeta, OrderEvent),
    Payment(Uuid, EventMeta, PaymentEvent),
    Shipment(Uuid, EventMeta, ShipmentEvent),
}

/// Decodes one record of the order-keyed `stream`.
pub fn decode_one(record: &Record, stream: AggregateType) -> Result<OrderSetEvent, String> {
    match stream {
        AggregateType::Order => {
            one::<OrderEvent>(record, stream).map(|(id, m, e)| OrderSetEvent::Order(id, m, e))
        }
        AggregateType::Payment => {
            one::<PaymentEvent>(record, stream).map(|(id, m, e)| OrderSetEvent::Payment(id, m, e))
        }
        AggregateType::Shipment => {
            one::<ShipmentEvent>(record, stream).map(|(id, m, e)| OrderSetEvent::Shipment(id, m, e))
        }
        _ => Err(format!("topic {} is not an order stream", record.topic)),
    }
}

fn one<E: EventPayload>(
    record: &Record,
    stream: AggregateType,
) -> Result<(Uuid, EventMeta, E), String> {
    let (meta, event) = decode::<E>(record, stream)?;
    let order_id = Uuid::parse_str(&meta.aggregate_id)
        .map_err(|_| format!("aggregate id {:?} is not an order id", meta.aggregate_id))?;
    Ok((order_id, meta, event))
}

/// A batch split by stream, in log order within each.
#[derive(Default)]
struct Split<'e> {
    orders: Vec<(Uuid, &'e EventMeta, &'e OrderEvent)>,
    payments: Vec<(Uuid, &'e EventMeta, &'e PaymentEvent)>,
    shipments: Vec<(Uuid, &'e EventMeta, &'e ShipmentEvent)>,
    timeline: Vec<TimelineEntry>,
}

impl<'e> Split<'e> {
    fn of(events: &'e [OrderSetEvent]) -> Split<'e> {
        let mut split = Split::default();
        for event in events {
            match event {
                OrderSetEvent::Order(id, m, e) => {
                    split.timeline.push(order_timeline::entry(*id, m, e));
                    split.orders.push((*id, m, e));
                }
                OrderSetEvent::Payment(id, m, e) => {
                    split.timeline.push(order_timeline::entry(*id, m, e));
                    split.payments.push((*id, m, e));
                }
                OrderSetEvent::Shipment(id, m, e) => {
                    split.timeline.push(order_timeline::entry(*id, m, e));
                    split.shipments.push((*id, m, e));
                }
            }
        }
        split
    }
}

/// Applies `events`. In [`Mode::Live`], also answers the document of
/// every order the batch named, built from the rows as this transaction
/// leaves them (see [`documents::assemble`] for why they equal what a reader
/// loads), and the versions of those it named without an order row; in
/// [`Mode::CatchUp`], only the versions of every order it named (see
/// [`documents::Unbuilt`]). The stored timelines a document needs are taken
/// from `recent` where it has them at the rows' versions, and the
/// documents built are remembered there.
pub async fn apply_batch(
    tx: &mut Transaction<'_, Postgres>,
    events: &[OrderSetEvent],
    mode: Mode,
    recent: Option<&RecentTimelines>,
) -> Result<OrderEntries, sqlx::Error> {
    let want_documents = mode == Mode::Live;
    let batch = Split::of(events);
    let all = if want_documents {
        ids(batch.timeline.iter().map(|e| e.order_id))
    } else {
        Vec::new()
    };
    let load = |own: Vec<Uuid>| if want_documents { all.clone() } else { own };

    let mut order_rows =
        orders::find_many(tx, &load(ids(batch.orders.iter().map(|e| e.0)))).await?;
    // Orders with a row before this batch, at their rows' versions: only
    // they can have stored timeline entries a document shows (see
    // `stored_timelines`).
    let mut earlier: HashMap<Uuid, Versions> = HashMap::new();
    for row in order_rows.values() {
        earlier.entry(row.order_id).or_default()[0] = row.version;
    }
    let mut sold = Vec::new();
    for (key, meta, event) in &batch.orders {
        // The sale is read off the order as it was just before the event.
        sold.extend(sales::delta(order_rows.get(key), meta, event));
        fold_into(&mut order_rows, *key, meta, *event, orders::evolve);
    }
    orders::store(tx, changed(&order_rows, &batch.orders)).await?;

    let mut payments =
        order_payments::find_many(tx, &load(ids(batch.payments.iter().map(|e| e.0)))).await?;
    for row in payments.values() {
        earlier.entry(row.order_id).or_default()[1] = row.version;
    }
    fold_all(&mut payments, &batch.payments, order_payments::evolve);
    order_payments::store(tx, changed(&payments, &batch.payments)).await?;

    let mut shipments =
        order_shipments::find_many(tx, &load(ids(batch.shipments.iter().map(|e| e.0)))).await?;
    for row in shipments.values() {
        earlier.entry(row.order_id).or_default()[2] = row.version;
    }
    fold_all(&mut shipments, &batch.shipments, order_shipments::evolve);
    order_shipments::store(tx, changed(&shipments, &batch.shipments)).await?;

    match mode {
        Mode::Live | Mode::CatchUp => order_timeline::store(tx, &batch.timeline).await?,
        Mode::Rebuild => order_timeline::copy(tx, &batch.timeline).await?,
    }
    // The last write: batches add to the same few buckets, so a batch
    // written beside this one (by another instance, or the other part of a
    // catch-up batch) waits here until this one commits.
    sales::store(tx, &sold).await?;
    match mode {
        Mode::Live => {}
        Mode::CatchUp => {
            let unbuilt = documents::unbuilt(
                ids(batch.timeline.iter().map(|e| e.order_id)),
                &order_rows,
                &payments,
                &shipments,
            );
            return Ok(OrderEntries {
                unbuilt,
                ..OrderEntries::default()
            });
        }
        Mode::Rebuild => return Ok(OrderEntries::default()),
    }
    let mut timelines = stored_timelines(tx, earlier, recent).await?;
    for entry in batch.timeline {
        let stored = timelines.entry(entry.order_id).or_default();
        if !stored
            .iter()
            .any(|e| (e.source.as_str(), e.sequence) == (entry.source.as_str(), entry.sequence))
        {
            stored.push(entry);
        }
    }
    let unplaced = documents::unplaced(&order_rows, &payments, &shipments);
    let documents = documents::assemble(order_rows, payments, shipments, timelines);
    if let Some(recent) = recent {
        recent.remember(&documents);
    }
    Ok(OrderEntries {
        documents,
        unplaced,
        unbuilt: Vec::new(),
    })
}

/// The rows of the order tables as a bulk rebuild has folded them so far.
/// The rebuild reads the log from its start into tables without keys, so
/// it cannot read a row back: every row stays here, and each batch appends
/// the latest version of the rows it changed (see [`Folded`]).
#[derive(Default)]
pub struct Carry {
    orders: HashMap<Uuid, OrderRow>,
    payments: HashMap<Uuid, PaymentRow>,
    shipments: HashMap<Uuid, ShipmentRow>,
}

impl Carry {
    /// How many rows are held (the rebuild bounds it).
    pub fn rows(&self) -> usize {
        self.orders.len() + self.payments.len() + self.shipments.len()
    }
}

/// What one batch of a bulk rebuild writes, rendered for `COPY` by the
/// fold (see [`order_set_csv`]): the latest version of each row its events
/// changed, its timeline entries, and its sales.
#[derive(Default)]
pub struct Folded {
    orders: String,
    payments: String,
    shipments: String,
    timeline: String,
    sold: Vec<sales::SaleDelta>,
}

/// The pure part of a bulk batch: folds `events` into the carried rows (the
/// same folds as [`apply_batch`], in log order) and renders what to write.
pub fn fold_carried(carry: &mut Carry, events: &[OrderSetEvent]) -> Folded {
    let batch = Split::of(events);
    let mut sold = Vec::new();
    for (key, meta, event) in &batch.orders {
        sold.extend(sales::delta(carry.orders.get(key), meta, event));
        fold_into(&mut carry.orders, *key, meta, *event, orders::evolve);
    }
    fold_all(&mut carry.payments, &batch.payments, order_payments::evolve);
    fold_all(
        &mut carry.shipments,
        &batch.shipments,
        order_shipments::evolve,
    );
    let mut timeline = String::with_capacity(batch.timeline.len() * 256);
    for entry in &batch.timeline {
        order_set_csv::timeline(&mut timeline, entry);
    }
    Folded {
        orders: render(&carry.orders, &batch.orders, order_set_csv::order),
        payments: render(&carry.payments, &batch.payments, order_set_csv::payment),
        shipments: render(&carry.shipments, &batch.shipments, order_set_csv::shipment),
        timeline,
        sold,
    }
}

/// Writes a folded bulk batch: rows appended and the timeline copied (the
/// tables have no keys yet), the sales (a small keyed table) added up.
pub async fn store_folded(
    tx: &mut Transaction<'_, Postgres>,
    folded: Folded,
) -> Result<(), sqlx::Error> {
    order_set_csv::copy(tx, order_set_csv::ORDERS, folded.orders).await?;
    sales::store(tx, &folded.sold).await?;
    order_set_csv::copy(tx, order_set_csv::PAYMENTS, folded.payments).await?;
    order_set_csv::copy(tx, order_set_csv::SHIPMENTS, folded.shipments).await?;
    order_set_csv::copy(tx, order_set_csv::TIMELINE, folded.timeline).await
}

/// The rows the batch's events changed, rendered with `row`.
fn render<R, E>(
    rows: &HashMap<Uuid, R>,
    events: &[(Uuid, &EventMeta, &E)],
    row: fn(&mut String, &R),
) -> String {
    let mut out = String::with_capacity(events.len() * 256);
    for changed in changed(rows, events) {
        row(&mut out, changed);
    }
    out
}

/// The stored timelines a batch's documents need: those of the orders that
/// had an order, payment or shipment row before the batch. An order without
/// any has no stored entry a document shows: each stream's first event
/// creates its row, and a document shows a stream's entries only up to its
/// row's version. Read after the rows, so it holds at least every entry they
/// reflect; `assemble` drops any entry newer than them. Those `recent` has
/// at the rows' versions are not read.
async fn stored_timelines(
    tx: &mut Transaction<'_, Postgres>,
    earlier: HashMap<Uuid, Versions>,
    recent: Option<&RecentTimelines>,
) -> Result<HashMap<Uuid, Vec<TimelineEntry>>, sqlx::Error> {
    let (mut timelines, unknown) = match recent {
        Some(recent) => recent.recall(earlier),
        None => (HashMap::new(), earlier.into_keys().collect()),
    };
    if !unknown.is_empty() {
        timelines.extend(documents::timelines(
            order_timeline::find_many(tx, &unknown).await?,
        ));
    }
    Ok(timelines)
}

/// The distinct ids, sorted.
fn ids(ids: impl Iterator<Item = Uuid>) -> Vec<Uuid> {
    let mut ids: Vec<Uuid> = ids.collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// The rows the batch's own events may have changed (rows loaded only for
/// the documents are not written back).
fn changed<'a, R, E>(rows: &'a HashMap<Uuid, R>, events: &[(Uuid, &EventMeta, &E)]) -> Vec<&'a R> {
    ids(events.iter().map(|e| e.0))
        .iter()
        .filter_map(|id| rows.get(id))
        .collect()
}

fn fold_all<K: Hash + Eq + Copy, R, E>(
    rows: &mut HashMap<K, R>,
    events: &[(K, &EventMeta, &E)],
    evolve: fn(Option<R>, &EventMeta, &E) -> Option<R>,
) {
    for (key, meta, event) in events {
        fold_into(rows, *key, meta, *event, evolve);
    }
}
