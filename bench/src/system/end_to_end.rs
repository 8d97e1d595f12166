//! End to end: `POST /orders` until the order is `confirmed` (stock
//! reserved, payment captured with `tok_ok`, shipment scheduled, stock
//! committed). Completion is read from the order events on Kafka
//! (`milestones`), so waiting for it puts no load on the services measured;
//! the same events give the time each hop of the saga took. Needs the saga
//! worker; without it a first order never leaves `pending` and both figures
//! say so, after a bounded wait.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use uuid::Uuid;

use super::commands::place;
use super::milestones::{Hop, Milestones};
use super::{Ctx, Outcome, get_order};
use crate::baselines::progress;
use crate::load;

/// Longest one order may take under load before it counts as failed.
const ORDER_LIMIT: Duration = Duration::from_secs(30);

/// The closed-loop and open-loop figures, and the per-hop latencies of both.
pub async fn run(ctx: &Arc<Ctx>) -> (Outcome, Outcome, Vec<Hop>) {
    progress("end to end: does an order reach confirmed?");
    let not_available = |reason: String| {
        let outcome = Outcome::NotAvailable { reason };
        (outcome.clone(), outcome, Vec::new())
    };
    let milestones = match Milestones::start(ctx.args.kafka()).await {
        Ok(milestones) => milestones,
        Err(e) => return not_available(format!("cannot follow the order events: {e:#}")),
    };
    let bound = if ctx.args.quick() {
        Duration::from_secs(10)
    } else {
        Duration::from_secs(30)
    };
    if let Err(reason) = first_order(ctx, &milestones, bound).await {
        return not_available(reason);
    }
    let args = &ctx.args;
    progress("end to end: max completed orders/s (closed loop)");
    let placed = Arc::new(Mutex::new(Vec::new()));
    let (c, m, p) = (ctx.clone(), milestones.clone(), placed.clone());
    let max = load::closed_loop(
        args.concurrency * 2,
        Duration::from_secs(2),
        args.phase() * 2,
        &args.services,
        move |i| {
            let (c, m, p) = (c.clone(), m.clone(), p.clone());
            async move { place_and_confirm(&c, &m, &p, i).await }
        },
    )
    .await;
    let max = max.with_note(format!(
        "{} orders in flight; {}",
        args.concurrency * 2,
        ctx.take_statuses()
    ));
    let mut hops = milestones.hops("closed loop", &take(&placed));
    let rate = (max.per_second * 0.5).round().max(1.0);
    progress(&format!("end to end: open loop at {rate}/s"));
    let (c, m, p) = (ctx.clone(), milestones.clone(), placed.clone());
    let paced = load::open_loop(rate, args.phase() * 2, 16_384, &args.services, move |i| {
        let (c, m, p) = (c.clone(), m.clone(), p.clone());
        async move { place_and_confirm(&c, &m, &p, i).await }
    })
    .await;
    let paced = paced.with_note(ctx.take_statuses());
    hops.extend(milestones.hops("open loop", &take(&placed)));
    (Outcome::Measured(max), Outcome::Measured(paced), hops)
}

fn take(placed: &Mutex<Vec<Uuid>>) -> Vec<Uuid> {
    std::mem::take(&mut *placed.lock().unwrap_or_else(|p| p.into_inner()))
}

/// One order through the saga, within `bound`; the reason when it fails.
async fn first_order(ctx: &Ctx, milestones: &Milestones, bound: Duration) -> Result<(), String> {
    let i = 0;
    let id = place(ctx, i)
        .await
        .ok_or_else(|| "POST /orders did not answer 201".to_owned())?;
    match milestones.outcome(id, bound).await {
        Some(true) => Ok(()),
        Some(false) => Err("the first order ended rejected instead of `confirmed`".to_owned()),
        None => {
            let last = match get_order(ctx, id, i as usize).await {
                Some((200, body)) => body["status"].as_str().unwrap_or_default().to_owned(),
                _ => "not visible".to_owned(),
            };
            Err(format!(
                "no order reached `confirmed` within {} s (the first stayed `{last}`): \
                 the saga worker does not drive orders on this build",
                bound.as_secs()
            ))
        }
    }
}

/// Places order `i` and waits until its `OrderConfirmed` is on the log.
async fn place_and_confirm(
    ctx: &Ctx,
    milestones: &Milestones,
    placed: &Mutex<Vec<Uuid>>,
    i: u64,
) -> bool {
    let Some(id) = place(ctx, i).await else {
        return false;
    };
    placed.lock().unwrap_or_else(|p| p.into_inner()).push(id);
    milestones.outcome(id, ORDER_LIMIT).await == Some(true)
}
