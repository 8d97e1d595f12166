//! Replay rebuild: writes synthetic `OrderPlaced` events (1 M in full mode)
//! under a topic prefix of their own, and times the replay CLI's
//! `replay rebuild orders` over them into a fresh views database.
//! [`rebuild_only`] is `bench run --phases rebuild`: that figure alone,
//! beside the baselines it is held against, for repeated measurements.

use std::process::Stdio;
use std::sync::Arc;

use anyhow::Context;
use futures::StreamExt;
use rdkafka::producer::FutureRecord;
use sqlx::migrate::MigrateDatabase;
use tokio::process::Command;
use tokio::time::Instant;

use super::{Ctx, Outcome};
use crate::baselines::{self, kafka, progress};
use crate::config::RunArgs;
use crate::fixtures;
use crate::stats::Measured;

/// Database the rebuild writes (dropped by the next run's clean-up), after
/// `--db-prefix`.
pub const REPLAY_DB: &str = "replay";

pub async fn run(ctx: &Arc<Ctx>) -> Outcome {
    let binary = ctx.args.bin_dir.join("replay");
    if !binary.exists() {
        return Outcome::NotAvailable {
            reason: format!(
                "no replay CLI at {} (build the projections package); this times \
                 `replay rebuild orders` over {} synthetic OrderPlaced events",
                binary.display(),
                events(ctx)
            ),
        };
    }
    progress("replay rebuild");
    // The machine's busy cores say how contended the rebuild was.
    match crate::procstat::watched(rebuild(ctx)).await {
        Ok(m) => Outcome::Measured(m),
        Err(e) => Outcome::NotAvailable {
            reason: format!("{e:#}"),
        },
    }
}

fn events(ctx: &Ctx) -> u64 {
    if ctx.args.quick() { 100_000 } else { 1_000_000 }
}

async fn rebuild(ctx: &Ctx) -> anyhow::Result<Measured> {
    let args = &ctx.args;
    let prefix = format!("{}replay.", args.kafka_args.topic_prefix);
    let kafka = events::KafkaConfig {
        topic_prefix: prefix.clone(),
        ..args.kafka()
    };
    let topic = kafka.events_topic(events::AggregateType::Order);
    kafka.ensure_topics(std::slice::from_ref(&topic)).await?;
    let n = events(ctx);
    write_events(&kafka, &topic, n).await?;
    // The CLI rebuilds next to live views, so the database must exist; a
    // shadow an earlier run left would be resumed, so it starts empty.
    let url = args.own_database_url(REPLAY_DB);
    if sqlx::Postgres::database_exists(&url).await? {
        sqlx::Postgres::force_drop_database(&url).await?;
    }
    projections::db::connect_and_migrate(&args.own_database_url(REPLAY_DB))
        .await
        .context("creating the replay database")?
        .close()
        .await;
    let started = Instant::now();
    let output = Command::new(args.bin_dir.join("replay"))
        .args(["rebuild", "orders"])
        .env("KAFKA_BROKERS", &args.kafka_args.brokers)
        .env("TOPIC_PREFIX", &prefix)
        .env("KAFKA_PARTITIONS", args.kafka_args.partitions.to_string())
        .env("DATABASE_URL", args.own_database_url(REPLAY_DB))
        .env("REDIS_URL", &args.redis_url)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .await
        .context("running replay rebuild orders")?;
    let elapsed = started.elapsed();
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(5).collect();
        anyhow::bail!("replay rebuild orders failed: {}", tail.join(" | "));
    }
    Ok(Measured::new(n, 0, elapsed, None).with_note(format!(
        "`replay rebuild orders` over {n} OrderPlaced events"
    )))
}

/// `--phases rebuild`: the raw consume, raw upsert and naive replay
/// baselines, then the rebuild, printed with its ratios to them and written
/// to `<out_dir>/<date>-rebuild.md`.
pub async fn rebuild_only(args: &RunArgs) -> anyhow::Result<()> {
    let ceilings = baselines::rebuild_ceilings(args).await?;
    let ctx = super::context(args)?;
    let rebuild = match run(&ctx).await {
        Outcome::Measured(m) => m,
        Outcome::NotAvailable { reason } => anyhow::bail!("replay rebuild: {reason}"),
    };
    let text = markdown(&args.invocation, &ceilings, &rebuild);
    std::fs::create_dir_all(&args.out_dir)?;
    let name = format!(
        "{}-rebuild.md",
        chrono::Utc::now().format("%Y-%m-%dT%H%M%SZ")
    );
    std::fs::write(args.out_dir.join(name), &text)?;
    println!("{text}");
    Ok(())
}

fn markdown(invocation: &str, c: &baselines::RebuildCeilings, rebuild: &Measured) -> String {
    let floor = c.kafka_consume.per_second.min(c.pg_upsert.per_second);
    let row = |what: &str, m: &Measured| {
        format!(
            "| {what} | {:.0} /s | {} in {:.2} s | {} |\n",
            m.per_second,
            m.ops,
            m.seconds,
            m.machine_cores
                .map_or("-".to_owned(), |c| format!("{c:.2}"))
        )
    };
    let mut text = format!("# Replay rebuild\n\n`{invocation}`\n\n");
    text.push_str("| figure | rate | ops | machine busy cores |\n|---|---|---|---|\n");
    text.push_str(&row("raw consume", &c.kafka_consume));
    text.push_str(&row("raw batched upsert", &c.pg_upsert));
    text.push_str(&row("naive per-event replay", &c.naive_replay));
    text.push_str(&row("replay rebuild orders", rebuild));
    text.push_str(&format!(
        "\nrebuild / min(raw consume, raw upsert) = {:.0} / {floor:.0} = **{:.2}** (target 0.7)  \n\
         rebuild / naive = {:.0} / {:.0} = **{:.1}x** (target 100x)\n",
        rebuild.per_second,
        rebuild.per_second / floor.max(1e-9),
        rebuild.per_second,
        c.naive_replay.per_second,
        rebuild.per_second / c.naive_replay.per_second.max(1e-9),
    ));
    text
}

/// `n` distinct orders' `OrderPlaced`, each with its own envelope headers.
async fn write_events(kafka: &events::KafkaConfig, topic: &str, n: u64) -> anyhow::Result<()> {
    let producer = kafka::producer(kafka)?;
    let template = fixtures::order_placed();
    let payload = serde_json::to_vec(&template.payload)?;
    let failed = futures::stream::iter(0..n)
        .map(|_| {
            let id = events::new_id();
            let meta = events::EventMeta {
                event_id: events::new_id(),
                aggregate_id: id.to_string(),
                correlation_id: id,
                ..template.meta.clone()
            };
            let (producer, payload) = (&producer, &payload);
            async move {
                let key = meta.aggregate_id.clone();
                let record = FutureRecord::to(topic)
                    .key(&key)
                    .payload(payload.as_slice())
                    .headers(events::kafka::to_headers(&meta));
                producer
                    .send(record, std::time::Duration::from_secs(30))
                    .await
                    .is_err()
            }
        })
        .buffer_unordered(10_000)
        .filter(|failed| futures::future::ready(*failed))
        .count()
        .await;
    anyhow::ensure!(
        failed == 0,
        "{failed} of {n} synthetic events were not written"
    );
    Ok(())
}
