//! `verify`: rebuilds a view set into its shadow, brings the shadow to
//! exactly the live view's positions (with the projectors paused for the
//! last few records and the comparison), and diffs every table.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;
use sqlx::PgPool;

use super::output::Output;
use super::rebuild::{self, Claim};
use super::shadow::{self, Shadow, Start};
use super::swap::catch_up;
use super::topics;
use super::{Context, ReplayError};
use crate::dispatch::{ViewSet, ViewTable};
use crate::pause::Paused;

/// How long the live projector may take to reach the rebuilt position.
const LIVE_WAIT: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Serialize)]
pub struct Difference {
    pub table: &'static str,
    /// The primary key, `column=value` joined by spaces.
    pub key: String,
    /// `differs`, `missing` (only in the live view) or `unexpected` (only
    /// in the rebuilt one).
    pub kind: &'static str,
}

#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    pub view: &'static str,
    pub events: u64,
    pub differences: u64,
    /// The first differences (up to `--limit`).
    pub shown: Vec<Difference>,
}

pub async fn verify(
    ctx: &mut Context,
    set: ViewSet,
    tuning: &super::cli::Tuning,
    limit: usize,
    keep: bool,
    out: Output,
) -> Result<VerifyReport, ReplayError> {
    ctx.check_kafka().await?;
    let live = ctx.pool().await?;
    let _claim = Claim::take(&live, set).await?;
    let extents = topics::extents(ctx.kafka(), &ctx.topics(set)).await?;
    let start = Start::Beginning;
    let url = ctx.target.database_url.clone();
    let shadow = Shadow::open(&live, &url, set, &start, tuning.restart).await?;
    let mut events = rebuild::load(ctx, &shadow, &extents, &start, tuning.batch(), out).await?;
    shadow.finish_indexes(&live).await?;
    wait_for_live(&live, &shadow).await?;
    let paused = Paused::pause(&live).await?;
    let positions = shadow::positions(&live, "public", set).await?;
    events += catch_up(ctx, &shadow, &start, &positions, tuning.batch()).await?;
    let mut all = Vec::new();
    for table in set.tables() {
        all.extend(diff(&live, &shadow.schema, table).await?);
    }
    paused.resume().await?;
    if !keep {
        shadow::drop_schema(&live, &shadow.schema).await?;
    }
    let differences = all.len() as u64;
    all.truncate(limit);
    Ok(VerifyReport {
        view: set.projection(),
        events,
        differences,
        shown: all,
    })
}

/// Waits until the live positions have reached the shadow's everywhere, so
/// the shadow can be brought to exactly the live positions.
async fn wait_for_live(live: &PgPool, shadow: &Shadow) -> Result<(), ReplayError> {
    let deadline = tokio::time::Instant::now() + LIVE_WAIT;
    let target = shadow.positions().await?;
    loop {
        let now = shadow::positions(live, "public", shadow.set).await?;
        let behind = target
            .iter()
            .any(|(key, offset)| now.get(key).copied().unwrap_or(0) < *offset);
        if !behind {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(ReplayError::LiveBehind {
                view: shadow.set.projection().to_owned(),
                waited: LIVE_WAIT,
            });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The keys whose rows differ between `public.<table>` and `<schema>.<table>`,
/// comparing every column but the volatile ones.
async fn diff(
    pool: &PgPool,
    schema: &str,
    table: &ViewTable,
) -> Result<Vec<Difference>, ReplayError> {
    let (columns, key) = columns(pool, table).await?;
    let keys = |a: &str, b: &str| {
        let key_text: Vec<String> = key.iter().map(|k| format!("{k}::text")).collect();
        format!(
            "SELECT ARRAY[{}] FROM (SELECT {columns} FROM {a}.{name}
                                    EXCEPT ALL SELECT {columns} FROM {b}.{name}) d",
            key_text.join(", "),
            columns = columns.join(", "),
            name = table.name,
        )
    };
    let quoted = format!("\"{schema}\"");
    let missing: Vec<(Vec<Option<String>>,)> = sqlx::query_as(&keys("public", &quoted))
        .fetch_all(pool)
        .await?;
    let unexpected: Vec<(Vec<Option<String>>,)> = sqlx::query_as(&keys(&quoted, "public"))
        .fetch_all(pool)
        .await?;
    let label = |values: Vec<Option<String>>| {
        key.iter()
            .zip(values)
            .map(|(k, v)| format!("{k}={}", v.unwrap_or_else(|| "NULL".into())))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let mut kinds: BTreeMap<String, &'static str> = BTreeMap::new();
    for (values,) in missing {
        kinds.insert(label(values), "missing");
    }
    for (values,) in unexpected {
        let entry = kinds.entry(label(values)).or_insert("unexpected");
        if *entry == "missing" {
            *entry = "differs";
        }
    }
    Ok(kinds
        .into_iter()
        .map(|(key, kind)| Difference {
            table: table.name,
            key,
            kind,
        })
        .collect())
}

/// The compared columns of a live table (as the expressions compared) and
/// its primary key columns. A `json` column has no equality, and the same
/// value may be stored in two renderings (one written while the column was
/// `jsonb`), so it is compared as `jsonb`: by value.
async fn columns(
    pool: &PgPool,
    table: &ViewTable,
) -> Result<(Vec<String>, Vec<String>), ReplayError> {
    let all: Vec<(String, bool)> = sqlx::query_as(
        "SELECT attname::text, atttypid = 'json'::regtype FROM pg_attribute
         WHERE attrelid = ('public.' || $1)::regclass AND attnum > 0 AND NOT attisdropped
         ORDER BY attnum",
    )
    .bind(table.name)
    .fetch_all(pool)
    .await?;
    let key: Vec<(String,)> = sqlx::query_as(
        "SELECT a.attname::text FROM pg_index i
         JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
         WHERE i.indrelid = ('public.' || $1)::regclass AND i.indisprimary
         ORDER BY array_position(i.indkey::int2[], a.attnum)",
    )
    .bind(table.name)
    .fetch_all(pool)
    .await?;
    let compared = all
        .into_iter()
        .filter(|(c, _)| !table.volatile.contains(&c.as_str()))
        .map(|(c, json)| match json {
            true => format!("{c}::jsonb"),
            false => c,
        })
        .collect();
    Ok((compared, key.into_iter().map(|(k,)| k).collect()))
}
