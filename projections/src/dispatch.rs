//! Which view set each topic feeds, and how one consumed batch is applied to
//! all of them inside one PostgreSQL transaction.
//!
//! Positions are kept per view set (`catalog`, `orders`, `sagas`, `probes`), each over
//! the partitions of its own topics, so a view set can later be rebuilt or
//! moved to its own consumer group without touching the others.

use std::collections::{BTreeMap, HashMap};

use events::domain::{CatalogEvent, SagaEvent};
use events::{AggregateType, EventMeta, KafkaConfig};
use sqlx::{Postgres, Transaction};
use uuid::Uuid;

use crate::dead_letters::DeadLetter;
use crate::documents::ItemDocument;
use crate::hold::{self, HeldKeys};
use crate::record::Record;
use crate::refresh::{Fresh, Touched};
use crate::views::order_set::{self, OrderSetEvent};
use crate::views::recent_timelines::RecentTimelines;
use crate::views::{catalog_items, saga_timelines};
use crate::{positions, probes};

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
    /// Rows are only ever appended (never read back or updated by a batch),
    /// so a rebuild loads it with `COPY` and adds its keys after the load.
    pub append_only: bool,
    /// One row per key with a `version` column: a bulk rebuild (see
    /// [`ViewSet::bulk`]) appends the latest version of each row a batch
    /// changed to a copy without keys, and keeps the newest version of
    /// each key when it adds them after the load.
    pub versioned: bool,
}

const fn table(name: &'static str) -> ViewTable {
    ViewTable {
        name,
        volatile: &[],
        append_only: false,
        versioned: false,
    }
}

const fn versioned(name: &'static str) -> ViewTable {
    ViewTable {
        versioned: true,
        ..table(name)
    }
}

const CATALOG_TABLES: [ViewTable; 1] = [table("catalog_items")];
const ORDER_TABLES: [ViewTable; 5] = [
    versioned("orders"),
    versioned("order_payments"),
    versioned("order_shipments"),
    ViewTable {
        append_only: true,
        ..table("order_timeline")
    },
    table("sales"),
];
const SAGA_TABLES: [ViewTable; 1] = [table("saga_timelines")];
const PROBE_TABLES: [ViewTable; 1] = [ViewTable {
    volatile: &["projected_at"],
    ..table("probes")
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

    /// True when a fresh rebuild of the set can fold the whole log in
    /// memory and append rows without keys (`crate::views::order_set::Carry`);
    /// the other sets are small and rebuilt through their keys.
    pub fn bulk(self) -> bool {
        self == ViewSet::Orders
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
    fn split<'r>(&self, records: &'r [Record]) -> BTreeMap<ViewSet, Vec<&'r Record>> {
        let mut sets: BTreeMap<ViewSet, Vec<&'r Record>> = BTreeMap::new();
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

/// The events of one view set, each record decoded once.
#[derive(Debug)]
pub enum Events {
    Catalog(Vec<(EventMeta, CatalogEvent)>),
    Orders(Vec<OrderSetEvent>),
    Sagas(Vec<(Uuid, EventMeta, SagaEvent)>),
    Probes(Vec<probes::Decoded>),
}

impl Events {
    /// Decodes `records` of `set`; unreadable records and the later records
    /// of their keys (and of keys in `held`) become dead letters.
    pub fn divert(
        routes: &Routes,
        set: ViewSet,
        records: &[&Record],
        held: &mut HeldKeys,
    ) -> (Events, Vec<DeadLetter>) {
        let projection = set.projection();
        match set {
            ViewSet::Catalog => {
                let (events, dead) =
                    hold::divert(projection, records, held, catalog_items::decode_one);
                (Events::Catalog(events), dead)
            }
            ViewSet::Orders => {
                let decode = |r: &Record| match routes.stream(&r.topic) {
                    Some(stream) => order_set::decode_one(r, stream),
                    None => Err(format!("topic {} is not an order stream", r.topic)),
                };
                let (events, dead) = hold::divert(projection, records, held, decode);
                (Events::Orders(events), dead)
            }
            ViewSet::Sagas => {
                let (events, dead) =
                    hold::divert(projection, records, held, saga_timelines::decode_one);
                (Events::Sagas(events), dead)
            }
            ViewSet::Probes => {
                let (events, dead) = hold::divert(projection, records, held, probes::decode_one);
                (Events::Probes(events), dead)
            }
        }
    }
}

/// Who writes a batch, which decides how.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The live projector (and a dead-letter retry): the cached documents
    /// the batch changed are built from the rows it folded.
    Live,
    /// The live projector far behind (see `consumer`): the cached item
    /// documents are built as in [`Mode::Live`], the orders' are not, and
    /// their entries get the versions alone ([`crate::documents::Unbuilt`]).
    CatchUp,
    /// A rebuild into a shadow: no documents (the cache is left alone until
    /// the swap), and append-only tables are loaded with `COPY`.
    Rebuild,
}

/// What a batch did: how many records were new per view set, and the fresh
/// documents of the cache (when asked for).
#[derive(Default)]
pub struct Applied {
    pub counts: Vec<(ViewSet, usize)>,
    pub fresh: Fresh,
}

impl Applied {
    /// Both of two batches over different keys, as one.
    pub fn merge(mut self, other: Applied) -> Applied {
        self.counts.extend(other.counts);
        self.fresh.extend(other.fresh);
        self
    }
}

/// Applies a batch to every view set it touches, with their positions and
/// dead letters: one statement locks the positions and reads the held keys,
/// one per view table writes it, one stores the dead letters and moves the
/// positions. Positions are locked in one fixed order, so concurrent
/// instances never deadlock. In [`Mode::Live`], the cached documents the batch
/// changed are built from the rows it folded ([`Mode::CatchUp`]: see there),
/// with the timelines `recent` remembers.
pub async fn apply_batch(
    tx: &mut Transaction<'_, Postgres>,
    routes: &Routes,
    records: &[Record],
    mode: Mode,
    recent: Option<&RecentTimelines>,
) -> Result<Applied, sqlx::Error> {
    let sets = routes.split(records);
    let tagged: Vec<(&'static str, &Record)> = sets
        .iter()
        .flat_map(|(set, records)| records.iter().map(|r| (set.projection(), *r)))
        .collect();
    let mut claimed = positions::claim(tx, &tagged).await?;
    let mut applied = Applied::default();
    let mut letters = Vec::new();
    let mut moved = Vec::with_capacity(tagged.len());
    for (set, records) in sets {
        let projection = set.projection();
        let (fresh, seen): (Vec<&Record>, Vec<&Record>) = records
            .into_iter()
            .partition(|r| claimed.is_new(projection, r));
        if mode != Mode::Rebuild {
            reload_seen(set, &seen, &mut applied.fresh.reload);
        }
        if fresh.is_empty() {
            continue;
        }
        let (events, dead) = Events::divert(routes, set, &fresh, &mut claimed.held);
        apply_set(tx, events, mode, recent, &mut applied.fresh).await?;
        letters.extend(dead);
        moved.extend(fresh.iter().map(|r| (projection, *r)));
        applied.counts.push((set, fresh.len()));
    }
    if !moved.is_empty() {
        positions::advance(tx, &positions::Moved::of(&moved), &letters).await?;
    }
    Ok(applied)
}

/// Asks for the cached documents of records already applied to be written
/// again from PostgreSQL: whoever applied them (another instance, or this
/// one before a crash) may have died before writing them, and the Kafka
/// offset hint never passes a record whose documents were not written (see
/// `refresh`), so every such record is seen again here. A key that is not a
/// document's (an order stream's record keyed otherwise) is left out.
fn reload_seen(set: ViewSet, seen: &[&Record], reload: &mut Touched) {
    for key in seen.iter().filter_map(|r| r.key.as_deref()) {
        match set {
            ViewSet::Catalog => {
                reload.items.insert(key.to_owned());
            }
            ViewSet::Orders => {
                if let Ok(id) = Uuid::parse_str(key) {
                    reload.orders.insert(id);
                }
            }
            ViewSet::Sagas | ViewSet::Probes => {}
        }
    }
}

/// Folds decoded events of one view set into its tables, without looking
/// at positions or held keys.
pub async fn apply_set(
    tx: &mut Transaction<'_, Postgres>,
    events: Events,
    mode: Mode,
    recent: Option<&RecentTimelines>,
    fresh: &mut Fresh,
) -> Result<(), sqlx::Error> {
    match events {
        Events::Catalog(events) => {
            let items = catalog_items::apply_batch(tx, &events).await?;
            if mode != Mode::Rebuild {
                fresh
                    .items
                    .extend(items.into_iter().map(ItemDocument::from));
            }
        }
        Events::Orders(events) => {
            let orders = order_set::apply_batch(tx, &events, mode, recent).await?;
            fresh.orders.extend(orders.documents);
            fresh.unplaced.extend(orders.unplaced);
            fresh.unbuilt.extend(orders.unbuilt);
        }
        Events::Sagas(events) => saga_timelines::apply_batch(tx, &events).await?,
        Events::Probes(events) => probes::apply(tx, &events).await?,
    }
    Ok(())
}
