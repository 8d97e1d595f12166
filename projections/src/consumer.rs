//! The projector loop: fetch a batch, apply it and its positions in one
//! PostgreSQL transaction, then tell Kafka how far we got (a hint only).

use std::time::Duration;

use events::KafkaConfig;
use events::record;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
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
            batch = record::next_batch(&consumer, MAX_BATCH) => batch,
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
        record::commit_hint(&consumer, &records);
        refresher.refresh(touched).await;
        guard.leave().await;
    }
}

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
