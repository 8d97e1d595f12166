//! A naive per-event replay: read each event from Kafka, decode it, and
//! apply it in its own PostgreSQL transaction (one row upsert plus the
//! position), the way a first rebuild tool would. The replay rebuild is held
//! against this (it should be at least 100 times faster).

use std::time::Duration;

use anyhow::Context;
use events::KafkaConfig;
use events::domain::OrderEvent;
use events::message::EventPayload;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Message, Offset, TopicPartitionList};
use sqlx::PgPool;

use crate::stats::Measured;

const POSITIONS: &str = "CREATE TABLE IF NOT EXISTS naive_positions (
    topic text NOT NULL, partition integer NOT NULL, next_offset bigint NOT NULL,
    PRIMARY KEY (topic, partition))";

/// Reads `n` records of partition 0 of `topic` and applies them one by one.
pub async fn replay(
    kafka: &KafkaConfig,
    topic: &str,
    pool: &PgPool,
    n: u64,
) -> anyhow::Result<Measured> {
    sqlx::raw_sql(POSITIONS).execute(pool).await?;
    let records = read(kafka, topic, n).await?;
    let started = std::time::Instant::now();
    for (offset, headers, payload) in &records {
        let meta = events::kafka::from_headers(headers)?;
        let event = OrderEvent::decode(&meta, payload)?;
        let OrderEvent::OrderPlaced {
            customer_id,
            currency,
            lines,
            ..
        } = event
        else {
            continue;
        };
        let mut tx = pool.begin().await?;
        sqlx::query(
            "INSERT INTO orders (order_id, customer_id, status, currency, lines, version,
                                 placed_at, updated_at)
             VALUES ($1, $2, 'pending', $3, $4, $5, $6, $6)
             ON CONFLICT (order_id) DO UPDATE SET status = EXCLUDED.status,
               version = EXCLUDED.version WHERE orders.version < EXCLUDED.version",
        )
        .bind(uuid::Uuid::now_v7())
        .bind(customer_id.to_string())
        .bind(currency.code())
        .bind(serde_json::to_value(&lines)?)
        .bind(meta.sequence as i64)
        .bind(meta.occurred_at)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO naive_positions VALUES ($1, 0, $2)
             ON CONFLICT (topic, partition) DO UPDATE SET next_offset = EXCLUDED.next_offset",
        )
        .bind(topic)
        .bind(offset + 1)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
    }
    Ok(
        Measured::new(records.len() as u64, 0, started.elapsed(), None).with_note(
            "one transaction per event: decode, upsert one row, store the position".to_owned(),
        ),
    )
}

type Raw = (i64, rdkafka::message::OwnedHeaders, Vec<u8>);

async fn read(kafka: &KafkaConfig, topic: &str, n: u64) -> anyhow::Result<Vec<Raw>> {
    let config = kafka.consumer(&format!("bench-naive-{}", uuid::Uuid::new_v4()));
    let topic = topic.to_owned();
    tokio::task::spawn_blocking(move || -> anyhow::Result<Vec<Raw>> {
        let consumer: BaseConsumer = config.create().context("creating the consumer")?;
        let mut list = TopicPartitionList::new();
        list.add_partition_offset(&topic, 0, Offset::Beginning)?;
        consumer.assign(&list)?;
        let mut out = Vec::with_capacity(n as usize);
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while (out.len() as u64) < n && std::time::Instant::now() < deadline {
            if let Some(message) = consumer.poll(Duration::from_millis(100)) {
                let message = message?.detach();
                let headers = message
                    .headers()
                    .context("a record without headers")?
                    .clone();
                let payload = message.payload().unwrap_or_default().to_vec();
                out.push((message.offset(), headers, payload));
            }
        }
        Ok(out)
    })
    .await?
}
