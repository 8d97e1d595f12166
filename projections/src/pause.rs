//! The lock that lets the replay CLI pause every projector of a views
//! database between two batches, so it can swap in a rebuilt view.
//!
//! Each projector batch (apply, commit, cache refresh) runs under a shared
//! transaction-level advisory lock held on a connection of its own; the swap
//! takes the same lock exclusively. Being transaction-level, the lock goes
//! away with its transaction whatever happens to the holder (a dropped
//! guard is rolled back when its connection returns to the pool, a killed
//! process loses its session).

use sqlx::{PgPool, Postgres, Transaction};

/// The advisory lock key, derived from a fixed name.
const KEY: &str = "projections:pause";

/// Held by a projector for the whole of one batch.
pub struct BatchGuard(Transaction<'static, Postgres>);

impl BatchGuard {
    /// Waits while a swap holds the lock, then enters a batch; one round trip.
    pub async fn enter(pool: &PgPool) -> Result<BatchGuard, sqlx::Error> {
        let begin =
            format!("BEGIN; SELECT pg_advisory_xact_lock_shared(hashtext('{KEY}')::bigint)");
        Ok(BatchGuard(pool.begin_with(begin).await?))
    }

    /// Enters a batch unless a swap holds (or waits for) the lock.
    pub async fn try_enter(pool: &PgPool) -> Option<BatchGuard> {
        let mut tx = pool.begin().await.ok()?;
        let (entered,): (bool,) =
            sqlx::query_as("SELECT pg_try_advisory_xact_lock_shared(hashtext($1)::bigint)")
                .bind(KEY)
                .fetch_one(&mut *tx)
                .await
                .ok()?;
        entered.then_some(BatchGuard(tx))
    }

    /// Leaves the batch; a failure only means the lock went with its session.
    pub async fn leave(self) {
        if let Err(e) = self.0.commit().await {
            tracing::debug!(error = %e, "releasing the batch lock failed");
        }
    }
}

/// Held by the replay CLI while every projector must stand still.
pub struct Paused(Transaction<'static, Postgres>);

impl Paused {
    /// Waits for the batches in flight to finish and keeps new ones out.
    pub async fn pause(pool: &PgPool) -> Result<Paused, sqlx::Error> {
        let mut tx = pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1)::bigint)")
            .bind(KEY)
            .execute(&mut *tx)
            .await?;
        Ok(Paused(tx))
    }

    /// Lets the projectors continue.
    pub async fn resume(self) -> Result<(), sqlx::Error> {
        self.0.commit().await
    }
}
