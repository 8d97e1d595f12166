//! `rebuild --swap`: switches a view set from its live tables to its shadow.
//!
//! 1. The shadow catches up with the end of the log while the projectors run.
//! 2. The projectors are paused between two batches (`crate::pause`), so
//!    the live positions stand still; the shadow catches up with them (a
//!    few records at most) and has then applied every record the live view has.
//! 3. One transaction moves the live tables out to `replay_<view>_retired`
//!    and the shadow's into `public`, sets the live positions to the
//!    shadow's (never backwards) and takes over the shadow's dead letters.
//!    Prepared statements of other sessions are re-planned against the new
//!    tables: moving a table invalidates every plan that uses it.
//! 4. The cache entries built from the old tables are removed, still paused,
//!    then the projectors continue from the shadow's positions.

use std::collections::HashMap;

use sqlx::{Executor, PgPool};

use super::progress::Progress;
use super::rebuild::{apply, spans};
use super::shadow::{self, Shadow, Start};
use super::topics;
use super::{Context, ReplayError};
use crate::cache::Cache;
use crate::dispatch::ViewSet;
use crate::pause::Paused;

/// Swaps `shadow` in; answers how many records the catch-up applied.
pub async fn swap(
    ctx: &mut Context,
    shadow: &Shadow,
    start: &Start,
    cache: &Cache,
    batch: usize,
) -> Result<u64, ReplayError> {
    let live = ctx.pool().await?;
    let set = shadow.set;
    let mut applied = catch_up_to_end(ctx, shadow, start, batch).await?;
    let paused = Paused::pause(&live).await?;
    let positions = shadow::positions(&live, "public", set).await?;
    applied += catch_up(ctx, shadow, start, &positions, batch).await?;
    check_shapes(&live, shadow).await?;
    switch(&live, shadow).await?;
    let invalidated = invalidate(cache, set).await;
    paused.resume().await?;
    shadow::drop_schema(&live, &retired(set)).await?;
    shadow::drop_schema(&live, &shadow.schema).await?;
    invalidated.map_err(|source| ReplayError::CacheNotInvalidated {
        view: set.projection().to_owned(),
        source,
    })?;
    Ok(applied)
}

fn retired(set: ViewSet) -> String {
    format!("{}_retired", shadow::schema_of(set))
}

/// Applies what the log gained since the load.
async fn catch_up_to_end(
    ctx: &Context,
    shadow: &Shadow,
    start: &Start,
    batch: usize,
) -> Result<u64, ReplayError> {
    let extents = topics::extents(ctx.kafka(), &ctx.topics(shadow.set)).await?;
    let ends = extents
        .iter()
        .map(|e| ((e.topic.clone(), e.partition), e.high))
        .collect();
    catch_up(ctx, shadow, start, &ends, batch).await
}

/// Applies every record below `ends` the shadow has not applied yet.
pub async fn catch_up(
    ctx: &Context,
    shadow: &Shadow,
    start: &Start,
    ends: &HashMap<(String, i32), i64>,
    batch: usize,
) -> Result<u64, ReplayError> {
    let extents = topics::extents(ctx.kafka(), &ctx.topics(shadow.set)).await?;
    let spans = spans(ctx, shadow, &extents, start, ends).await?;
    apply(ctx, &shadow.pool, &spans, batch, &Progress::hidden()).await
}

/// Refuses to swap when a migration changed a live table after the shadow
/// was made from it.
async fn check_shapes(live: &PgPool, shadow: &Shadow) -> Result<(), ReplayError> {
    for table in shadow.set.tables() {
        let shape = |schema: &str| {
            sqlx::query_as::<_, (Option<String>,)>(
                "SELECT string_agg(attname::text || ' ' || format_type(atttypid, atttypmod)
                                   || ' ' || attgenerated::text, ', ' ORDER BY attnum)
                 FROM pg_attribute
                 WHERE attrelid = (quote_ident($1) || '.' || $2)::regclass
                   AND attnum > 0 AND NOT attisdropped",
            )
            .bind(schema.to_owned())
            .bind(table.name)
            .fetch_one(live)
        };
        let (before,) = shape("public").await?;
        let (after,) = shape(&shadow.schema).await?;
        if before != after {
            return Err(ReplayError::ShapeChanged(table.name.to_owned()));
        }
    }
    Ok(())
}

/// The swap itself, in one transaction.
async fn switch(live: &PgPool, shadow: &Shadow) -> Result<(), ReplayError> {
    let set = shadow.set;
    let (from, to) = (&shadow.schema, retired(set));
    shadow::drop_schema(live, &to).await?;
    let mut tx = live.begin().await?;
    tx.execute("SET LOCAL lock_timeout = '60s'").await?;
    sqlx::query("SELECT 1 FROM public.projection_positions WHERE projection = $1 FOR UPDATE")
        .bind(set.projection())
        .execute(&mut *tx)
        .await?;
    tx.execute(format!("CREATE SCHEMA \"{to}\"").as_str())
        .await?;
    for table in set.tables() {
        let name = table.name;
        tx.execute(format!("ALTER TABLE public.{name} SET SCHEMA \"{to}\"").as_str())
            .await?;
        tx.execute(format!("ALTER TABLE \"{from}\".{name} SET SCHEMA public").as_str())
            .await?;
    }
    sqlx::query(&format!(
        "INSERT INTO public.projection_positions
           (projection, topic, partition, next_offset, last_appended_at)
         SELECT projection, topic, partition, next_offset, last_appended_at
         FROM \"{from}\".projection_positions WHERE projection = $1
         ON CONFLICT (projection, topic, partition) DO UPDATE SET
           next_offset = GREATEST(projection_positions.next_offset, EXCLUDED.next_offset),
           last_appended_at = COALESCE(EXCLUDED.last_appended_at,
                                       projection_positions.last_appended_at),
           updated_at = now()"
    ))
    .bind(set.projection())
    .execute(&mut *tx)
    .await?;
    sqlx::query("DELETE FROM public.dead_letters WHERE projection = $1")
        .bind(set.projection())
        .execute(&mut *tx)
        .await?;
    let columns =
        "id, projection, topic, partition, \"offset\", record_key, payload, error, created_at";
    sqlx::query(&format!(
        "INSERT INTO public.dead_letters ({columns})
         SELECT {columns} FROM \"{from}\".dead_letters WHERE projection = $1"
    ))
    .bind(set.projection())
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Removes the cache entries of the view set; the projector writes them
/// again from the new tables as they change, readers fall back to
/// PostgreSQL meanwhile.
async fn invalidate(cache: &Cache, set: ViewSet) -> Result<(), crate::cache::CacheError> {
    for prefix in set.cached() {
        cache.invalidate(prefix).await?;
    }
    Ok(())
}
