//! `POST /orders`: maximum throughput (closed loop), then fixed rates (open
//! loop), each fixed rate preceded by raw produce at the same rate so the two
//! p99s compare like for like. During the half-load phase a sample of the
//! orders is watched until the query API shows it: the projection lag.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::Instant;
use uuid::Uuid;

use super::{Ctx, Outcome, Paced, metrics, projection};
use crate::baselines::{self, Baselines, kafka, progress};
use crate::fixtures;
use crate::load;
use crate::stats::{Measured, Recorder};

/// Orders remembered for reads and lag samples.
const KEEP_ORDERS: usize = 200_000;

/// A light load every run measures, whatever the maximum: orders per second.
pub const LIGHT_RATE: f64 = 250.0;

/// Lag samples per second during the half-load phase.
const LAG_SAMPLES_PER_SECOND: f64 = 20.0;

/// Places order number `i` as customer `i`; the order id on 201 or 200.
pub async fn place(ctx: &Ctx, i: u64) -> Option<Uuid> {
    placed(ctx, i).await.map(|(id, _)| id)
}

/// `POST /orders` as customer `i`: the order's id and the answer's
/// consistency token, when it was placed.
async fn placed(ctx: &Ctx, i: u64) -> Option<(Uuid, String)> {
    let response = ctx
        .http
        .post(format!("{}/orders", ctx.args.command_url))
        .bearer_auth(ctx.tokens.customer(i as usize))
        .header("Idempotency-Key", Uuid::new_v4().to_string())
        .header("content-type", "application/json")
        .body(fixtures::order_request(i))
        .send()
        .await
        .ok()?;
    let status = response.status().as_u16();
    ctx.count_status(status);
    if status != 201 && status != 200 {
        return None;
    }
    let body: serde_json::Value = response.json().await.ok()?;
    let id: Uuid = body["order_id"].as_str()?.parse().ok()?;
    let token = body["consistency_token"].as_str()?.to_owned();
    if let Ok(mut orders) = ctx.orders.lock()
        && orders.len() < KEEP_ORDERS
    {
        orders.push((id, i as usize % fixtures::CUSTOMERS));
    }
    Some((id, token))
}

pub async fn run(
    ctx: &Arc<Ctx>,
    _baselines: &Baselines,
) -> anyhow::Result<(Measured, Vec<Paced>, Outcome)> {
    let args = &ctx.args;
    let services = args.services.clone();
    progress("commands: warm-up");
    let c = ctx.clone();
    load::closed_loop(
        args.concurrency,
        Duration::ZERO,
        Duration::from_secs(2),
        &[],
        move |i| {
            let c = c.clone();
            async move { place(&c, i).await.is_some() }
        },
    )
    .await;
    ctx.take_statuses();

    progress("commands: max throughput (closed loop)");
    let before = metrics::scrape(&ctx.http, &args.command_url).await;
    let c = ctx.clone();
    let max = load::closed_loop(
        args.concurrency,
        Duration::from_secs(1),
        args.phase() * 2,
        &services,
        move |i| {
            let c = c.clone();
            async move { place(&c, i).await.is_some() }
        },
    )
    .await;
    let after = metrics::scrape(&ctx.http, &args.command_url).await;
    let max = max.with_note(format!(
        "{} concurrent requests; {}; {}",
        args.concurrency,
        ctx.take_statuses(),
        metrics::processor_summary(&before, &after)
    ));

    // Fractions of the maximum, and one fixed light load (issue 11's 250/s).
    let fractions: &[f64] = if args.quick() {
        &[0.5]
    } else {
        &[0.25, 0.5, 0.75]
    };
    let mut rates: Vec<(f64, f64)> = vec![(LIGHT_RATE, 0.0)];
    rates.extend(
        fractions
            .iter()
            .map(|&fraction| ((max.per_second * fraction).max(1.0).round(), fraction)),
    );
    let mut paced = Vec::new();
    let mut lag = Outcome::NotAvailable {
        reason: "no half-load phase ran".into(),
    };
    for (rate, fraction) in rates {
        // Each rate starts on a quiet machine, its raw produce included: the
        // sagas of the phase before (some 8,000 orders after the closed
        // loop, taking half a minute) were otherwise measured with it.
        progress("commands: waiting for the sagas of the phase before to settle");
        super::settle(ctx).await;
        progress(&format!("commands: raw produce at {rate}/s"));
        let raw_produce =
            kafka::produce_paced(&args.kafka(), &baselines::topic(args), rate, args.phase())
                .await?;
        progress(&format!("commands: open loop at {rate}/s"));
        let watch = (fraction == 0.5).then(LagWatch::default);
        let (before, projector_before) = metrics::scrape_command_and_projector(ctx).await;
        let command = paced_orders(ctx, rate, args.phase(), watch.clone()).await;
        let (after, projector_after) = metrics::scrape_command_and_projector(ctx).await;
        let command = command.with_note(format!(
            "{}; {}",
            ctx.take_statuses(),
            metrics::processor_summary(&before, &after)
        ));
        if let Some(watch) = watch {
            let projector = metrics::projector_summary(&projector_before, &projector_after);
            lag = match watch.finish(rate, args.phase()).await {
                Outcome::Measured(m) => {
                    let note = format!("{}; {projector}", m.note.as_deref().unwrap_or_default());
                    Outcome::Measured(m.with_note(note))
                }
                not_available => not_available,
            };
        }
        paced.push(Paced {
            rate,
            command,
            raw_produce,
        });
    }
    Ok((max, paced, lag))
}

/// `POST /orders` at `rate` for `phase`, open loop; `watch` follows a
/// sample of them until the query API serves them.
pub(super) async fn paced_orders(
    ctx: &Arc<Ctx>,
    rate: f64,
    phase: Duration,
    watch: Option<LagWatch>,
) -> Measured {
    let sample_every = (rate / LAG_SAMPLES_PER_SECOND).ceil().max(1.0) as u64;
    let c = ctx.clone();
    load::open_loop(rate, phase, 4096, &ctx.args.services, move |i| {
        let (c, watch) = (c.clone(), watch.clone());
        async move {
            let Some((id, token)) = placed(&c, i).await else {
                return false;
            };
            if let Some(watch) = watch
                && i % sample_every == 0
            {
                watch.spawn(c.clone(), id, token, i as usize, Instant::now());
            }
            true
        }
    })
    .await
}

/// Orders watched from their 201 until the query API serves them.
#[derive(Clone, Default)]
pub(super) struct LagWatch {
    recorder: Recorder,
    tasks: Arc<Mutex<Vec<JoinHandle<bool>>>>,
}

impl LagWatch {
    fn spawn(&self, ctx: Arc<Ctx>, id: Uuid, token: String, customer: usize, acked: Instant) {
        let recorder = self.recorder.clone();
        let task = tokio::spawn(async move {
            let seen = projection::visible(&ctx, id, &token, customer).await;
            if seen {
                recorder.record(acked.elapsed());
            }
            seen
        });
        if let Ok(mut tasks) = self.tasks.lock() {
            tasks.push(task);
        }
    }

    pub(super) async fn finish(self, rate: f64, phase: Duration) -> Outcome {
        let tasks = self
            .tasks
            .lock()
            .map(|mut t| std::mem::take(&mut *t))
            .unwrap_or_default();
        let results = futures::future::join_all(tasks).await;
        let seen = results.iter().filter(|r| matches!(r, Ok(true))).count() as u64;
        let missed = results.len() as u64 - seen;
        let h = self.recorder.snapshot();
        if seen == 0 {
            return Outcome::NotAvailable {
                reason: format!("none of {missed} sampled orders became visible"),
            };
        }
        let mut m = Measured::new(seen, missed, phase, Some(&h));
        m.offered_rate = Some(rate);
        let m = m.with_note(format!(
            "201 answer to the 200 of GET /orders/{{id}} with the answer's consistency \
             token (the query API holds the read until its views have the order), \
             {LAG_SAMPLES_PER_SECOND} sampled orders/s while placing {rate}/s; {missed} \
             not visible in time"
        ));
        Outcome::Measured(m)
    }
}
