//! The deadline timer: fires `DeadlineFired` into sagas whose deadline
//! passed, once the worker has read its inputs up to the deadline (see
//! `watermark`). Deadlines are a column of the saga row, indexed by time in
//! `saga_deadlines` (written in the same statement), so they survive
//! restarts; saga rows are taken with `FOR UPDATE SKIP LOCKED`, so several
//! workers' timers (and the workers' own batches) never fire one deadline
//! twice.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::apply::{Batch, Cause};
use crate::machine::{Input, Pace};
use crate::publish::Handoff;
use crate::{store, watermark, worker};

/// Sagas fired per transaction.
const PER_ROUND: i64 = 200;

pub async fn run(
    pool: PgPool,
    pace: Pace,
    tick: Duration,
    answer_topics: Vec<String>,
    handoff: Handoff,
    shutdown: CancellationToken,
) {
    loop {
        match fire_due(&pool, pace, &answer_topics, &handoff).await {
            // A full round: there may be more due right away.
            Ok(fired) if fired as i64 == PER_ROUND => continue,
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "firing saga deadlines failed"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(tick) => {}
        }
    }
}

/// Fires the deadlines that passed and that the watermark has reached;
/// answers how many sagas it took.
pub async fn fire_due(
    pool: &PgPool,
    pace: Pace,
    answer_topics: &[String],
    handoff: &Handoff,
) -> Result<usize, sqlx::Error> {
    let now = Utc::now();
    let mut tx = pool.begin().await?;
    let mut due = store::lock_due(&mut tx, now, PER_ROUND).await?;
    if !due.is_empty() {
        // Only what passed on the clock asks for the watermark. The due rows
        // come earliest first and the watermark is one for all, so those
        // held back are the latest of them.
        let upto = watermark::current(&mut tx, answer_topics)
            .await?
            .map_or(DateTime::<Utc>::MIN_UTC, |watermark| watermark.min(now));
        let held_back = (now - upto).num_milliseconds().max(0) as f64 / 1000.0;
        metrics::gauge!("saga_deadline_watermark_lag_seconds").set(held_back);
        due.retain(|_, stored| stored.saga.deadline().is_some_and(|d| d <= upto));
    }
    let fired = due.len();
    if fired == 0 {
        return tx.commit().await.map(|()| 0);
    }
    let ids: Vec<Uuid> = due.keys().copied().collect();
    let mut batch = Batch::new(due, pace, now);
    for order_id in ids {
        let version = batch.sagas.get(&order_id).map_or(0, |s| s.version);
        // The same deadline fired again (after a crash) gets the same id.
        let name = format!("deadline/{order_id}/{version}");
        let cause = Cause {
            id: Uuid::new_v5(&Uuid::NAMESPACE_OID, name.as_bytes()),
            traceparent: None,
        };
        batch.feed(order_id, &Input::DeadlineFired, &cause);
        // A deadline that changed nothing must not fire again and again.
        batch.changed.insert(order_id);
    }
    let inserted = worker::save(&mut tx, &mut batch, &[]).await?;
    tx.commit().await?;
    handoff.committed(inserted).await;
    metrics::counter!("saga_deadlines_fired_total").increment(fired as u64);
    Ok(fired)
}
