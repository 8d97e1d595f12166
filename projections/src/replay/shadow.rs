//! The shadow a view set is rebuilt into: a schema `replay_<view>` holding
//! an empty copy of each of the set's tables, its own `projection_positions`
//! and `dead_letters`, and a `replay_state` row saying where the replay
//! started. The projector's own code writes into it unchanged: the shadow's
//! connections put the schema first on their `search_path`, so the views'
//! unqualified table names resolve to the shadow's tables.
//!
//! Unique constraints (which the views' upserts need) exist from the start,
//! except on append-only tables, which a rebuild loads with `COPY`, and on
//! the versioned tables of a view set that is bulk loaded
//! (`ViewSet::bulk`, see `bulk`): they get their keys once the bulk of the
//! log is in, like every other index, or before a resumed rebuild goes on
//! through them.

use std::collections::HashMap;

use sqlx::postgres::PgPoolOptions;
use sqlx::{Executor, PgPool, Postgres, Transaction};

use super::ReplayError;
use super::keys::{add_keys, index_definitions, indexed_columns, keys, retarget};
use crate::dispatch::{ViewSet, ViewTable};

/// Where a rebuild starts reading the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Start {
    Beginning,
    At(chrono::DateTime<chrono::Utc>),
}

impl Start {
    pub fn describe(&self) -> String {
        match self {
            Start::Beginning => "the beginning".to_owned(),
            Start::At(at) => at.to_rfc3339(),
        }
    }
}

/// The tables every shadow has besides the view set's own.
const BOOKKEEPING: [&str; 2] = ["projection_positions", "dead_letters"];

pub fn schema_of(set: ViewSet) -> String {
    format!("replay_{}", set.projection())
}

/// A shadow ready to be written through its own pool.
pub struct Shadow {
    pub set: ViewSet,
    pub schema: String,
    pub pool: PgPool,
    /// True when an earlier, interrupted rebuild is being continued.
    pub resumed: bool,
    /// True when the shadow was just made without keys for a bulk load.
    pub bulk: bool,
}

impl Shadow {
    /// Opens the shadow of `set`, creating it when missing (or when
    /// `restart` drops it first). A shadow started from elsewhere is refused.
    pub async fn open(
        live: &PgPool,
        url: &str,
        set: ViewSet,
        start: &Start,
        restart: bool,
    ) -> Result<Shadow, ReplayError> {
        let schema = schema_of(set);
        if restart {
            drop_schema(live, &schema).await?;
        }
        let existing: Option<(String,)> = match exists(live, &schema).await? {
            true => Some(
                sqlx::query_as(&format!("SELECT from_spec FROM \"{schema}\".replay_state"))
                    .fetch_one(live)
                    .await?,
            ),
            false => None,
        };
        let resumed = match existing {
            Some((spec,)) if spec == spec_of(start) => true,
            Some((spec,)) => {
                return Err(ReplayError::ShadowMismatch {
                    view: set.projection().to_owned(),
                    existing: spec,
                    requested: spec_of(start),
                });
            }
            None => {
                create(live, set, &schema, start).await?;
                false
            }
        };
        let pool = connect(url, &schema).await?;
        check_resolution(&pool, set, &schema).await?;
        Ok(Shadow {
            set,
            schema,
            pool,
            resumed,
            bulk: !resumed && set.bulk(),
        })
    }

    /// The shadow's positions, by topic and partition.
    pub async fn positions(&self) -> Result<HashMap<(String, i32), i64>, ReplayError> {
        positions(&self.pool, &self.schema, self.set).await
    }

    /// Builds the keys and indexes left out during the bulk load, turns
    /// autovacuum back on, and gives the planner statistics of the indexed
    /// columns; the tables are worked on at the same time, each on its
    /// own connection (PostgreSQL builds one index per backend).
    pub async fn finish_indexes(&self, live: &PgPool) -> Result<(), ReplayError> {
        let finish = self.set.tables().iter().map(|table| async move {
            if table.append_only || table.versioned {
                add_keys(live, &self.pool, &self.schema, table).await?;
            }
            for definition in index_definitions(live, table.name).await? {
                let sql = retarget(&definition, table.name, &self.schema);
                sqlx::raw_sql(&sql).execute(&self.pool).await?;
            }
            let name = format!("\"{}\".{}", self.schema, table.name);
            sqlx::raw_sql(&format!("ALTER TABLE {name} RESET (autovacuum_enabled)"))
                .execute(&self.pool)
                .await?;
            // Only the indexed columns: statistics of the large JSON
            // columns cost more than the rest of the finish, and no query
            // filters on them (their targets are 0, so autovacuum skips
            // them too).
            let columns = indexed_columns(live, table.name).await?;
            sqlx::raw_sql(&format!("ANALYZE {name} ({columns})"))
                .execute(&self.pool)
                .await?;
            Ok::<(), ReplayError>(())
        });
        futures::future::try_join_all(finish).await?;
        Ok(())
    }

    /// Gives the versioned tables their keys (keeping the newest version
    /// of each), so the views' upserts can write through them; a no-op
    /// where they have them.
    pub async fn key_versioned(&self) -> Result<(), ReplayError> {
        // The live keys are read by their qualified names, so the shadow's
        // own connections do.
        self.add_keys(&self.pool, |t| t.versioned).await
    }

    async fn add_keys(
        &self,
        live: &PgPool,
        which: fn(&ViewTable) -> bool,
    ) -> Result<(), ReplayError> {
        for table in self.set.tables().iter().filter(|t| which(t)) {
            add_keys(live, &self.pool, &self.schema, table).await?;
        }
        Ok(())
    }
}

fn spec_of(start: &Start) -> String {
    match start {
        Start::Beginning => "beginning".to_owned(),
        Start::At(at) => at.to_rfc3339(),
    }
}

pub async fn exists(pool: &PgPool, schema: &str) -> Result<bool, sqlx::Error> {
    let (found,): (bool,) =
        sqlx::query_as("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)")
            .bind(schema)
            .fetch_one(pool)
            .await?;
    Ok(found)
}

pub async fn drop_schema(pool: &PgPool, schema: &str) -> Result<(), sqlx::Error> {
    sqlx::raw_sql(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
        .execute(pool)
        .await
        .map(drop)
}

/// Positions stored under `schema` for the view set.
pub async fn positions(
    pool: &PgPool,
    schema: &str,
    set: ViewSet,
) -> Result<HashMap<(String, i32), i64>, ReplayError> {
    let rows: Vec<(String, i32, i64)> = sqlx::query_as(&format!(
        "SELECT topic, partition, next_offset FROM \"{schema}\".projection_positions
         WHERE projection = $1"
    ))
    .bind(set.projection())
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(|(t, p, o)| ((t, p), o)).collect())
}

/// Creates the whole shadow in one transaction, so an interrupted creation
/// leaves nothing behind.
async fn create(
    live: &PgPool,
    set: ViewSet,
    schema: &str,
    start: &Start,
) -> Result<(), ReplayError> {
    let mut tx = live.begin().await?;
    tx.execute(format!("CREATE SCHEMA \"{schema}\"").as_str())
        .await?;
    for name in BOOKKEEPING {
        tx.execute(
            format!("CREATE TABLE \"{schema}\".{name} (LIKE public.{name} INCLUDING ALL)").as_str(),
        )
        .await?;
    }
    for table in set.tables() {
        let keyed = !(table.append_only || (table.versioned && set.bulk()));
        copy_table(&mut tx, schema, table, keyed).await?;
    }
    tx.execute(
        format!(
            "CREATE TABLE \"{schema}\".replay_state (
               from_spec text NOT NULL, created_at timestamptz NOT NULL DEFAULT now())"
        )
        .as_str(),
    )
    .await?;
    sqlx::query(&format!(
        "INSERT INTO \"{schema}\".replay_state (from_spec) VALUES ($1)"
    ))
    .bind(spec_of(start))
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// An empty copy of `public.<table>` with its columns, defaults, checks and
/// statistics targets, its unique constraints (under their live names)
/// when `keyed`, and no other index yet. Autovacuum stays off until the
/// load is done: vacuuming tables that only grow would compete with the
/// load for the same cores.
async fn copy_table(
    tx: &mut Transaction<'_, Postgres>,
    schema: &str,
    table: &ViewTable,
    keyed: bool,
) -> Result<(), ReplayError> {
    let name = table.name;
    tx.execute(
        format!(
            "CREATE TABLE \"{schema}\".{name} (LIKE public.{name}
               INCLUDING DEFAULTS INCLUDING GENERATED INCLUDING CONSTRAINTS)
             WITH (autovacuum_enabled = false)"
        )
        .as_str(),
    )
    .await?;
    // LIKE leaves out the columns' statistics targets (the migrations turn
    // off those of the wide JSON columns), which the swap must keep.
    let targets: Vec<(String, i32)> = sqlx::query_as(
        "SELECT attname::text, attstattarget::int FROM pg_attribute
         WHERE attrelid = ('public.' || $1)::regclass AND attnum > 0
           AND NOT attisdropped AND attstattarget >= 0",
    )
    .bind(name)
    .fetch_all(&mut **tx)
    .await?;
    for (column, target) in targets {
        tx.execute(
            format!(
                "ALTER TABLE \"{schema}\".{name} ALTER COLUMN \"{column}\" SET STATISTICS {target}"
            )
            .as_str(),
        )
        .await?;
    }
    if !keyed {
        return Ok(());
    }
    for (constraint, definition) in keys(&mut **tx, name).await? {
        tx.execute(
            format!("ALTER TABLE \"{schema}\".{name} ADD CONSTRAINT \"{constraint}\" {definition}")
                .as_str(),
        )
        .await?;
    }
    Ok(())
}

/// A pool whose connections resolve unqualified names in the shadow first.
/// Asynchronous commit is safe here: positions commit with the rows, so a
/// lost commit is simply replayed again.
async fn connect(url: &str, schema: &str) -> Result<PgPool, ReplayError> {
    let setup = format!("SET search_path TO \"{schema}\", public; SET synchronous_commit TO off");
    PgPoolOptions::new()
        // One per table while the indexes are built.
        .max_connections(6)
        .after_connect(move |conn, _| {
            let setup = setup.clone();
            Box::pin(async move { conn.execute(setup.as_str()).await.map(drop) })
        })
        .connect(url)
        .await
        .map_err(ReplayError::DatabaseUnreachable)
}

/// Makes sure every name the views use resolves into the shadow, never to a
/// live table.
async fn check_resolution(pool: &PgPool, set: ViewSet, schema: &str) -> Result<(), ReplayError> {
    let names = set.tables().iter().map(|t| t.name).chain(BOOKKEEPING);
    for name in names {
        let (resolved,): (Option<String>,) = sqlx::query_as(
            "SELECT n.nspname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE c.oid = to_regclass($1)",
        )
        .bind(name)
        .fetch_one(pool)
        .await?;
        if resolved.as_deref() != Some(schema) {
            return Err(ReplayError::ShapeChanged(format!("{schema}.{name}")));
        }
    }
    Ok(())
}
