//! Publishes what a saga transaction just committed to the outbox, straight
//! after the commit: the worker and the timer hand the rows they inserted to
//! this task over a bounded channel, it produces them to Kafka in the order
//! the transaction wrote them, and once the broker acknowledged them it marks
//! the rows published. A saga hop is then one PostgreSQL commit and one
//! produce, with no poll in between.
//!
//! The relay (`relay`) stays the single recovery path: a row whose hand-off
//! was lost (a crash after the commit, a failed produce, a full shutdown)
//! stays unpublished and the relay publishes it once it is older than its
//! grace period. A crash between the ack and the mark publishes a row twice,
//! which every consumer tolerates (every message has a stable id).

use std::time::{Duration, Instant};

use events::KafkaConfig;
use futures::future::join_all;
use rdkafka::producer::{FutureProducer, FutureRecord};
use sqlx::PgPool;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::relay::destination;
use crate::store::{self, OutboxMessage};

/// Committed batches waiting for the publisher; a worker that gets ahead of
/// Kafka waits here instead of queueing without bound.
const PENDING_BATCHES: usize = 256;
/// Batches produced together in one round.
const PER_ROUND: usize = 64;
/// How long acknowledged rows may wait to be marked published. No message
/// waits for its mark (the relay leaves a row alone for its grace period,
/// seconds), so the marks of the rounds in this window share one statement:
/// at a few orders a second each round was a statement of its own, about
/// one per saga hop.
const MARK_EVERY: Duration = Duration::from_millis(100);

/// Rows a transaction inserted into the outbox, in the order it wrote them.
pub struct Committed {
    pub at: Instant,
    pub rows: Vec<(i64, OutboxMessage)>,
}

/// The sending side, cloned into every loop that writes the outbox.
#[derive(Clone)]
pub struct Handoff {
    sender: mpsc::Sender<Committed>,
}

impl Handoff {
    /// Hands rows committed just now to the publisher. Called only after the
    /// commit; if the publisher is gone the relay publishes them later.
    pub async fn committed(&self, rows: Vec<(i64, OutboxMessage)>) {
        if rows.is_empty() {
            return;
        }
        let committed = Committed {
            at: Instant::now(),
            rows,
        };
        if self.sender.send(committed).await.is_err() {
            tracing::debug!("the publisher stopped; the relay publishes the rows");
        }
    }
}

/// A hand-off and the receiving end for [`run`].
pub fn channel() -> (Handoff, mpsc::Receiver<Committed>) {
    let (sender, receiver) = mpsc::channel(PENDING_BATCHES);
    (Handoff { sender }, receiver)
}

/// Publishes handed-off rows until `shutdown` or until every sender is gone.
pub async fn run(
    mut receiver: mpsc::Receiver<Committed>,
    producer: FutureProducer,
    kafka: KafkaConfig,
    pool: PgPool,
    shutdown: CancellationToken,
) {
    let (marks, marked) = mpsc::channel(PENDING_BATCHES);
    let marker = tokio::spawn(mark_published(marked, pool));
    loop {
        let first = tokio::select! {
            _ = shutdown.cancelled() => break,
            first = receiver.recv() => match first {
                Some(first) => first,
                None => break,
            },
        };
        let mut round = vec![first];
        while round.len() < PER_ROUND {
            match receiver.try_recv() {
                Ok(more) => round.push(more),
                Err(_) => break,
            }
        }
        let published = publish(&producer, &kafka, &round).await;
        if !published.is_empty() && marks.send(published).await.is_err() {
            break;
        }
    }
    drop(marks);
    drop(marker.await);
}

/// Produces every row of `round`; answers the ids the broker acknowledged.
async fn publish(producer: &FutureProducer, kafka: &KafkaConfig, round: &[Committed]) -> Vec<i64> {
    let mut acked = Vec::new();
    let sends = round.iter().map(|committed| async move {
        let sent = join_all(committed.rows.iter().map(|(id, message)| async move {
            let (topic, headers) = destination(
                kafka,
                message.stream,
                message.kind,
                message.meta.as_ref(),
                &message.payload,
            )?;
            let mut record = FutureRecord::to(&topic)
                .key(message.key.as_str())
                .payload(&message.payload);
            if let Some(headers) = headers {
                record = record.headers(headers);
            }
            match producer.send(record, Duration::from_secs(10)).await {
                Ok(_) => Ok(*id),
                Err((e, _)) => Err(e.to_string()),
            }
        }))
        .await;
        (committed.at, sent)
    });
    for (at, sent) in join_all(sends).await {
        let before = acked.len();
        for result in sent {
            match result {
                Ok(id) => acked.push(id),
                Err(error) => {
                    tracing::warn!(%error, "publishing a saga message failed; the relay retries it");
                }
            }
        }
        metrics::histogram!("saga_outbox_handoff_seconds").record(at.elapsed().as_secs_f64());
        metrics::counter!("saga_outbox_published_total", "path" => "handoff")
            .increment((acked.len() - before) as u64);
    }
    acked
}

/// Marks acknowledged rows published, many rounds per statement and at
/// most one statement per `MARK_EVERY`.
async fn mark_published(mut marked: mpsc::Receiver<Vec<i64>>, pool: PgPool) {
    let mut last = tokio::time::Instant::now() - MARK_EVERY;
    while let Some(mut ids) = marked.recv().await {
        tokio::time::sleep_until(last + MARK_EVERY).await;
        last = tokio::time::Instant::now();
        while let Ok(more) = marked.try_recv() {
            ids.extend(more);
        }
        let done = store::mark_published(&pool, &ids).await;
        // Unmarked rows are published again by the relay: a duplicate, not a loss.
        if let Err(e) = done {
            tracing::warn!(error = %e, "marking published saga messages failed");
        }
    }
}
