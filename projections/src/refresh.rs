//! Writes the documents a committed batch touched to the Redis cache.
//!
//! Runs after the PostgreSQL commit and reads the documents back from
//! committed state, so the cache never holds anything PostgreSQL does not.
//! Redis trouble never fails or stalls the projector for long: every call is
//! bounded, failed keys are remembered (up to a cap) and written again later,
//! and after a failure the cache is left alone for a moment instead of
//! costing every batch a timeout.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use sqlx::PgPool;
use uuid::Uuid;

use crate::cache::{Cache, CacheError, Entry};
use crate::documents;

/// Keys remembered for a later write at most; beyond it the oldest failures
/// are forgotten (the entries' TTL bounds what they can leave behind).
const MAX_PENDING: usize = 100_000;
/// Documents loaded and written per round trip.
const CHUNK: usize = 500;
/// How long the cache is left alone after a failure.
const BACK_OFF: Duration = Duration::from_secs(1);

/// The cached documents a batch changed.
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

    fn merge(&mut self, other: Touched) {
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

pub struct Refresher {
    cache: Cache,
    pool: PgPool,
    pending: Touched,
    quiet_until: Option<Instant>,
}

impl Refresher {
    pub fn new(cache: Cache, pool: PgPool) -> Refresher {
        Refresher {
            cache,
            pool,
            pending: Touched::default(),
            quiet_until: None,
        }
    }

    /// True when documents wait for a write that failed earlier.
    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Writes `touched` and whatever failed before; never fails.
    pub async fn refresh(&mut self, touched: Touched) {
        self.pending.merge(touched);
        if self.pending.is_empty() || self.quiet_until.is_some_and(|t| Instant::now() < t) {
            self.record_pending();
            return;
        }
        let mut work = std::mem::take(&mut self.pending);
        while !work.is_empty() {
            let chunk = take_chunk(&mut work);
            if let Err(e) = self.write(&chunk).await {
                tracing::warn!(error = %e, keys = chunk.len() + work.len(), "writing the cache failed; will retry");
                metrics::counter!("projection_cache_errors_total").increment(1);
                self.pending.merge(chunk);
                self.pending.merge(work);
                self.quiet_until = Some(Instant::now() + BACK_OFF);
                self.cap_pending();
                break;
            }
        }
        self.record_pending();
    }

    async fn write(&self, chunk: &Touched) -> Result<(), RefreshError> {
        // A cheap check first, so a dead Redis does not cost a document load.
        self.cache.ping().await?;
        let skus: Vec<String> = chunk.items.iter().cloned().collect();
        let ids: Vec<Uuid> = chunk.orders.iter().copied().collect();
        let mut entries: Vec<Entry> = Vec::with_capacity(chunk.len());
        for item in documents::items(&self.pool, &skus).await? {
            entries.push(self.cache.item_entry(&item)?);
        }
        for order in documents::orders(&self.pool, &ids).await? {
            entries.push(self.cache.order_entry(&order)?);
        }
        let written = self.cache.put(&entries).await?;
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

/// Removes up to [`CHUNK`] keys from `work`.
fn take_chunk(work: &mut Touched) -> Touched {
    let mut chunk = Touched::default();
    while chunk.len() < CHUNK {
        if let Some(sku) = work.items.pop_first() {
            chunk.items.insert(sku);
        } else if let Some(id) = work.orders.pop_first() {
            chunk.orders.insert(id);
        } else {
            break;
        }
    }
    chunk
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn work_is_split_into_bounded_chunks_without_losing_keys() {
        let mut work = Touched::default();
        work.items.extend((0..300).map(|n| format!("SKU-{n}")));
        work.orders.extend((0..400).map(Uuid::from_u128));
        let first = take_chunk(&mut work);
        let second = take_chunk(&mut work);
        assert_eq!((first.len(), second.len(), work.len()), (500, 200, 0));
        assert_eq!(first.items.len() + second.items.len(), 300);
    }
}
