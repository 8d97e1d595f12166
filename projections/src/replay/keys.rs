//! The keys and indexes of a shadow's tables, taken from the live ones:
//! the unique constraints a table is created with or given after its load
//! (removing the extra rows of a key first), and the other indexes, which
//! are always built after the load.

use sqlx::{Executor, PgPool, Postgres};

use super::ReplayError;
use crate::dispatch::ViewTable;

/// The primary key and unique constraints of `public.<table>`: name and definition.
pub async fn keys<'e>(
    executor: impl Executor<'e, Database = Postgres>,
    table: &str,
) -> Result<Vec<(String, String)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT conname::text, pg_get_constraintdef(oid) FROM pg_constraint
         WHERE conrelid = ('public.' || $1)::regclass AND contype IN ('p', 'u')
         ORDER BY conname",
    )
    .bind(table)
    .fetch_all(executor)
    .await
}

/// Gives a shadow table loaded without keys the live table's keys, once.
/// Where a key has several rows, the extra ones are removed first: in an
/// append-only table the later copies of an event the log holds twice
/// (the live table's conflict check would have ignored them), in a
/// versioned table every row but the newest version (a bulk load appends
/// one per batch that changed the row).
pub async fn add_keys(
    live: &PgPool,
    shadow: &PgPool,
    schema: &str,
    table: &ViewTable,
) -> Result<(), ReplayError> {
    let (table, versioned) = (table.name, table.versioned);
    for (constraint, definition) in keys(live, table).await? {
        let (present,): (bool,) = sqlx::query_as(
            "SELECT EXISTS (SELECT 1 FROM pg_constraint
                            WHERE conrelid = to_regclass($1) AND conname = $2)",
        )
        .bind(format!("\"{schema}\".{table}"))
        .bind(&constraint)
        .fetch_one(shadow)
        .await?;
        if present {
            continue;
        }
        let add = format!(
            "ALTER TABLE \"{schema}\".{table} ADD CONSTRAINT \"{constraint}\" {definition}"
        );
        match sqlx::raw_sql(&add).execute(shadow).await {
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("23505") => {
                sqlx::raw_sql(&dedupe(schema, table, &definition, versioned))
                    .execute(shadow)
                    .await?;
                sqlx::raw_sql(&add).execute(shadow).await?;
            }
            other => {
                other?;
            }
        }
    }
    Ok(())
}

/// Deletes every row of the table but one of each key that `definition`
/// (`PRIMARY KEY (a, b)` or `UNIQUE (a, b)`) names: the first, or with
/// `versioned` the one with the highest `version`.
fn dedupe(schema: &str, table: &str, definition: &str, versioned: bool) -> String {
    let columns = definition
        .split_once('(')
        .and_then(|(_, rest)| rest.rsplit_once(')'))
        .map_or("", |(inner, _)| inner);
    let row = |alias: &str| {
        columns
            .split(',')
            .map(|c| format!("{alias}.{}", c.trim()))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let older = match versioned {
        true => "(a.version, a.ctid) < (b.version, b.ctid)",
        false => "a.ctid > b.ctid",
    };
    format!(
        "DELETE FROM \"{schema}\".{table} a USING \"{schema}\".{table} b
         WHERE ({}) = ({}) AND {older}",
        row("a"),
        row("b")
    )
}

/// The `CREATE INDEX` statements of the live table's indexes that back no
/// constraint. (The views' upserts rely on constraints only, which the
/// shadow has from the start.)
pub async fn index_definitions(pool: &PgPool, table: &str) -> Result<Vec<String>, ReplayError> {
    let mut tx = pool.begin().await?;
    // With only pg_catalog on the path, the definitions name `public.` explicitly.
    tx.execute("SET LOCAL search_path TO pg_catalog").await?;
    let rows: Vec<(String,)> = sqlx::query_as(
        "SELECT pg_get_indexdef(i.indexrelid) FROM pg_index i
         WHERE i.indrelid = ('public.' || $1)::regclass
           AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)
         ORDER BY i.indexrelid",
    )
    .bind(table)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(rows.into_iter().map(|(d,)| d).collect())
}

/// The columns any index of `public.<table>` covers, quoted and joined by
/// commas (every view table has a key, so never empty).
pub async fn indexed_columns(pool: &PgPool, table: &str) -> Result<String, ReplayError> {
    let (columns,): (Option<String>,) = sqlx::query_as(
        "SELECT string_agg(DISTINCT quote_ident(a.attname::text), ', ')
         FROM pg_index i
         JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
         WHERE i.indrelid = ('public.' || $1)::regclass",
    )
    .bind(table)
    .fetch_one(pool)
    .await?;
    Ok(columns.unwrap_or_default())
}

/// A live index definition pointed at the shadow's table, idempotent.
pub fn retarget(definition: &str, table: &str, schema: &str) -> String {
    definition
        .replacen("CREATE INDEX ", "CREATE INDEX IF NOT EXISTS ", 1)
        .replacen(
            "CREATE UNIQUE INDEX ",
            "CREATE UNIQUE INDEX IF NOT EXISTS ",
            1,
        )
        .replacen(
            &format!(" ON public.{table} "),
            &format!(" ON \"{schema}\".{table} "),
            1,
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_are_found_by_the_constraints_columns() {
        assert_eq!(
            dedupe(
                "replay_orders",
                "order_timeline",
                "PRIMARY KEY (order_id, source, sequence)",
                false
            ),
            "DELETE FROM \"replay_orders\".order_timeline a USING \"replay_orders\".order_timeline b
         WHERE (a.order_id, a.source, a.sequence) = (b.order_id, b.source, b.sequence) AND a.ctid > b.ctid"
        );
    }

    #[test]
    fn versioned_rows_keep_the_newest_version_of_each_key() {
        assert_eq!(
            dedupe("replay_orders", "orders", "PRIMARY KEY (order_id)", true),
            "DELETE FROM \"replay_orders\".orders a USING \"replay_orders\".orders b
         WHERE (a.order_id) = (b.order_id) AND (a.version, a.ctid) < (b.version, b.ctid)"
        );
    }

    #[test]
    fn index_definitions_are_pointed_at_the_shadow() {
        let live = "CREATE INDEX orders_customer_history ON public.orders USING btree \
                    (customer_id, placed_at DESC, order_id DESC)";
        assert_eq!(
            retarget(live, "orders", "replay_orders"),
            "CREATE INDEX IF NOT EXISTS orders_customer_history ON \"replay_orders\".orders \
             USING btree (customer_id, placed_at DESC, order_id DESC)"
        );
    }
}
