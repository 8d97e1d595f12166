//! The projector loop: fetch a batch, apply it and its positions in one
//! PostgreSQL transaction, then tell Kafka how far we got (a hint only).

use std::collections::HashMap;
use std::time::Duration;

use events::KafkaConfig;
use futures::FutureExt;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::{Offset, TopicPartitionList};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::dispatch::{self, Routes};
use crate::pause::BatchGuard;
use crate::record::Record;
use crate::refresh::{Refresher, Touched};

const MAX_BATCH: usize = 1000;
/// How often cache writes that failed are retried while no batch arrives.
const CACHE_RETRY_EVERY: Duration = Duration::from_secs(1);

pub fn subscribe(
    kafka: &KafkaConfig,
    group_id: &str,
    topics: &[String],
) -> Result<StreamConsumer, KafkaError> {
    let consumer: StreamConsumer = kafka.consumer(group_id).create()?;
    let topics: Vec<&str> = topics.iter().map(String::as_str).collect();
    consumer.subscribe(&topics)?;
    Ok(consumer)
}

/// Runs until `shutdown`; transient PostgreSQL or Kafka failures are retried,
/// never skipped. After each commit the touched documents go to the cache.
pub async fn run(
    consumer: std::sync::Arc<StreamConsumer>,
    pool: PgPool,
    routes: Routes,
    mut refresher: Refresher,
    shutdown: CancellationToken,
) {
    loop {
        let batch = tokio::select! {
            _ = shutdown.cancelled() => return,
            // Only the wait for a first record is cancelled here, which loses nothing.
            _ = tokio::time::sleep(CACHE_RETRY_EVERY), if refresher.has_pending() => {
                // Under the batch lock too, so a swap never sees it half done.
                if let Ok(guard) = BatchGuard::enter(&pool).await {
                    refresher.refresh(Touched::default()).await;
                    guard.leave().await;
                }
                continue;
            }
            batch = next_batch(&consumer) => batch,
        };
        let records = match batch {
            Ok(records) => records,
            Err(e) => {
                tracing::warn!(error = %e, "kafka consume failed");
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        let mut backoff = Duration::from_millis(50);
        let (touched, guard) = loop {
            match apply(&pool, &routes, records.clone()).await {
                Ok(applied) => break applied,
                Err(e) => {
                    tracing::warn!(error = %e, "applying a batch failed, retrying");
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        };
        commit_hint(&consumer, &records);
        refresher.refresh(touched).await;
        guard.leave().await;
    }
}

/// Waits for one record, then takes whatever else is already buffered.
async fn next_batch(consumer: &StreamConsumer) -> Result<Vec<Record>, KafkaError> {
    let first = consumer.recv().await?;
    let mut records = vec![Record::from_message(&first)];
    drop(first);
    while records.len() < MAX_BATCH {
        match consumer.recv().now_or_never() {
            Some(Ok(message)) => records.push(Record::from_message(&message)),
            Some(Err(e)) => return Err(e),
            None => break,
        }
    }
    Ok(records)
}

/// Applies a batch inside a [`BatchGuard`], which the caller keeps until the
/// batch's cache refresh is done, so a swap never interleaves with either.
async fn apply(
    pool: &PgPool,
    routes: &Routes,
    records: Vec<Record>,
) -> Result<(Touched, BatchGuard), sqlx::Error> {
    let guard = BatchGuard::enter(pool).await?;
    let mut tx = pool.begin().await?;
    let (applied, touched) = dispatch::apply_batch(&mut tx, routes, records).await?;
    tx.commit().await?;
    for (set, count) in applied {
        metrics::counter!("projection_events_applied_total", "projection" => set.projection())
            .increment(count as u64);
    }
    Ok((touched, guard))
}

fn commit_hint(consumer: &StreamConsumer, records: &[Record]) {
    let mut next: HashMap<(&str, i32), i64> = HashMap::new();
    for r in records {
        let entry = next.entry((r.topic.as_str(), r.partition)).or_insert(0);
        *entry = (*entry).max(r.offset + 1);
    }
    let mut list = TopicPartitionList::new();
    for ((topic, partition), offset) in next {
        if let Err(e) = list.add_partition_offset(topic, partition, Offset::Offset(offset)) {
            tracing::debug!(error = %e, "building the offset hint failed");
            return;
        }
    }
    if let Err(e) = consumer.commit(&list, CommitMode::Async) {
        tracing::debug!(error = %e, "committing the offset hint failed");
    }
}
