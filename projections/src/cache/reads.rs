//! Reads of entries, pipelined: concurrent readers share one write to
//! Redis and one answer back.
//!
//! The shared connection writes and flushes each command as it comes: a
//! reader's task wakes the connection's task, which runs next on the same
//! worker and finds that one command waiting. Under load that is a `write`
//! and a `read` of Redis (and of this process) for every few reads. Here
//! the readers queue their keys for one task, which yields once when woken,
//! so the readers ready in the same round queue theirs too, and then sends
//! every key waiting as one pipeline. At most [`IN_FLIGHT`] pipelines are
//! out at a time, and keys that arrive while that many are out go together
//! in the next: a backlog (after a stall of the machine) drains in a few
//! large pipelines, and an idle cache sends a pipeline of one key at once.

use std::sync::Arc;

use redis::RedisError;
use tokio::sync::{Semaphore, mpsc, oneshot};

use super::CacheError;
use super::connection::Link;
use super::entries::CACHED_STREAMS;

/// The most keys in one pipeline.
const MAX_PIPELINE: usize = 128;

/// The most pipelines sent and not yet answered.
const IN_FLIGHT: usize = 4;

/// The fields of an entry as read: `body`, `owner`, `sig`, then the cached
/// streams' versions.
pub(super) type Fields = Vec<Option<String>>;

/// One reader's key and where its fields go.
struct Read {
    key: String,
    answer: oneshot::Sender<Result<Fields, CacheError>>,
}

/// The queue of the task that pipelines reads.
pub(super) struct Reads {
    queue: mpsc::UnboundedSender<Read>,
    link: Arc<Link>,
}

impl Reads {
    /// Starts the task on the current runtime; it ends when `Reads` is dropped.
    pub(super) fn start(link: Arc<Link>) -> Reads {
        let (queue, waiting) = mpsc::unbounded_channel();
        tokio::spawn(pipeline(link.clone(), waiting));
        Reads { queue, link }
    }

    /// The fields of the entry `key`, within the cache's timeout. When the
    /// task is gone (the runtime that started it has ended: a cache used
    /// from another), the read goes alone on the connection.
    pub(super) async fn fields(&self, key: String) -> Result<Fields, CacheError> {
        let (answer, fields) = oneshot::channel();
        if let Err(mpsc::error::SendError(read)) = self.queue.send(Read { key, answer }) {
            return self
                .link
                .bounded(|mut conn| async move { hmget(&read.key).query_async(&mut conn).await })
                .await;
        }
        let timeout = self.link.timeout;
        match tokio::time::timeout(timeout, fields).await {
            Ok(Ok(fields)) => fields,
            Ok(Err(_)) => Err(CacheError::Redis(RedisError::from((
                redis::ErrorKind::IoError,
                "a pipelined read was dropped unanswered",
            )))),
            Err(_) => Err(CacheError::Timeout(timeout)),
        }
    }
}

/// Sends the queued reads, at most [`IN_FLIGHT`] pipelines at a time, until
/// the queue closes.
async fn pipeline(link: Arc<Link>, mut waiting: mpsc::UnboundedReceiver<Read>) {
    let slots = Arc::new(Semaphore::new(IN_FLIGHT));
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let mut batch = Vec::with_capacity(MAX_PIPELINE);
        if waiting.recv_many(&mut batch, MAX_PIPELINE).await == 0 {
            return;
        }
        // The readers woken with the first queue theirs before it goes.
        tokio::task::yield_now().await;
        while batch.len() < MAX_PIPELINE
            && let Ok(read) = waiting.try_recv()
        {
            batch.push(read);
        }
        // Readers that gave up (their timeout, a closed request) need no answer.
        batch.retain(|read| !read.answer.is_closed());
        if batch.is_empty() {
            continue;
        }
        let link = link.clone();
        tokio::spawn(async move {
            send(&link, batch).await;
            drop(slot);
        });
    }
}

/// Sends one pipeline and hands each reader its answer.
async fn send(link: &Link, batch: Vec<Read>) {
    metrics::counter!("cache_read_pipelines_total").increment(1);
    let mut pipe = redis::pipe();
    for read in &batch {
        pipe.add_command(hmget(&read.key));
    }
    let answers: Result<Vec<Fields>, CacheError> = link
        .bounded(|mut conn| async move { pipe.query_async(&mut conn).await })
        .await;
    match answers {
        Ok(answers) => {
            for (read, fields) in batch.into_iter().zip(answers) {
                let _ = read.answer.send(Ok(fields));
            }
        }
        Err(e) => {
            for read in batch {
                let _ = read.answer.send(Err(copy(&e)));
            }
        }
    }
}

/// The pipeline's error, for each of its readers.
fn copy(e: &CacheError) -> CacheError {
    match e {
        CacheError::Timeout(after) => CacheError::Timeout(*after),
        CacheError::Stale => CacheError::Stale,
        CacheError::Redis(e) => CacheError::Redis(RedisError::from((
            e.kind(),
            "a pipelined read failed",
            e.to_string(),
        ))),
    }
}

/// The read of one entry's fields (see [`Fields`]).
fn hmget(key: &str) -> redis::Cmd {
    let mut cmd = redis::cmd("HMGET");
    cmd.arg(key).arg("body").arg("owner").arg("sig");
    for stream in CACHED_STREAMS {
        cmd.arg(stream.as_str());
    }
    cmd
}
