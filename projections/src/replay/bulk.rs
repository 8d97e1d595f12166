//! The bulk load of a fresh rebuild (view sets with [`ViewSet::bulk`]):
//! the log is folded in memory and written to tables without keys, with
//! decoding, folding and PostgreSQL each on a stage of its own.
//!
//! A fresh shadow has no rows, no positions past the start and no dead
//! letters, and only this process writes it (`rebuild::Claim`), so the
//! fold needs nothing from the database: the rows folded so far are
//! carried in memory ([`Carry`]), held-back keys too, and each batch only
//! appends, in one transaction with its positions:
//! - the latest version of every row the batch changed (plain inserts: the
//!   tables get their keys after the load, keeping each key's newest row);
//! - its timeline entries (`COPY`) and sales (a small keyed table);
//! - its dead letters, and the positions past it.
//!
//! So a row is written once per batch that changes it instead of being
//! looked up and upserted, and no index is maintained during the load.
//!
//! Three stages run at once, each batch passing through them in log order
//! over channels of [`AHEAD`] batches:
//! - the reader fetches a batch and decodes it (with the hold-back rules of
//!   `hold::divert`, which need log order and nothing else);
//! - the fold (a blocking thread: it is pure CPU) folds the decoded events
//!   into the carried rows and renders the changed rows and the timeline as
//!   `COPY` text, without copying a row;
//! - the writer sends that text and the positions in one transaction.
//!
//! Memory is bounded by the carried rows: past `budget` the fold stops at
//! a batch boundary (what was decoded after it is dropped, unwritten), and
//! the rebuild adds the keys and goes on through them from the positions
//! written (`rebuild::load`), as a resumed rebuild does.

use std::collections::HashMap;

use sqlx::PgPool;
use tokio::sync::mpsc;

use super::progress::Progress;
use super::reader::{Reader, Span};
use super::{Context, ReplayError};
use crate::dead_letters::DeadLetter;
use crate::dispatch::{Events, ViewSet};
use crate::hold::HeldKeys;
use crate::positions::{self, Moved};
use crate::record::Record;
use crate::views::order_set::{self, Carry, Folded};

/// Batches a stage may run ahead of the next one.
const AHEAD: usize = 2;

/// One batch, decoded, for the fold.
struct Decoded {
    events: Events,
    records: Vec<Record>,
    letters: Vec<DeadLetter>,
}

/// One batch for the writer: what to write and how far it moves the
/// positions (the records themselves are dropped by the fold, which leaves
/// the writer, the stage PostgreSQL paces, nothing but the writing).
struct Write {
    folded: Folded,
    moved: Moved,
    records: usize,
    letters: Vec<DeadLetter>,
}

/// How far a bulk load got.
pub struct Loaded {
    pub applied: u64,
    /// False when the carried rows reached the budget before the end.
    pub complete: bool,
}

/// Loads `spans` (from their starts: a fresh shadow) into the tables `pool`
/// resolves to, `batch` records per transaction, carrying at most `budget`
/// rows in memory.
pub async fn load(
    ctx: &Context,
    set: ViewSet,
    pool: &PgPool,
    spans: &[Span],
    batch: usize,
    budget: usize,
    progress: &Progress,
) -> Result<Loaded, ReplayError> {
    start_positions(pool, set, spans).await?;
    let (to_fold, decoded) = mpsc::channel(AHEAD);
    let (to_write, folded) = mpsc::channel(AHEAD);
    let writer = tokio::spawn(write_all(pool.clone(), folded, progress.clone()));
    let fold =
        tokio::task::spawn_blocking(move || fold_all(set.projection(), decoded, to_write, budget));
    let read = read_all(ctx, set, spans, batch, to_fold).await;
    // Each stage ends when the one before it is gone. The writer's error
    // comes first, as a failed write is why the others stopped.
    let written = joined(writer.await)?;
    let folded_all = joined(fold.await);
    let read_all = read?;
    Ok(Loaded {
        applied: written,
        complete: read_all && folded_all,
    })
}

fn joined<T>(result: Result<T, tokio::task::JoinError>) -> T {
    result.unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
}

/// Reads and decodes batches in log order and hands them to the fold;
/// answers whether it reached the end (false: the fold stopped first).
async fn read_all(
    ctx: &Context,
    set: ViewSet,
    spans: &[Span],
    batch: usize,
    sender: mpsc::Sender<Decoded>,
) -> Result<bool, ReplayError> {
    let mut reader = Reader::open(ctx.kafka(), spans)?;
    let mut held = HeldKeys::new();
    while let Some(records) = reader.next_batch(batch).await? {
        let refs: Vec<&Record> = records.iter().collect();
        let (events, letters) = Events::divert(&ctx.routes, set, &refs, &mut held);
        drop(refs);
        let decoded = Decoded {
            events,
            records,
            letters,
        };
        if sender.send(decoded).await.is_err() {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Folds decoded batches into the carried rows until `budget` rows are
/// carried; answers whether it folded every batch the reader sent.
fn fold_all(
    projection: &'static str,
    mut receiver: mpsc::Receiver<Decoded>,
    sender: mpsc::Sender<Write>,
    budget: usize,
) -> bool {
    let mut carry = Carry::default();
    while carry.rows() < budget {
        let Some(decoded) = receiver.blocking_recv() else {
            return true;
        };
        let folded = match &decoded.events {
            Events::Orders(events) => order_set::fold_carried(&mut carry, events),
            // Only the order set is bulk loaded (`ViewSet::bulk`).
            _ => Folded::default(),
        };
        let records: Vec<(&'static str, &Record)> =
            decoded.records.iter().map(|r| (projection, r)).collect();
        let write = Write {
            folded,
            moved: Moved::of(&records),
            records: records.len(),
            letters: decoded.letters,
        };
        if sender.blocking_send(write).is_err() {
            // The writer failed; its error is the one reported.
            return false;
        }
    }
    false
}

/// Writes each batch in its own transaction; answers how many records.
async fn write_all(
    pool: PgPool,
    mut receiver: mpsc::Receiver<Write>,
    progress: Progress,
) -> Result<u64, ReplayError> {
    let mut written = 0;
    while let Some(write) = receiver.recv().await {
        let mut tx = pool.begin().await?;
        order_set::store_folded(&mut tx, write.folded).await?;
        positions::advance(&mut tx, &write.moved, &write.letters).await?;
        tx.commit().await?;
        written += write.records as u64;
        progress.inc(write.records);
    }
    Ok(written)
}

/// Creates the shadow's position rows at the spans' starts, which
/// [`positions::advance`] then moves.
async fn start_positions(pool: &PgPool, set: ViewSet, spans: &[Span]) -> Result<(), sqlx::Error> {
    let starts: HashMap<(&str, i32), i64> = spans
        .iter()
        .map(|s| ((s.topic.as_str(), s.partition), s.start))
        .collect();
    let (topics, rest): (Vec<&str>, Vec<(i32, i64)>) =
        starts.iter().map(|((t, p), o)| (*t, (*p, *o))).unzip();
    let (partitions, offsets): (Vec<i32>, Vec<i64>) = rest.into_iter().unzip();
    sqlx::query(
        "INSERT INTO projection_positions (projection, topic, partition, next_offset)
         SELECT $1, * FROM UNNEST($2::text[], $3::int[], $4::bigint[])
         ON CONFLICT (projection, topic, partition) DO NOTHING",
    )
    .bind(set.projection())
    .bind(topics)
    .bind(partitions)
    .bind(offsets)
    .execute(pool)
    .await?;
    Ok(())
}
