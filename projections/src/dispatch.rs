//! Which view set each topic feeds, and how one consumed batch is applied to
//! all of them inside one PostgreSQL transaction.
//!
//! Positions are kept per view set (`catalog`, `orders`, `sagas`, `probes`), each over
//! the partitions of its own topics, so a view set can later be rebuilt or
//! moved to its own consumer group without touching the others.

use std::collections::{BTreeMap, HashMap};

use events::{AggregateType, KafkaConfig};
use sqlx::{Postgres, Transaction};

use crate::record::Record;
use crate::refresh::Touched;
use crate::views::{catalog_items, decode, order_set, saga_timelines};
use crate::{dead_letters, hold, positions, probes};
use events::domain::{CatalogEvent, OrderEvent, PaymentEvent, ShipmentEvent};

/// A set of views fed by the same topics and sharing positions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ViewSet {
    Catalog,
    Orders,
    Sagas,
    Probes,
}

impl ViewSet {
    pub fn projection(self) -> &'static str {
        match self {
            ViewSet::Catalog => catalog_items::PROJECTION,
            ViewSet::Orders => order_set::PROJECTION,
            ViewSet::Sagas => saga_timelines::PROJECTION,
            ViewSet::Probes => probes::PROJECTION,
        }
    }

    fn of(stream: AggregateType) -> Option<ViewSet> {
        match stream {
            AggregateType::CatalogItem => Some(ViewSet::Catalog),
            AggregateType::Order | AggregateType::Payment | AggregateType::Shipment => {
                Some(ViewSet::Orders)
            }
            AggregateType::Saga => Some(ViewSet::Sagas),
            AggregateType::Probe => Some(ViewSet::Probes),
        }
    }
}

/// The topics the projector consumes and the stream each one carries.
#[derive(Debug, Clone)]
pub struct Routes {
    streams: HashMap<String, AggregateType>,
}

impl Routes {
    pub fn new(kafka: &KafkaConfig) -> Routes {
        let streams = AggregateType::ALL
            .into_iter()
            .filter(|stream| ViewSet::of(*stream).is_some())
            .map(|stream| (kafka.events_topic(stream), stream))
            .collect();
        Routes { streams }
    }

    pub fn topics(&self) -> Vec<String> {
        let mut topics: Vec<String> = self.streams.keys().cloned().collect();
        topics.sort();
        topics
    }

    /// Each view set with the topics feeding it.
    pub fn view_sets(&self) -> BTreeMap<ViewSet, Vec<String>> {
        let mut sets: BTreeMap<ViewSet, Vec<String>> = BTreeMap::new();
        for topic in self.topics() {
            if let Some(set) = self.stream(&topic).and_then(ViewSet::of) {
                sets.entry(set).or_default().push(topic);
            }
        }
        sets
    }

    pub fn stream(&self, topic: &str) -> Option<AggregateType> {
        self.streams.get(topic).copied()
    }

    /// Splits a batch by view set, keeping log order within each.
    fn split(&self, records: Vec<Record>) -> BTreeMap<ViewSet, Vec<Record>> {
        let mut sets: BTreeMap<ViewSet, Vec<Record>> = BTreeMap::new();
        for record in records {
            match self.stream(&record.topic).and_then(ViewSet::of) {
                Some(set) => sets.entry(set).or_default().push(record),
                // Only subscribed topics are consumed, so this is a bug.
                None => tracing::error!(topic = %record.topic, "a record of an unrouted topic"),
            }
        }
        sets
    }
}

/// Whether a record decodes as an event of the stream its topic carries.
fn readable(routes: &Routes, record: &Record) -> Result<(), String> {
    match routes.stream(&record.topic) {
        Some(stream @ AggregateType::CatalogItem) => {
            decode::<CatalogEvent>(record, stream).map(drop)
        }
        Some(stream @ AggregateType::Order) => decode::<OrderEvent>(record, stream).map(drop),
        Some(stream @ AggregateType::Payment) => decode::<PaymentEvent>(record, stream).map(drop),
        Some(stream @ AggregateType::Shipment) => decode::<ShipmentEvent>(record, stream).map(drop),
        Some(AggregateType::Saga) => saga_timelines::readable(record),
        // Probes have a key each; nothing to hold back.
        Some(AggregateType::Probe) | None => Ok(()),
    }
}

/// Applies a batch to every view set it touches, with their positions; the
/// view sets are visited in a fixed order so concurrent instances lock
/// position rows in the same order. Answers how many records were new per
/// view set, and the cached documents they touched.
pub async fn apply_batch(
    tx: &mut Transaction<'_, Postgres>,
    routes: &Routes,
    records: Vec<Record>,
) -> Result<(Vec<(ViewSet, usize)>, Touched), sqlx::Error> {
    let mut applied = Vec::new();
    let mut touched = Touched::default();
    for (set, records) in routes.split(records) {
        let projection = set.projection();
        let fresh = positions::claim(tx, projection, records).await?;
        if fresh.is_empty() {
            continue;
        }
        let readable = |record: &Record| readable(routes, record);
        let (pass, held) = hold::divert(tx, projection, &fresh, readable).await?;
        let dead = match set {
            ViewSet::Catalog => {
                let (dead, skus) = catalog_items::apply_batch(tx, &pass).await?;
                touched.items.extend(skus);
                dead
            }
            ViewSet::Orders => {
                let (dead, ids) =
                    order_set::apply_batch(tx, &pass, |r| routes.stream(&r.topic)).await?;
                touched.orders.extend(ids);
                dead
            }
            ViewSet::Sagas => saga_timelines::apply_batch(tx, &pass).await?,
            ViewSet::Probes => probes::apply(tx, &pass).await?,
        };
        dead_letters::store(tx, &held).await?;
        dead_letters::store(tx, &dead).await?;
        positions::advance(tx, projection, &fresh).await?;
        applied.push((set, fresh.len()));
    }
    Ok((applied, touched))
}
