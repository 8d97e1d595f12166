//! The connection to Redis: one pipelined connection shared by every call,
//! each call bounded by the cache's timeout.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client, RedisError};

use super::CacheError;

/// Calls in a row that may time out before the connection is replaced.
const TIMEOUTS_BEFORE_RECONNECT: u32 = 3;

/// The one connection and its upkeep, held by the cache and by its reads task.
pub(super) struct Link {
    client: Client,
    pub(super) timeout: Duration,
    /// The shared connection; every call clones it (a handle to one
    /// pipelined connection). A plain mutex: it is never held across an await.
    connection: std::sync::Mutex<Option<MultiplexedConnection>>,
    /// Lets one caller at a time connect, so a reconnect is not a stampede.
    connecting: tokio::sync::Mutex<()>,
    /// Calls in a row that ran out of time; a few mean the connection is stuck.
    timeouts: AtomicU32,
}

impl Link {
    /// Connects lazily, on the first call.
    pub(super) fn new(url: &str, timeout: Duration) -> Result<Link, RedisError> {
        Ok(Link {
            client: Client::open(url)?,
            timeout,
            connection: std::sync::Mutex::new(None),
            connecting: tokio::sync::Mutex::new(()),
            timeouts: AtomicU32::new(0),
        })
    }

    /// Runs `call` on a connection, within the timeout. When the connection
    /// itself failed it is dropped, so the next call reconnects; a call that
    /// only ran out of time leaves it alone (the other calls pipelined on
    /// it are fine, and a reconnect would cost them all) unless several in
    /// a row did.
    pub(super) async fn bounded<T, F, Fut>(&self, call: F) -> Result<T, CacheError>
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
