//! `rebuild`: replays the log into a view set's shadow at full speed, then
//! optionally swaps it in. A fresh shadow of a bulk view set is loaded by
//! `bulk` (fold in memory, append to tables without keys, keys and indexes
//! after); otherwise, and for what a bulk load leaves (a resumed rebuild,
//! the rows past its memory budget, a swap's catch-up), large batches go
//! through the projector's own load-fold-store code. Both commit
//! asynchronously and build secondary indexes after the load.
//!
//! The shadow's rows and positions commit together, so a rebuild that is
//! interrupted anywhere resumes from the shadow's positions when run again
//! and applies nothing twice.

use std::collections::HashMap;
use std::time::Instant;

use serde::Serialize;
use sqlx::{PgConnection, PgPool};

use super::output::Output;
use super::progress::Progress;
use super::reader::{Reader, Span};
use super::shadow::{Shadow, Start};
use super::topics::{self, Extent};
use super::{Context, ReplayError, bulk, swap};
use crate::dispatch::{self, Mode, Routes, ViewSet};

#[derive(Debug, Clone)]
pub struct Options {
    pub start: Start,
    pub swap: bool,
    pub restart: bool,
    /// Records per shadow transaction.
    pub batch: usize,
}

/// Rows a bulk load may hold in memory before it goes on through the
/// tables' keys: about 0.5 to 1 KB each (an order row with two lines), so
/// under 1 GB.
const BULK_ROWS: usize = 1_000_000;

#[derive(Debug, Clone, Serialize)]
pub struct RebuildReport {
    pub view: &'static str,
    pub from: String,
    pub resumed: bool,
    pub events: u64,
    pub seconds: f64,
    pub events_per_second: f64,
    pub swapped: bool,
}

pub async fn rebuild(
    ctx: &mut Context,
    set: ViewSet,
    options: &Options,
    out: Output,
) -> Result<RebuildReport, ReplayError> {
    ctx.check_kafka().await?;
    let live = ctx.pool().await?;
    // Redis is checked before anything changes: a swap must be able to
    // invalidate what the cache holds of the old tables.
    let cache = match options.swap {
        true => Some(ctx.cache().await?),
        false => None,
    };
    let _claim = Claim::take(&live, set).await?;
    let extents = topics::extents(ctx.kafka(), &ctx.topics(set)).await?;
    if let Start::At(at) = options.start {
        check_start(ctx, set, &extents, at).await?;
    }
    let shadow = Shadow::open(
        &live,
        &ctx.target.database_url,
        set,
        &options.start,
        options.restart,
    )
    .await?;
    let started = Instant::now();
    let mut events = load(ctx, &shadow, &extents, &options.start, options.batch, out).await?;
    shadow.finish_indexes(&live).await?;
    if let Some(cache) = cache {
        events += swap::swap(ctx, &shadow, &options.start, &cache, options.batch).await?;
    }
    let seconds = started.elapsed().as_secs_f64();
    Ok(RebuildReport {
        view: set.projection(),
        from: options.start.describe(),
        resumed: shadow.resumed,
        events,
        seconds,
        events_per_second: events as f64 / seconds.max(1e-9),
        swapped: options.swap,
    })
}

/// Refuses a start time before the log's first record: events before it
/// may have been deleted, and the rebuilt view would silently miss them.
async fn check_start(
    ctx: &Context,
    set: ViewSet,
    extents: &[Extent],
    at: chrono::DateTime<chrono::Utc>,
) -> Result<(), ReplayError> {
    let first = topics::log_start(ctx.kafka(), extents).await?;
    match first {
        Some(first) if at >= first => Ok(()),
        _ => Err(ReplayError::BeforeLogStart {
            from: at,
            view: set.projection().to_owned(),
            starts: first.map_or("nothing yet".to_owned(), |f| f.to_rfc3339()),
        }),
    }
}

/// Replays from the shadow's positions (or the start) to the end of the log
/// as it was when the load began; answers how many records were applied.
pub async fn load(
    ctx: &Context,
    shadow: &Shadow,
    extents: &[Extent],
    start: &Start,
    batch: usize,
    out: Output,
) -> Result<u64, ReplayError> {
    let ends = extents
        .iter()
        .map(|e| ((e.topic.clone(), e.partition), e.high))
        .collect();
    let mut spans = spans(ctx, shadow, extents, start, &ends).await?;
    let total = spans.iter().map(Span::len).sum();
    let progress = Progress::new(shadow.set.projection(), total, out.progress());
    let mut applied = 0;
    if shadow.bulk {
        let (set, pool) = (shadow.set, &shadow.pool);
        let loaded = bulk::load(ctx, set, pool, &spans, batch, BULK_ROWS, &progress).await?;
        if loaded.complete {
            progress.finish();
            return Ok(loaded.applied);
        }
        applied = loaded.applied;
        spans = self::spans(ctx, shadow, extents, start, &ends).await?;
    }
    shadow.key_versioned().await?;
    applied += apply(ctx, &shadow.pool, &spans, batch, &progress).await?;
    progress.finish();
    Ok(applied)
}

/// For every partition of `extents` with an end in `ends`: from where the
/// shadow is (or where the replay starts) to that end.
pub async fn spans(
    ctx: &Context,
    shadow: &Shadow,
    extents: &[Extent],
    start: &Start,
    ends: &HashMap<(String, i32), i64>,
) -> Result<Vec<Span>, ReplayError> {
    let origins = match start {
        Start::Beginning => extents.iter().map(|e| e.low).collect(),
        Start::At(at) => topics::offsets_at(ctx.kafka(), extents, *at).await?,
    };
    let stored = shadow.positions().await?;
    Ok(extents
        .iter()
        .zip(origins)
        .filter_map(|(e, origin)| {
            let key = (e.topic.clone(), e.partition);
            let end = *ends.get(&key)?;
            let start = stored.get(&key).copied().unwrap_or(origin).max(e.low);
            Some(Span {
                topic: e.topic.clone(),
                partition: e.partition,
                start,
                end,
            })
        })
        .collect())
}

/// Applies the records of `spans` to the tables `pool` resolves to, `batch`
/// records per transaction, through the projector's own batch code.
pub async fn apply(
    ctx: &Context,
    pool: &PgPool,
    spans: &[Span],
    batch: usize,
    progress: &Progress,
) -> Result<u64, ReplayError> {
    let mut reader = Reader::open(ctx.kafka(), spans)?;
    let mut applied = 0;
    while let Some(records) = reader.next_batch(batch).await? {
        let count = records.len();
        apply_one(pool, &ctx.routes, &records).await?;
        applied += count as u64;
        progress.inc(count);
    }
    Ok(applied)
}

async fn apply_one(
    pool: &PgPool,
    routes: &Routes,
    records: &[crate::record::Record],
) -> Result<(), ReplayError> {
    let mut tx = pool.begin().await?;
    dispatch::apply_batch(&mut tx, routes, records, Mode::Rebuild, None).await?;
    tx.commit().await?;
    Ok(())
}

/// Keeps a second replay off the same view set for as long as it lives (a
/// session lock on a connection of its own, gone with the process).
pub struct Claim {
    _connection: PgConnection,
}

impl Claim {
    pub async fn take(pool: &PgPool, set: ViewSet) -> Result<Claim, ReplayError> {
        let mut conn = pool.acquire().await?.detach();
        let (taken,): (bool,) = sqlx::query_as("SELECT pg_try_advisory_lock(hashtext($1)::bigint)")
            .bind(format!("replay:{}", set.projection()))
            .fetch_one(&mut conn)
            .await?;
        match taken {
            true => Ok(Claim { _connection: conn }),
            false => Err(ReplayError::Busy(set.projection().to_owned())),
        }
    }
}
