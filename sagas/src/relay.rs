//! The outbox relay: the recovery path of the outbox. Saga transactions hand
//! what they commit straight to the publisher (`publish`); the relay
//! publishes whatever is still unpublished after a grace period (the
//! hand-off was lost to a crash, a failed produce or a shutdown), in outbox
//! order, then marks it published.
//!
//! A crash between the broker's ack and the mark publishes a message twice;
//! that is safe because every message carries a stable id: processors answer
//! a repeated command id with its recorded outcome, the saga view keeps the
//! newest saga event by sequence, and the command API matches replies by id.
//! Relays of several workers take disjoint rows (`FOR UPDATE SKIP LOCKED`).

use std::time::Duration;

use events::kafka::to_headers;
use events::{KafkaConfig, telemetry};
use futures::future::join_all;
use rdkafka::message::OwnedHeaders;
use rdkafka::producer::{FutureProducer, FutureRecord};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::store::{self, Kind};

/// Messages published per round.
const PER_ROUND: i64 = 1000;
/// How long published rows are kept (they route `Restocked` to its saga).
const KEEP_PUBLISHED: &str = "1 day";
/// How old an unpublished row must be before the relay takes it over from
/// the publisher: long enough that a healthy hand-off has marked it.
const GRACE: &str = "3 seconds";
/// How often the relay looks for rows the hand-off left behind.
const POLL: Duration = Duration::from_millis(500);

#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error("saga database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("publishing to kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error("an outbox row {id} cannot be published: {reason}")]
    Unpublishable { id: i64, reason: String },
}

pub async fn run(
    pool: PgPool,
    producer: FutureProducer,
    kafka: KafkaConfig,
    shutdown: CancellationToken,
) {
    let mut rounds: u64 = 0;
    loop {
        match publish_round(&pool, &producer, &kafka).await {
            Ok(n) if n as i64 == PER_ROUND => continue,
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "relaying the outbox failed"),
        }
        rounds += 1;
        if rounds.is_multiple_of(10_000) {
            prune(&pool).await;
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(POLL) => {}
        }
    }
}

/// The topic an outbox message goes to, and its headers: the CloudEvents
/// headers of an event, the trace context of a command.
pub fn destination(
    kafka: &KafkaConfig,
    stream: events::AggregateType,
    kind: Kind,
    meta: Option<&events::EventMeta>,
    payload: &[u8],
) -> Result<(String, Option<OwnedHeaders>), String> {
    let topic = match kind {
        Kind::Command => kafka.commands_topic(stream),
        Kind::Event => kafka.events_topic(stream),
        Kind::Reply => kafka.replies_topic(stream),
    };
    let headers = match meta {
        Some(meta) => Some(to_headers(meta)),
        None if kind == Kind::Command => {
            /// The one field of a command envelope the headers repeat.
            #[derive(serde::Deserialize)]
            struct Traced {
                traceparent: Option<String>,
            }
            let traced: Traced = serde_json::from_slice(payload).map_err(|e| e.to_string())?;
            traced
                .traceparent
                .map(|parent| telemetry::kafka_headers(OwnedHeaders::new(), Some(&parent)))
        }
        None => None,
    };
    Ok((topic, headers))
}

type Row = (i64, String, String, String, Vec<u8>, Option<String>);

/// Publishes up to `PER_ROUND` messages the hand-off left behind; answers how many.
pub async fn publish_round(
    pool: &PgPool,
    producer: &FutureProducer,
    kafka: &KafkaConfig,
) -> Result<usize, RelayError> {
    let mut tx = pool.begin().await?;
    let rows: Vec<Row> = sqlx::query_as(&format!(
        "SELECT o.id, o.topic_stream, o.kind, o.message_key, o.payload, o.meta::text
         FROM outbox_pending p JOIN outbox o ON o.id = p.id
         WHERE p.created_at < now() - interval '{GRACE}'
         ORDER BY p.id LIMIT $1 FOR UPDATE OF p SKIP LOCKED"
    ))
    .bind(PER_ROUND)
    .fetch_all(&mut *tx)
    .await?;
    if rows.is_empty() {
        return Ok(0);
    }
    let mut records = Vec::with_capacity(rows.len());
    for (id, stream, kind, key, payload, meta) in &rows {
        let unpublishable = |reason: String| RelayError::Unpublishable { id: *id, reason };
        let stream = events::AggregateType::parse(stream)
            .ok_or_else(|| unpublishable(format!("unknown stream {stream}")))?;
        let kind =
            Kind::parse(kind).ok_or_else(|| unpublishable(format!("unknown kind {kind}")))?;
        let meta: Option<events::EventMeta> = meta
            .as_deref()
            .map(serde_json::from_str)
            .transpose()
            .map_err(|e| unpublishable(e.to_string()))?;
        let (topic, headers) =
            destination(kafka, stream, kind, meta.as_ref(), payload).map_err(unpublishable)?;
        records.push((topic, key, payload, headers));
    }
    let sends = records.iter().map(|(topic, key, payload, headers)| {
        let mut record = FutureRecord::to(topic).key(key.as_str()).payload(payload);
        if let Some(headers) = headers {
            record = record.headers(headers.clone());
        }
        producer.send(record, Duration::from_secs(10))
    });
    for sent in join_all(sends).await {
        sent.map_err(|(e, _)| e)?;
    }
    let ids: Vec<i64> = rows.iter().map(|row| row.0).collect();
    store::mark_published(&mut *tx, &ids).await?;
    tx.commit().await?;
    metrics::counter!("saga_outbox_published_total", "path" => "relay").increment(ids.len() as u64);
    Ok(ids.len())
}

async fn prune(pool: &PgPool) {
    let pruned = sqlx::query(&format!(
        "DELETE FROM outbox o WHERE o.created_at < now() - interval '{KEEP_PUBLISHED}'
         AND NOT EXISTS (SELECT 1 FROM outbox_pending p WHERE p.id = o.id)"
    ))
    .execute(pool)
    .await;
    if let Err(e) = pruned {
        tracing::warn!(error = %e, "pruning the outbox failed");
    }
}
