//! The Redis cache of the hot views: derived data only, never a source of
//! truth. The projector writes a document after the PostgreSQL commit that
//! produced it; readers try the cache first and fall back to PostgreSQL.
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
//! Keys carry a namespace (the views database's name), so deployments and
//! tests sharing one Redis never see each other's entries. Every call is
//! bounded by a timeout; a broken connection is dropped and re-established
//! on the next call.

use std::sync::atomic::{AtomicU32, Ordering};

use events::auth::signing::SigningKey;
use std::time::Duration;

use events::AggregateType;
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client, ErrorKind, RedisError, Script};
use uuid::Uuid;

use crate::documents::{ItemDocument, OrderDocument};

/// How long an entry lives without being rewritten; bounds what a lost
/// write (a timeout the projector could not retry) can leave behind.
const TTL_SECONDS: u64 = 24 * 60 * 60;

/// Writes the document in ARGV under the componentwise guard (see the
/// module comment). KEYS[1] is the entry; ARGV[1] the TTL in seconds;
/// ARGV[2] the number n of streams; ARGV[3 .. 2+2n] stream/version pairs;
/// the rest the document's field/value pairs. Answers 1 when written, 0
/// when dropped as not newer, 2 when the entry lost its body.
const GUARDED_SET: &str = r"
local n = tonumber(ARGV[2])
local exists = redis.call('EXISTS', KEYS[1]) == 1
local has_body = exists and redis.call('HEXISTS', KEYS[1], 'body') == 1
local newer, older = false, false
local merged, top_sum, sum = {}, 0, 0
for i = 0, n - 1 do
  local stream = ARGV[3 + 2 * i]
  local version = tonumber(ARGV[4 + 2 * i])
  local current = tonumber(redis.call('HGET', KEYS[1], stream)) or 0
  if version > current then newer = true end
  if version < current then older = true end
  local top = math.max(version, current)
  merged[#merged + 1] = stream
  merged[#merged + 1] = top
  top_sum = top_sum + top
  sum = sum + version
end
if not exists or (not older and (newer or not has_body)) then
  redis.call('DEL', KEYS[1])
  redis.call('HSET', KEYS[1], 'v', sum, unpack(ARGV, 3))
  redis.call('EXPIRE', KEYS[1], ARGV[1])
  return 1
end
if not newer then
  return 0
end
redis.call('HDEL', KEYS[1], 'body', 'owner', 'sig')
redis.call('HSET', KEYS[1], 'v', top_sum, unpack(merged))
redis.call('EXPIRE', KEYS[1], ARGV[1])
return 2
";

#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("redis did not answer within {0:?}")]
    Timeout(Duration),
    #[error("redis failed: {0}")]
    Redis(#[from] RedisError),
}

/// One document ready to be written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub key: String,
    /// The version of every stream the document reflects.
    pub versions: Vec<(&'static str, i64)>,
    pub fields: Vec<(&'static str, String)>,
}

/// A cached document as a reader sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cached {
    pub body: String,
    pub owner: Option<String>,
    /// The HMAC of key, owner and body (see the module documentation).
    pub signature: Option<String>,
    /// The sequence the body reflects of each feeding stream.
    pub versions: Vec<(AggregateType, i64)>,
}

impl Cached {
    /// The sequence of `stream` the body reflects (0 when it has none).
    pub fn version(&self, stream: AggregateType) -> i64 {
        self.versions
            .iter()
            .find(|(s, _)| *s == stream)
            .map_or(0, |(_, v)| *v)
    }
}

/// Key prefix (after the namespace) of order documents.
pub const ORDER_PREFIX: &str = "order:";
/// Key prefix (after the namespace) of catalog item documents.
pub const ITEM_PREFIX: &str = "catalog:";

/// A connection to the cache under one key namespace.
pub struct Cache {
    client: Client,
    guarded_set: Script,
    namespace: String,
    timeout: Duration,
    /// The shared connection; every call clones it (a handle to one
    /// pipelined connection). A plain mutex: it is never held across an await.
    connection: std::sync::Mutex<Option<MultiplexedConnection>>,
    /// Lets one caller at a time connect, so a reconnect is not a stampede.
    connecting: tokio::sync::Mutex<()>,
    /// Calls in a row that ran out of time; a few mean the connection is stuck.
    timeouts: AtomicU32,
    /// Signs owned entries on write and checks them on read; without it,
    /// owned entries are written unsigned and never served.
    signing: Option<SigningKey>,
}

/// Calls in a row that may time out before the connection is replaced.
const TIMEOUTS_BEFORE_RECONNECT: u32 = 3;

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
            client: Client::open(url)?,
            guarded_set: Script::new(GUARDED_SET),
            namespace,
            timeout,
            connection: std::sync::Mutex::new(None),
            connecting: tokio::sync::Mutex::new(()),
            timeouts: AtomicU32::new(0),
            signing: None,
        })
    }

    /// The cache signing (and checking) owned entries with a subkey of `key`.
    pub fn with_signing(mut self, key: &SigningKey) -> Cache {
        self.signing = Some(key.derive("cache entries"));
        self
    }

    /// The fields of an entry `key` that `owner` may read: body, owner and
    /// (with a signing key) their signature.
    pub fn owned_fields(
        &self,
        key: &str,
        body: String,
        owner: String,
    ) -> Vec<(&'static str, String)> {
        let mut fields = Vec::with_capacity(3);
        if let Some(signing) = &self.signing {
            let parts: [&[u8]; 3] = [key.as_bytes(), owner.as_bytes(), body.as_bytes()];
            fields.push(("sig", signing.sign(&parts)));
        }
        fields.push(("body", body));
        fields.push(("owner", owner));
        fields
    }

    /// True when the owner of the entry `key` verifies.
    fn owner_verifies(&self, key: &str, entry: &Cached) -> bool {
        let (Some(owner), Some(signing)) = (&entry.owner, &self.signing) else {
            return entry.owner.is_none();
        };
        let parts: [&[u8]; 3] = [key.as_bytes(), owner.as_bytes(), entry.body.as_bytes()];
        entry
            .signature
            .as_deref()
            .is_some_and(|sig| signing.verify(&parts, sig))
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
        self.bounded(|mut conn| async move {
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
        let key_ref = &key;
        let values: Vec<Option<String>> = self
            .bounded(|mut conn| async move {
                let mut cmd = redis::cmd("HMGET");
                cmd.arg(key_ref).arg("body").arg("owner").arg("sig");
                for stream in CACHED_STREAMS {
                    cmd.arg(stream.as_str());
                }
                cmd.query_async(&mut conn).await
            })
            .await?;
        // An owned entry whose signature does not verify is not served:
        // PostgreSQL answers instead.
        Ok(cached(values).filter(|entry| self.owner_verifies(&key, entry)))
    }

    /// Writes `entries` in one pipelined round trip (two when Redis does not
    /// know the script yet), each under the version guard. Answers how many
    /// replaced what was there.
    pub async fn put(&self, entries: &[Entry]) -> Result<usize, CacheError> {
        if entries.is_empty() {
            return Ok(0);
        }
        let mut pipe = redis::pipe();
        for entry in entries {
            let cmd = pipe
                .cmd("EVALSHA")
                .arg(self.guarded_set.get_hash())
                .arg(1)
                .arg(&entry.key)
                .arg(TTL_SECONDS)
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
        Ok(written.into_iter().filter(|w| *w == 1).count())
    }

    /// Whether Redis answers a PING within the timeout.
    pub async fn ping(&self) -> Result<(), CacheError> {
        self.bounded(
            |mut conn| async move { redis::cmd("PING").query_async::<String>(&mut conn).await },
        )
        .await
        .map(|_| ())
    }

    pub fn order_entry(&self, document: &OrderDocument) -> Result<Entry, serde_json::Error> {
        let key = self.order_key(document.order_id);
        let body = serde_json::to_string(document)?;
        let fields = self.owned_fields(&key, body, document.customer_id.clone());
        Ok(Entry {
            key,
            versions: document
                .versions()
                .iter()
                .map(|(stream, version)| (stream.as_str(), *version))
                .collect(),
            fields,
        })
    }

    pub fn item_entry(&self, document: &ItemDocument) -> Result<Entry, serde_json::Error> {
        Ok(Entry {
            key: self.item_key(&document.sku),
            versions: vec![(AggregateType::CatalogItem.as_str(), document.version)],
            fields: vec![("body", serde_json::to_string(document)?)],
        })
    }

    /// Runs `call` on a connection, within the timeout. When the connection
    /// itself failed it is dropped, so the next call reconnects; a call that
    /// only ran out of time leaves it alone (the other calls pipelined on
    /// it are fine, and a reconnect would cost them all) unless several in
    /// a row did.
    async fn bounded<T, F, Fut>(&self, call: F) -> Result<T, CacheError>
    where
        F: FnOnce(MultiplexedConnection) -> Fut,
        Fut: Future<Output = Result<T, RedisError>>,
    {
        let outcome = tokio::time::timeout(self.timeout, async {
            let conn = self.connection().await?;
            call(conn).await
        })
        .await;
        if outcome.is_err() {
            if self.timeouts.fetch_add(1, Ordering::Relaxed) + 1 >= TIMEOUTS_BEFORE_RECONNECT {
                self.timeouts.store(0, Ordering::Relaxed);
                self.forget_connection();
            }
        } else if self.timeouts.load(Ordering::Relaxed) != 0 {
            self.timeouts.store(0, Ordering::Relaxed);
        }
        match outcome {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => {
                if e.is_io_error()
                    || e.is_connection_dropped()
                    || e.is_connection_refusal()
                    || e.is_timeout()
                {
                    self.forget_connection();
                }
                Err(CacheError::Redis(e))
            }
            Err(_) => Err(CacheError::Timeout(self.timeout)),
        }
    }

    fn shared_connection(&self) -> Option<MultiplexedConnection> {
        self.connection.lock().ok().and_then(|slot| slot.clone())
    }

    fn forget_connection(&self) {
        if let Ok(mut slot) = self.connection.lock() {
            *slot = None;
        }
    }

    async fn connection(&self) -> Result<MultiplexedConnection, RedisError> {
        if let Some(conn) = self.shared_connection() {
            return Ok(conn);
        }
        let _one = self.connecting.lock().await;
        if let Some(conn) = self.shared_connection() {
            return Ok(conn);
        }
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(self.timeout)
            .set_response_timeout(self.timeout);
        let conn = self
            .client
            .get_multiplexed_async_connection_with_config(&config)
            .await?;
        if let Ok(mut slot) = self.connection.lock() {
            *slot = Some(conn.clone());
        }
        Ok(conn)
    }
}

/// The streams whose versions entries carry.
const CACHED_STREAMS: [AggregateType; 4] = [
    AggregateType::Order,
    AggregateType::Payment,
    AggregateType::Shipment,
    AggregateType::CatalogItem,
];

/// An entry read back (`body`, `owner`, `sig`, then the [`CACHED_STREAMS`]' versions),
/// or `None` when absent, without a body, or not written by [`Cache::put`].
fn cached(values: Vec<Option<String>>) -> Option<Cached> {
    let mut values = values.into_iter();
    let body = values.next().flatten()?;
    let owner = values.next().flatten();
    let signature = values.next().flatten();
    let versions = CACHED_STREAMS
        .iter()
        .zip(values)
        .filter_map(|(stream, value)| Some((*stream, value?.parse().ok()?)))
        .collect();
    Some(Cached {
        body,
        owner,
        signature,
        versions,
    })
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

    #[test]
    fn entries_read_back_with_their_versions_and_owner() {
        let some = |v: &str| Some(v.to_owned());
        let values = vec![
            some("{}"),
            some("alice"),
            some("sig"),
            some("3"),
            some("2"),
            None,
            None,
        ];
        let entry = cached(values).unwrap();
        assert_eq!(entry.owner.as_deref(), Some("alice"));
        assert_eq!(
            (
                entry.version(AggregateType::Order),
                entry.version(AggregateType::Payment),
                entry.version(AggregateType::Shipment)
            ),
            (3, 2, 0)
        );
        assert_eq!(cached(vec![None; 7]), None, "absent");
        assert_eq!(
            cached(vec![None, None, None, some("3"), None, None, None]),
            None,
            "no body"
        );
    }
}
