//! Raw baselines, measured at the start of every run on the same machine:
//! what the building blocks can do on their own, so each system figure can be
//! read as a fraction of its ceiling rather than as an absolute number.

pub mod http;
pub mod json;
pub mod kafka;
pub mod naive;
pub mod postgres;
pub mod redis;

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::RunArgs;
use crate::procstat::watched;
use crate::stats::Measured;

/// Database of the PostgreSQL baselines (dropped and recreated each run),
/// after `--db-prefix`.
pub const DATABASE: &str = "baseline";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Baselines {
    /// Records produced as fast as possible (rate; latency under saturation).
    pub kafka_produce: Measured,
    /// Send-to-ack latency at a paced rate well under the maximum.
    pub kafka_produce_paced: Measured,
    pub kafka_consume: Measured,
    /// Rows per second, batched upserts into a view-shaped table.
    pub pg_upsert: Measured,
    pub pg_point_read: Measured,
    pub redis_get: Measured,
    pub http_noop: Measured,
    pub json_round_trip: Measured,
    /// Events per second of a per-event replay (a transaction per event).
    pub naive_replay: Measured,
}

/// The topic the Kafka baselines write (the run's prefix keeps it apart).
pub fn topic(args: &RunArgs) -> String {
    format!("{}baseline.raw", args.kafka_args.topic_prefix)
}

pub async fn run(args: &RunArgs) -> anyhow::Result<Baselines> {
    let kafka = args.kafka();
    let topic = topic(args);
    kafka.ensure_topics(std::slice::from_ref(&topic)).await?;
    let n = args.records();
    let phase = args.phase();
    let concurrency = 32;

    progress("kafka produce (max)");
    let kafka_produce = watched(kafka::produce_max(&kafka, &topic, n)).await?;
    progress("kafka produce (paced, 1,000/s)");
    let kafka_produce_paced = kafka::produce_paced(&kafka, &topic, 1000.0, phase).await?;
    progress("kafka consume");
    let kafka_consume = watched(kafka::consume(&kafka, &topic, n)).await?;

    progress("postgresql batched upsert");
    let pool = postgres::fresh(&args.own_database_url(DATABASE)).await?;
    let ids: Arc<Vec<uuid::Uuid>> = Arc::new((0..n).map(|_| uuid::Uuid::now_v7()).collect());
    let pg_upsert = watched(postgres::upsert(&pool, &ids)).await?;
    progress("postgresql point reads");
    let pg_point_read = postgres::point_reads(&pool, ids, concurrency, phase).await;
    progress("naive per-event replay");
    let events = if args.quick() { 1_000 } else { 3_000 };
    let naive_replay = watched(naive::replay(&kafka, &topic, &pool, events)).await?;
    pool.close().await;

    progress("redis GET");
    let redis_get = redis::get(&args.redis_url, concurrency, phase).await?;
    progress("axum without I/O");
    let http_noop = http::noop(concurrency, phase).await?;
    progress("serde_json envelope round trip");
    let json_round_trip = watched(json::round_trip(Duration::from_secs(2))).await?;
    Ok(Baselines {
        kafka_produce,
        kafka_produce_paced,
        kafka_consume,
        pg_upsert,
        pg_point_read,
        redis_get,
        http_noop,
        json_round_trip,
        naive_replay,
    })
}

/// What the replay rebuild is held against: raw consume, raw batched
/// upsert and the naive per-event replay, measured as [`run`] does.
pub struct RebuildCeilings {
    pub kafka_consume: Measured,
    pub pg_upsert: Measured,
    pub naive_replay: Measured,
}

/// Only the baselines of [`RebuildCeilings`] (`bench run --phases rebuild`).
pub async fn rebuild_ceilings(args: &RunArgs) -> anyhow::Result<RebuildCeilings> {
    let kafka = args.kafka();
    let topic = topic(args);
    kafka.ensure_topics(std::slice::from_ref(&topic)).await?;
    let n = args.records();
    progress("kafka produce (max)");
    kafka::produce_max(&kafka, &topic, n).await?;
    progress("kafka consume");
    let kafka_consume = watched(kafka::consume(&kafka, &topic, n)).await?;
    progress("postgresql batched upsert");
    let pool = postgres::fresh(&args.own_database_url(DATABASE)).await?;
    let ids: Vec<uuid::Uuid> = (0..n).map(|_| uuid::Uuid::now_v7()).collect();
    let pg_upsert = watched(postgres::upsert(&pool, &ids)).await?;
    progress("naive per-event replay");
    let events = if args.quick() { 1_000 } else { 3_000 };
    let naive_replay = watched(naive::replay(&kafka, &topic, &pool, events)).await?;
    pool.close().await;
    Ok(RebuildCeilings {
        kafka_consume,
        pg_upsert,
        naive_replay,
    })
}

pub fn progress(what: &str) {
    eprintln!("bench: {} {what}", chrono::Utc::now().format("%H:%M:%S"));
}
