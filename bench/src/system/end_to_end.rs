//! End to end: `POST /orders`, then the query API until the order is
//! `confirmed` (stock reserved, payment captured with `tok_ok`, shipment
//! scheduled, stock committed). Needs the saga worker; without it a first
//! order never leaves `pending` and both figures say so, after a bounded wait.

use std::sync::Arc;
use std::time::Duration;

use uuid::Uuid;

use super::commands::place;
use super::{Ctx, Outcome, get_order, poll};
use crate::baselines::progress;
use crate::load;

/// How often an order is polled for `confirmed`: the figure's resolution.
const POLL: Duration = Duration::from_millis(10);

/// Longest one order may take under load before it counts as failed.
const ORDER_LIMIT: Duration = Duration::from_secs(30);

pub async fn run(ctx: &Arc<Ctx>) -> (Outcome, Outcome) {
    progress("end to end: does an order reach confirmed?");
    let bound = if ctx.args.quick() {
        Duration::from_secs(10)
    } else {
        Duration::from_secs(30)
    };
    if let Err(reason) = first_order(ctx, bound).await {
        let outcome = Outcome::NotAvailable { reason };
        return (outcome.clone(), outcome);
    }
    let args = &ctx.args;
    progress("end to end: max completed orders/s (closed loop)");
    let c = ctx.clone();
    let max = load::closed_loop(
        args.concurrency * 2,
        Duration::from_secs(2),
        args.phase() * 2,
        &args.services,
        move |i| {
            let c = c.clone();
            async move { place_and_confirm(&c, i).await }
        },
    )
    .await;
    let max = max.with_note(format!(
        "{} orders in flight; {}",
        args.concurrency * 2,
        ctx.take_statuses()
    ));
    let rate = (max.per_second * 0.5).round().max(1.0);
    progress(&format!("end to end: open loop at {rate}/s"));
    let c = ctx.clone();
    let paced = load::open_loop(rate, args.phase() * 2, 16_384, &args.services, move |i| {
        let c = c.clone();
        async move { place_and_confirm(&c, i).await }
    })
    .await;
    let paced = paced.with_note(ctx.take_statuses());
    (Outcome::Measured(max), Outcome::Measured(paced))
}

/// One order through the saga, within `bound`; the reason when it fails.
async fn first_order(ctx: &Ctx, bound: Duration) -> Result<(), String> {
    let i = 0;
    let id = place(ctx, i)
        .await
        .ok_or_else(|| "POST /orders did not answer 201".to_owned())?;
    let deadline = tokio::time::Instant::now() + bound;
    let mut last = String::from("not visible");
    while tokio::time::Instant::now() < deadline {
        if let Some(status) = status(ctx, id, i as usize).await {
            match status.as_str() {
                "confirmed" => return Ok(()),
                "rejected" | "cancelled" => {
                    return Err(format!(
                        "the first order ended `{status}` instead of `confirmed`"
                    ));
                }
                _ => last = status,
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(format!(
        "no order reached `confirmed` within {} s (the first stayed `{last}`): \
         the saga worker does not drive orders on this build",
        bound.as_secs()
    ))
}

async fn status(ctx: &Ctx, id: Uuid, customer: usize) -> Option<String> {
    let (code, body) = get_order(ctx, id, customer).await?;
    (code == 200).then(|| body["status"].as_str().unwrap_or_default().to_owned())
}

/// Places order `i` and waits until the query API shows it `confirmed`.
async fn place_and_confirm(ctx: &Ctx, i: u64) -> bool {
    let Some(id) = place(ctx, i).await else {
        return false;
    };
    poll(POLL, ORDER_LIMIT, || async {
        status(ctx, id, i as usize)
            .await
            .filter(|s| s == "confirmed")
    })
    .await
    .is_some()
}
