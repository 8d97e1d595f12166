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
//! Redis trouble never fails or stalls the projector for long: every call is
//! bounded, the keys of failed writes are remembered (up to a cap) and
//! written later from what PostgreSQL then holds, and after a failure the
//! cache is left alone for a moment instead of costing every batch a timeout.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use sqlx::PgPool;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::cache::{Cache, CacheError, Entry};
use crate::consumer::Hints;
use crate::documents::{self, ItemDocument, OrderDocument};
use crate::pause::BatchGuard;

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

/// The documents a committed batch changed, as it left them.
#[derive(Debug, Default)]
pub struct Fresh {
    pub items: Vec<ItemDocument>,
    pub orders: Vec<OrderDocument>,
    /// Keys of records the batch skipped as already applied: whoever applied
    /// them may have died before writing their documents, so these are
    /// written again from PostgreSQL.
    pub reload: Touched,
}

impl Fresh {
    /// The keys of the documents (and of those to reload).
    pub fn touched(&self) -> Touched {
        let mut touched = Touched {
            items: self.items.iter().map(|i| i.sku.clone()).collect(),
            orders: self.orders.iter().map(|o| o.order_id).collect(),
        };
        touched.merge(self.reload.clone());
        touched
    }
}

/// The keys of cached documents.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Touched {
    pub items: BTreeSet<String>,
    pub orders: BTreeSet<Uuid>,
}

impl Touched {
    pub fn len(&self) -> usize {
        self.items.len() + self.orders.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub(crate) fn merge(&mut self, other: Touched) {
        self.items.extend(other.items);
        self.orders.extend(other.orders);
    }
}

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
}

impl Refresher {
    /// Starts the refresher task; it ends once the `Refresher` is dropped
    /// and every batch handed to it is written. `commit` is called with the
    /// offset hints of batches whose documents are all written.
    pub fn spawn(cache: Cache, pool: PgPool, commit: CommitHints) -> (Refresher, JoinHandle<()>) {
        let (jobs, queue) = mpsc::channel(QUEUE);
        let writer = Writer {
            cache,
            pool,
            pending: Touched::default(),
            quiet_until: None,
            due: Hints::default(),
            commit,
        };
        (Refresher { jobs }, tokio::spawn(writer.run(queue)))
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

/// The newest document of each key among the batches taken together.
#[derive(Default)]
struct Merged {
    items: HashMap<String, ItemDocument>,
    orders: HashMap<Uuid, OrderDocument>,
    reload: Touched,
}

impl Merged {
    fn add(&mut self, fresh: Fresh) {
        self.reload.merge(fresh.reload);
        for item in fresh.items {
            let newer = self
                .items
                .get(&item.sku)
                .is_none_or(|held| held.version <= item.version);
            if newer {
                self.items.insert(item.sku.clone(), item);
            }
        }
        for order in fresh.orders {
            let sum = |o: &OrderDocument| o.versions().iter().map(|(_, v)| v).sum::<i64>();
            let newer = self
                .orders
                .get(&order.order_id)
                .is_none_or(|held| sum(held) <= sum(&order));
            if newer {
                self.orders.insert(order.order_id, order);
            }
        }
    }

    fn touched(&self) -> Touched {
        Touched {
            items: self.items.keys().cloned().collect(),
            orders: self.orders.keys().copied().collect(),
        }
    }
}

struct Writer {
    cache: Cache,
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
            self.write_merged(merged).await;
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
        let mut entries = Vec::with_capacity(merged.items.len() + merged.orders.len());
        let mut failed = None;
        for item in merged.items.values() {
            entries.push(self.cache.item_entry(item));
        }
        for order in merged.orders.values() {
            entries.push(self.cache.order_entry(order));
        }
        let entries: Result<Vec<Entry>, _> = entries.into_iter().collect();
        match entries {
            Ok(entries) => {
                for chunk in entries.chunks(CHUNK) {
                    if let Err(e) = self.put(chunk).await {
                        failed = Some(e);
                        break;
                    }
                }
            }
            Err(e) => failed = Some(e.into()),
        }
        if failed.is_none() && !self.pending.is_empty() {
            let retry = std::mem::take(&mut self.pending);
            if let Err(e) = self.reload(&retry).await {
                self.pending.merge(retry);
                failed = Some(e);
            }
        }
        if let Some(e) = failed {
            // The whole of `merged` is retried: a repeated write is harmless.
            tracing::warn!(error = %e, keys = merged.items.len() + merged.orders.len() + self.pending.len(), "writing the cache failed; will retry");
            metrics::counter!("projection_cache_errors_total").increment(1);
            self.pending.merge(merged.touched());
            self.quiet_until = Some(Instant::now() + BACK_OFF);
            self.cap_pending();
        }
        self.record_pending();
    }

    /// Writes the current documents of `keys`, read back from PostgreSQL.
    async fn reload(&self, keys: &Touched) -> Result<(), RefreshError> {
        let skus: Vec<String> = keys.items.iter().cloned().collect();
        let ids: Vec<Uuid> = keys.orders.iter().copied().collect();
        for skus in skus.chunks(CHUNK) {
            let mut entries = Vec::with_capacity(skus.len());
            for item in documents::items(&self.pool, skus).await? {
                entries.push(self.cache.item_entry(&item)?);
            }
            self.put(&entries).await?;
        }
        for ids in ids.chunks(CHUNK) {
            let mut entries = Vec::with_capacity(ids.len());
            for order in documents::orders(&self.pool, ids).await? {
                entries.push(self.cache.order_entry(&order)?);
            }
            self.put(&entries).await?;
        }
        Ok(())
    }

    async fn put(&self, entries: &[Entry]) -> Result<(), RefreshError> {
        let written = self.cache.put(entries).await?;
        metrics::counter!("projection_cache_writes_total", "outcome" => "written")
            .increment(written as u64);
        metrics::counter!("projection_cache_writes_total", "outcome" => "superseded")
            .increment((entries.len() - written) as u64);
        Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    fn item(sku: &str, version: i64) -> ItemDocument {
        ItemDocument {
            sku: sku.into(),
            name: "Mug".into(),
            unit_price: documents::Price {
                minor: 100,
                currency: "USD".into(),
            },
            on_hand: version,
            reserved: 0,
            available: version,
            version,
            updated_at: Utc::now(),
        }
    }

    #[test]
    fn merging_batches_keeps_the_newest_document_of_each_key() {
        let mut merged = Merged::default();
        merged.add(Fresh {
            items: vec![item("A", 2), item("B", 1)],
            ..Fresh::default()
        });
        merged.add(Fresh {
            items: vec![item("A", 3), item("B", 0)],
            ..Fresh::default()
        });
        assert_eq!(merged.items["A"].version, 3);
        assert_eq!(merged.items["B"].version, 1);
        assert_eq!(merged.touched().items.len(), 2);
    }
}
