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

/// One table of a view set, as the replay CLI rebuilds, compares and swaps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ViewTable {
    pub name: &'static str,
    /// Columns that are not a fold of the log (when the projector saw a
    /// record), left out when a rebuilt table is compared with the live one.
    pub volatile: &'static [&'static str],
}

const fn table(name: &'static str) -> ViewTable {
    ViewTable {
        name,
        volatile: &[],
    }
}

const CATALOG_TABLES: [ViewTable; 1] = [table("catalog_items")];
const ORDER_TABLES: [ViewTable; 5] = [
    table("orders"),
    table("order_payments"),
    table("order_shipments"),
    table("order_timeline"),
    table("sales"),
];
const SAGA_TABLES: [ViewTable; 1] = [table("saga_timelines")];
const PROBE_TABLES: [ViewTable; 1] = [ViewTable {
    name: "probes",
    volatile: &["projected_at"],
}];

impl ViewSet {
    pub const ALL: [ViewSet; 4] = [
        ViewSet::Catalog,
        ViewSet::Orders,
        ViewSet::Sagas,
        ViewSet::Probes,
    ];

    /// The view set named `name` (its projection name), if any.
    pub fn parse(name: &str) -> Option<ViewSet> {
        ViewSet::ALL
            .into_iter()
            .find(|set| set.projection() == name)
    }

    /// The tables the view set writes (besides positions and dead letters).
    pub fn tables(self) -> &'static [ViewTable] {
        match self {
            ViewSet::Catalog => &CATALOG_TABLES,
            ViewSet::Orders => &ORDER_TABLES,
            ViewSet::Sagas => &SAGA_TABLES,
            ViewSet::Probes => &PROBE_TABLES,
        }
    }

    /// The kinds of Redis entries (key prefixes after the namespace) built
    /// from the view set's tables.
    pub fn cached(self) -> &'static [&'static str] {
        match self {
            ViewSet::Catalog => &[crate::cache::ITEM_PREFIX],
            ViewSet::Orders => &[crate::cache::ORDER_PREFIX],
            ViewSet::Sagas | ViewSet::Probes => &[],
        }
    }

    pub fn projection(self) -> &'static str {
        match self {
            ViewSet::Catalog => catalog_items::PROJECTION,
            ViewSet::Orders => order_set::PROJECTION,
            ViewSet::Sagas => saga_timelines::PROJECTION,
            ViewSet::Probes => probes::PROJECTION,
        }
    }

    pub fn of(stream: AggregateType) -> Option<ViewSet> {
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
pub(crate) fn readable(routes: &Routes, record: &Record) -> Result<(), String> {
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
        let dead = apply_set(tx, routes, set, &pass, &mut touched).await?;
        dead_letters::store(tx, &held).await?;
        dead_letters::store(tx, &dead).await?;
        positions::advance(tx, projection, &fresh).await?;
        applied.push((set, fresh.len()));
    }
    Ok((applied, touched))
}

/// Folds readable records of one view set into its tables, without looking
/// at positions or held keys; answers the records that turned out unreadable.
pub async fn apply_set(
    tx: &mut Transaction<'_, Postgres>,
    routes: &Routes,
    set: ViewSet,
    records: &[Record],
    touched: &mut Touched,
) -> Result<Vec<dead_letters::DeadLetter>, sqlx::Error> {
    Ok(match set {
        ViewSet::Catalog => {
            let (dead, skus) = catalog_items::apply_batch(tx, records).await?;
            touched.items.extend(skus);
            dead
        }
        ViewSet::Orders => {
            let (dead, ids) =
                order_set::apply_batch(tx, records, |r| routes.stream(&r.topic)).await?;
            touched.orders.extend(ids);
            dead
        }
        ViewSet::Sagas => saga_timelines::apply_batch(tx, records).await?,
        ViewSet::Probes => probes::apply(tx, records).await?,
    })
}
