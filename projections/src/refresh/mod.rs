//! Writes the documents committed batches changed to the Redis cache, off
//! the projector's critical path.
//!
//! The batch loop hands each committed batch's documents (built from the
//! rows it folded, see [`crate::documents::assemble`]) to a task of its own
//! through a small bounded channel, together with the batch's pause lock
//! ([`BatchGuard`]), and goes on with the next batch. The task takes every
//! batch that is waiting, keeps the newest document of each key, writes
//! them in pipelined round trips, and only then lets the locks go: the cache
//! is only written after the commit, and never while a swap holds the lock.
//! Documents of one projector only grow (each batch starts from what the
//! earlier ones committed), and the cache's version guard drops anything
//! older than what an entry holds.
//!
//! A crash between a batch's commit and its cache write must not leave the
//! cache behind for good, so the Kafka offset hint (where the next owner of
//! a partition fetches from) says how far the cache is written, not how far
//! PostgreSQL is: the batch loop hands the hint of each synchronously
//! committed batch over with its documents, and the task commits it only
//! once those documents, and every earlier batch's, are written. The next
//! owner re-reads the records between the hint and the stored positions;
//! the positions keep them from being applied again, and their keys come
//! here as [`Fresh::reload`], written from what PostgreSQL holds.
//!
//! Documents built before the cache was last emptied (their batch's
//! generation is older than the cache's, see [`crate::cache`]) are never
//! written as they are: their keys are written from what PostgreSQL holds,
//! like those of failed writes.
//!
//! Redis trouble never fails or stalls the projector for long: every call is
//! bounded, the keys of failed writes are remembered (up to a cap) and
//! written later from what PostgreSQL then holds, and after a failure the
//! cache is left alone for a moment instead of costing every batch a timeout.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::PgPool;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::cache::{Cache, CacheError, Entry, Outcome};
use crate::consumer::{self, Hints};
use crate::documents;
use crate::pause::BatchGuard;

mod batches;

use batches::Merged;
pub use batches::{Fresh, Touched};

/// Keys remembered for a later write at most; beyond it the oldest failures
/// are forgotten (the entries' TTL bounds what they can leave behind).
const MAX_PENDING: usize = 100_000;
/// Documents written per round trip.
const CHUNK: usize = 500;
/// How long the cache is left alone after a failure.
const BACK_OFF: Duration = Duration::from_secs(1);
/// How often failed writes are retried while no batch arrives.
const RETRY_EVERY: Duration = Duration::from_secs(1);
/// Committed batches waiting for their cache write at most; the batch loop
/// waits when the cache falls further behind.
const QUEUE: usize = 2;

#[derive(Debug, thiserror::Error)]
enum RefreshError {
    #[error(transparent)]
    Cache(#[from] CacheError),
    #[error("reading documents from the views database failed: {0}")]
    Database(#[from] sqlx::Error),
    #[error("encoding a document failed: {0}")]
    Encode(#[from] serde_json::Error),
}

/// One committed batch: its documents, the offset hint that may be
/// committed once they are written, and the lock they are written under.
struct Job {
    fresh: Fresh,
    hints: Hints,
    guard: BatchGuard,
}

/// Commits an offset hint (to the consumer group, in the service).
pub type CommitHints = Box<dyn FnMut(Hints) + Send + Sync>;

/// The batch loop's end of the refresher.
pub struct Refresher {
    jobs: mpsc::Sender<Job>,
    cache: Arc<Cache>,
}

impl Refresher {
    /// Starts the refresher task; it ends once the `Refresher` is dropped
    /// and every batch handed to it is written. `commit` is called with the
    /// offset hints of batches whose documents are all written.
    pub fn spawn(cache: Cache, pool: PgPool, commit: CommitHints) -> (Refresher, JoinHandle<()>) {
        let (jobs, queue) = mpsc::channel(QUEUE);
        let cache = Arc::new(cache);
        let writer = Writer {
            cache: cache.clone(),
            pool,
            pending: Touched::default(),
            quiet_until: None,
            due: Hints::default(),
            commit,
        };
        (Refresher { jobs, cache }, tokio::spawn(writer.run(queue)))
    }

    /// The cache's generation: a batch takes it before it reads anything.
    pub fn generation(&self) -> u64 {
        self.cache.generation()
    }

    /// Hands a committed batch over with the offset hint its cache write
    /// allows (empty unless the batch committed synchronously); waits while
    /// the queue is full.
    pub async fn refresh(&self, fresh: Fresh, hints: Hints, guard: BatchGuard) {
        let job = Job {
            fresh,
            hints,
            guard,
        };
        if let Err(mpsc::error::SendError(job)) = self.jobs.send(job).await {
            // The task is gone only if it panicked; the entries' TTL bounds the damage.
            tracing::error!("the cache refresher is gone");
            job.guard.leave().await;
        }
    }
}

struct Writer {
    cache: Arc<Cache>,
    pool: PgPool,
    /// Keys to write from what PostgreSQL holds: failed writes, and records
    /// another instance (or this one before a restart) applied.
    pending: Touched,
    quiet_until: Option<Instant>,
    /// Offset hints of batches handed over, held until their documents and
    /// every pending key are written.
    due: Hints,
    commit: CommitHints,
}

impl Writer {
    async fn run(mut self, mut queue: mpsc::Receiver<Job>) {
        loop {
            let first = tokio::select! {
                job = queue.recv() => match job {
                    Some(job) => job,
                    None => return,
                },
                _ = tokio::time::sleep(RETRY_EVERY), if !self.pending.is_empty() => {
                    self.retry_idle().await;
                    continue;
                }
            };
            let mut merged = Merged::default();
            let mut guards = vec![first.guard];
            merged.add(first.fresh);
            self.due.merge(first.hints);
            while let Ok(job) = queue.try_recv() {
                merged.add(job.fresh);
                self.due.merge(job.hints);
                guards.push(job.guard);
            }
            let started = Instant::now();
            self.write_merged(merged).await;
            consumer::phase("cache", started);
            futures::future::join_all(guards.into_iter().map(BatchGuard::leave)).await;
        }
    }

    /// Retries failed keys between batches, unless a swap holds the lock
    /// (waiting for it here could keep the batches queued behind the swap
    /// from ever letting their locks go).
    async fn retry_idle(&mut self) {
        if let Some(guard) = BatchGuard::try_enter(&self.pool).await {
            self.write_merged(Merged::default()).await;
            guard.leave().await;
        }
    }

    /// Writes `merged` and whatever failed before, then lets the offset
    /// hints go if nothing is left to write; never fails.
    async fn write_merged(&mut self, merged: Merged) {
        self.write(merged).await;
        if self.pending.is_empty() && !self.due.is_empty() {
            (self.commit)(std::mem::take(&mut self.due));
        }
    }

    async fn write(&mut self, mut merged: Merged) {
        self.pending.merge(std::mem::take(&mut merged.reload));
        if self.quiet_until.is_some_and(|t| Instant::now() < t) {
            self.pending.merge(merged.touched());
            self.cap_pending();
            return self.record_pending();
        }
        let mut failed = None;
        match self.write_documents(&merged).await {
            // Both writers of such an entry have committed by now (each
            // writes after its commit), so PostgreSQL holds a document
            // covering both: written below, once, with the pending keys.
            Ok(bodiless) => {
                consumer::record_age("cached", merged.oldest);
                self.pending.orders.extend(bodiless);
            }
            // Older than what the emptied cache may have lost: written
            // from PostgreSQL below instead.
            Err(RefreshError::Cache(CacheError::Stale)) => self.pending.merge(merged.touched()),
            Err(e) => failed = Some(e),
        }
        if failed.is_none() && !self.pending.is_empty() {
            let retry = std::mem::take(&mut self.pending);
            match self.reload(&retry).await {
                Ok(()) => {}
                // Emptied again meanwhile: the next batch (or the idle
                // retry) writes them under the new generation.
                Err(RefreshError::Cache(CacheError::Stale)) => self.pending.merge(retry),
                Err(e) => {
                    self.pending.merge(retry);
                    failed = Some(e);
                }
            }
        }
        if let Some(e) = failed {
            // The whole of `merged` is retried: a repeated write is harmless.
            let touched = merged.touched();
            tracing::warn!(error = %e, keys = touched.len() + self.pending.len(), "writing the cache failed; will retry");
            metrics::counter!("projection_cache_errors_total").increment(1);
            self.pending.merge(touched);
            self.quiet_until = Some(Instant::now() + BACK_OFF);
            self.cap_pending();
        }
        self.record_pending();
    }

    /// Writes the documents of `merged` in chunks, under their generation;
    /// answers the orders whose entries the writes left without a body.
    async fn write_documents(&self, merged: &Merged) -> Result<Vec<Uuid>, RefreshError> {
        let Some(generation) = merged.generation else {
            return Ok(Vec::new());
        };
        let mut entries = Vec::with_capacity(
            merged.items.len() + merged.orders.len() + merged.unplaced.len() + merged.unbuilt.len(),
        );
        let mut orders = Vec::with_capacity(entries.capacity());
        for item in merged.items.values() {
            entries.push(self.cache.item_entry(item)?);
            orders.push(None);
        }
        for order in merged.orders.values() {
            entries.push(self.cache.order_entry(order)?);
            orders.push(Some(order.order_id));
        }
        for unplaced in merged.unplaced.values() {
            entries.push(self.cache.unplaced_entry(unplaced));
            orders.push(Some(unplaced.order_id));
        }
        // An entry these leave without a body is meant to have none: it
        // is not rewritten from PostgreSQL.
        for unbuilt in merged.unbuilt.values() {
            entries.push(self.cache.unbuilt_entry(unbuilt));
            orders.push(None);
        }
        let mut bodiless = Vec::new();
        for (chunk, orders) in entries.chunks(CHUNK).zip(orders.chunks(CHUNK)) {
            let outcomes = self.put(generation, chunk).await?;
            bodiless.extend(
                outcomes
                    .iter()
                    .zip(orders)
                    .filter(|(outcome, _)| **outcome == Outcome::Bodiless)
                    .filter_map(|(_, order)| *order),
            );
        }
        Ok(bodiless)
    }

    /// Writes the current documents of `keys`, read back from PostgreSQL.
    async fn reload(&self, keys: &Touched) -> Result<(), RefreshError> {
        // Taken before the reads, so what they miss cannot have been lost
        // by a cache emptied before the generation began.
        let generation = self.cache.generation();
        let skus: Vec<String> = keys.items.iter().cloned().collect();
        let ids: Vec<Uuid> = keys.orders.iter().copied().collect();
        for skus in skus.chunks(CHUNK) {
            let mut entries = Vec::with_capacity(skus.len());
            for item in documents::items(&self.pool, skus).await? {
                entries.push(self.cache.item_entry(&item)?);
            }
            self.put(generation, &entries).await?;
        }
        for ids in ids.chunks(CHUNK) {
            let mut entries = Vec::with_capacity(ids.len());
            let orders = documents::order_entries(&self.pool, ids).await?;
            for order in &orders.documents {
                entries.push(self.cache.order_entry(order)?);
            }
            for unplaced in &orders.unplaced {
                entries.push(self.cache.unplaced_entry(unplaced));
            }
            self.put(generation, &entries).await?;
        }
        Ok(())
    }

    async fn put(&self, generation: u64, entries: &[Entry]) -> Result<Vec<Outcome>, RefreshError> {
        let outcomes = self.cache.put_each(generation, entries).await?;
        for (outcome, label) in [
            (Outcome::Written, "written"),
            (Outcome::Superseded, "superseded"),
            (Outcome::Bodiless, "bodiless"),
        ] {
            let count = outcomes.iter().filter(|o| **o == outcome).count();
            metrics::counter!("projection_cache_writes_total", "outcome" => label)
                .increment(count as u64);
        }
        Ok(outcomes)
    }

    fn cap_pending(&mut self) {
        let excess = self.pending.len().saturating_sub(MAX_PENDING);
        if excess > 0 {
            tracing::error!(
                forgotten = excess,
                "too many cache writes pending; forgetting some"
            );
            for _ in 0..excess {
                if self.pending.orders.pop_first().is_none() {
                    self.pending.items.pop_first();
                }
            }
        }
    }

    fn record_pending(&self) {
        metrics::gauge!("projection_cache_pending").set(self.pending.len() as f64);
    }
}
