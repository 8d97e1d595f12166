//! The Redis cache of the hot views: derived data only, never a source of
//! truth. The projector writes a document after the PostgreSQL commit that
//! produced it; readers try the cache first and fall back to PostgreSQL,
//! and the query API writes an order it read there (as any writer: under
//! the guard and the epoch below).
//!
//! Every entry is a hash: `v` (the guard version), `body` (the served JSON),
//! `owner` (the customer an order belongs to, so readers can check access
//! without parsing the body), `sig` (an HMAC of key, owner and body under
//! the deployment's signing key: readers trust an owner only when it
//! verifies, so whoever can write to Redis cannot grant themselves access
//! to an order) and one field per feeding stream with the
//! sequence the body reflects (`orders`, `payments`, `shipments`,
//! `catalog`), which readers compare with consistency tokens.
//!
//! The guard: the write is a Lua script (sent once, then called by its
//! SHA1 with `EVALSHA`) comparing the stream versions componentwise. A
//! document replaces the entry only when it is at least as new in every
//! stream and newer in one; one that is older in any stream and newer in
//! none is dropped. Documents of one projector only ever grow componentwise
//! (each batch reads what the previous ones committed), but two projectors
//! that hold different streams of the same order (the orders partition on
//! one, its payments partition on the other) can each build a document the
//! other's does not cover: then the entry keeps the newest version of each
//! stream and loses its body, so readers go to PostgreSQL until a document
//! covering both arrives. An older document therefore never replaces a newer
//! one, and a body is only ever served with the versions it reflects. `v` is
//! the sum of the versions, kept for operators.
//!
//! That holds only if every committed version reaches the entry. A
//! projector that folds an order's payment or shipment events before it
//! has the order's row has no document to write, while the projector that
//! holds the order stream may be building one in a transaction that cannot
//! see them yet; written alone, that document would be served for good
//! without the shipment (the chaos run found it). So the first writes the
//! versions alone ([`Cache::unplaced_entry`]), and whichever of the two
//! writes lands second leaves the entry without a body ([`Outcome::Bodiless`]);
//! its writer then rewrites the entry from PostgreSQL, which by then holds
//! both commits.
//!
//! The guard remembers only what entries hold, and an emptied cache (a
//! Redis restart, as it keeps nothing on disk, or a `FLUSHALL`) forgets
//! it: a document built before that moment and written after it would
//! stick, older than one another projector wrote and the restart lost. So
//! the data set carries an epoch, a random id under `<namespace>epoch`
//! that the first writer to find it missing creates; writes name the epoch
//! their writer knows and the script refuses every one under another. A
//! writer that learns a new epoch counts a new [`Cache::generation`]; the
//! projector tags each batch's documents with the generation current before
//! the batch read anything, a write of an older generation fails with
//! [`CacheError::Stale`], and those documents are rebuilt from PostgreSQL,
//! read after the new epoch was learned. (The guard cannot see an entry
//! lost alone, e.g. evicted by `maxmemory`; the TTL bounds that.)
//!
//! Keys carry a namespace (the views database's name), so deployments and
//! tests sharing one Redis never see each other's entries. Every call is
//! bounded by a timeout; a broken connection is dropped and re-established
//! on the next call.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use events::auth::signing::SigningKey;
use redis::{ErrorKind, RedisError, Script};
use uuid::Uuid;

mod connection;
mod entries;
mod reads;

use connection::Link;
use reads::Reads;

use entries::cached;
pub use entries::{Cached, Entry};

/// How long an entry lives without being rewritten; bounds what a lost
/// write (a timeout the projector could not retry) can leave behind.
const TTL_SECONDS: u64 = 24 * 60 * 60;

/// Writes the document in ARGV under the componentwise guard and the
/// epoch check (see the module comment and the script's own header).
const GUARDED_SET: &str = include_str!("guard.lua");

#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("redis did not answer within {0:?}")]
    Timeout(Duration),
    #[error("redis failed: {0}")]
    Redis(#[from] RedisError),
    #[error("the cache was emptied since the documents were built")]
    Stale,
}

/// What the guard did with one entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// It replaced what the entry held.
    Written,
    /// It was not newer in any stream and was dropped.
    Superseded,
    /// It and the entry each reflected a stream version the other did not:
    /// the entry kept the newest of each and no body.
    Bodiless,
}

/// Key prefix (after the namespace) of order documents.
pub const ORDER_PREFIX: &str = "order:";
/// Key prefix (after the namespace) of catalog item documents.
pub const ITEM_PREFIX: &str = "catalog:";

/// A connection to the cache under one key namespace.
pub struct Cache {
    link: Arc<Link>,
    /// Sends reads to the task that pipelines them (started by the first).
    reads: OnceLock<Reads>,
    guarded_set: Script,
    namespace: String,
    /// Signs owned entries on write and checks them on read; without it,
    /// owned entries are written unsigned and never served.
    signing: Option<SigningKey>,
    /// The epoch of the cache's data set as this writer last learned it
    /// (empty until its first write).
    epoch: std::sync::Mutex<String>,
    /// How many epochs this writer has learned (see the module comment).
    generation: AtomicU64,
}

/// The namespace of the cache of the views database at `database_url`: its
/// database name.
pub fn namespace_for(database_url: &str) -> String {
    let path = database_url.split(['?', '#']).next().unwrap_or_default();
    let name = path.rsplit('/').next().unwrap_or_default();
    format!("{name}:")
}

impl Cache {
    /// A cache whose calls each give up after `timeout`. Connects lazily, so
    /// a service starts (and keeps serving) while Redis is down.
    pub fn new(url: &str, namespace: String, timeout: Duration) -> Result<Cache, RedisError> {
        Ok(Cache {
            link: Arc::new(Link::new(url, timeout)?),
            reads: OnceLock::new(),
            guarded_set: Script::new(GUARDED_SET),
            namespace,
            signing: None,
            epoch: std::sync::Mutex::new(String::new()),
            generation: AtomicU64::new(0),
        })
    }

    /// The cache signing (and checking) owned entries with a subkey of `key`.
    pub fn with_signing(mut self, key: &SigningKey) -> Cache {
        self.signing = Some(key.derive("cache entries"));
        self
    }

    pub fn order_key(&self, id: Uuid) -> String {
        format!("{}{ORDER_PREFIX}{id}", self.namespace)
    }

    pub fn item_key(&self, sku: &str) -> String {
        format!("{}{ITEM_PREFIX}{sku}", self.namespace)
    }

    /// Removes every entry whose key starts with `prefix` (after the
    /// namespace); answers how many. Used when a view is replaced wholesale,
    /// where the version guard cannot tell the new rows from the old ones.
    pub async fn invalidate(&self, prefix: &str) -> Result<usize, CacheError> {
        let pattern = format!("{}{prefix}*", self.namespace);
        let mut cursor: u64 = 0;
        let mut removed = 0;
        loop {
            let pattern = pattern.clone();
            let (next, keys): (u64, Vec<String>) = self
                .link
                .bounded(|mut conn| async move {
                    redis::cmd("SCAN")
                        .arg(cursor)
                        .arg("MATCH")
                        .arg(&pattern)
                        .arg("COUNT")
                        .arg(1000)
                        .query_async(&mut conn)
                        .await
                })
                .await?;
            removed += self.delete(keys).await?;
            if next == 0 {
                return Ok(removed);
            }
            cursor = next;
        }
    }

    /// Removes the entries under `keys` (full keys); answers how many existed.
    pub async fn delete(&self, keys: Vec<String>) -> Result<usize, CacheError> {
        if keys.is_empty() {
            return Ok(0);
        }
        self.link
            .bounded(|mut conn| async move {
                redis::cmd("UNLINK").arg(&keys).query_async(&mut conn).await
            })
            .await
    }

    /// The cached order, if any.
    pub async fn order(&self, id: Uuid) -> Result<Option<Cached>, CacheError> {
        self.get(self.order_key(id)).await
    }

    /// The cached catalog item, if any.
    pub async fn item(&self, sku: &str) -> Result<Option<Cached>, CacheError> {
        self.get(self.item_key(sku)).await
    }

    async fn get(&self, key: String) -> Result<Option<Cached>, CacheError> {
        let reads = self.reads.get_or_init(|| Reads::start(self.link.clone()));
        let values = reads.fields(key.clone()).await?;
        // An owned entry whose signature does not verify is not served:
        // PostgreSQL answers instead.
        Ok(cached(values).filter(|entry| self.owner_verifies(&key, entry)))
    }

    /// The generation of the epoch this writer knows: documents built from
    /// reads that start now are written under it. No I/O.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// Learns the cache's epoch (creating it when missing) and answers the
    /// generation documents built from now on are written under.
    pub async fn learn_generation(&self) -> Result<u64, CacheError> {
        let key = self.epoch_key();
        let mine = Uuid::new_v4().to_string();
        let candidate = &mine;
        let held: Option<String> = self
            .link
            .bounded(|mut conn| async move {
                redis::cmd("SET")
                    .arg(&key)
                    .arg(candidate)
                    .arg("NX")
                    .arg("GET")
                    .query_async(&mut conn)
                    .await
            })
            .await?;
        let epoch = held.unwrap_or(mine);
        let mut known = self.epoch.lock().unwrap_or_else(|e| e.into_inner());
        if *known != epoch {
            *known = epoch;
            self.generation.fetch_add(1, Ordering::SeqCst);
        }
        Ok(self.generation())
    }

    fn known_epoch(&self) -> String {
        self.epoch.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The key of the cache's epoch.
    pub fn epoch_key(&self) -> String {
        format!("{}epoch", self.namespace)
    }

    /// Writes `entries`, built from reads that started under `generation`,
    /// in one pipelined round trip (two when Redis does not know the script
    /// yet), each under the version guard. Answers how many replaced what
    /// was there, or [`CacheError::Stale`] when the cache was emptied since
    /// `generation` began (then nothing stale was written, and a new
    /// generation begins).
    pub async fn put(&self, generation: u64, entries: &[Entry]) -> Result<usize, CacheError> {
        let outcomes = self.put_each(generation, entries).await?;
        Ok(outcomes.iter().filter(|o| **o == Outcome::Written).count())
    }

    /// [`put`](Self::put), answering what became of each entry, in order.
    pub async fn put_each(
        &self,
        generation: u64,
        entries: &[Entry],
    ) -> Result<Vec<Outcome>, CacheError> {
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        if self.known_epoch().is_empty() {
            self.learn_generation().await?;
        }
        if generation != self.generation() {
            return Err(CacheError::Stale);
        }
        let epoch = self.known_epoch();
        let mut pipe = redis::pipe();
        let epoch_key = self.epoch_key();
        for entry in entries {
            let cmd = pipe
                .cmd("EVALSHA")
                .arg(self.guarded_set.get_hash())
                .arg(2)
                .arg(&entry.key)
                .arg(&epoch_key)
                .arg(TTL_SECONDS)
                .arg(&epoch)
                .arg(entry.versions.len());
            for (stream, version) in &entry.versions {
                cmd.arg(*stream).arg(*version);
            }
            for (field, value) in &entry.fields {
                cmd.arg(*field).arg(value);
            }
        }
        let script = &self.guarded_set;
        let written: Vec<i64> = self
            .link
            .bounded(|mut conn| async move {
                match pipe.query_async(&mut conn).await {
                    Err(e) if e.kind() == ErrorKind::NoScriptError => {
                        // A new or restarted Redis: load the script, then resend
                        // (the guard makes a repeated write harmless).
                        script.load_async(&mut conn).await?;
                        pipe.query_async(&mut conn).await
                    }
                    other => other,
                }
            })
            .await?;
        if written.contains(&-1) {
            self.learn_generation().await?;
            return Err(CacheError::Stale);
        }
        Ok(written
            .into_iter()
            .map(|w| match w {
                1 => Outcome::Written,
                2 => Outcome::Bodiless,
                _ => Outcome::Superseded,
            })
            .collect())
    }

    /// Whether Redis answers a PING within the timeout.
    pub async fn ping(&self) -> Result<(), CacheError> {
        self.link
            .bounded(
                |mut conn| async move { redis::cmd("PING").query_async::<String>(&mut conn).await },
            )
            .await
            .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_namespace_is_the_database_name() {
        assert_eq!(
            namespace_for("postgres://postgres@127.0.0.1:15432/commerce"),
            "commerce:"
        );
        assert_eq!(
            namespace_for("postgres://u@h/t1a2b_views?sslmode=disable"),
            "t1a2b_views:"
        );
    }
}
