//! PostgreSQL connection pools as the services open them.

use std::time::Duration;

use sqlx::Connection;
use sqlx::migrate::{MigrateDatabase, Migrator};
use sqlx::postgres::{PgPool, PgPoolOptions};

/// A connection back in the pool for less than this is handed out again
/// without a liveness check.
const CHECK_AFTER_IDLE: Duration = Duration::from_secs(1);

/// A pool of at most `max_connections` that checks a connection's liveness
/// (a `ping`, one round trip) only when it sat idle for a second or more.
///
/// sqlx pings every connection it hands out (`test_before_acquire`), so
/// every transaction and every single-statement read paid a round trip
/// before its first statement: a projector batch two of them (its pause
/// lock and its transaction), a saga worker batch one, a query API cache
/// miss one beside its one statement. sqlx also pings each connection as
/// it comes back to the pool and drops it if that fails, so a connection
/// handed out within the second passed a check a moment ago; one idle for
/// longer may have lost its server since (a restart, a failover) and is
/// still checked, and dropped if the ping fails, as before. A connection
/// that breaks in between fails its statement instead, which every caller
/// already retries or answers as unavailable.
pub fn pool(max_connections: u32) -> PgPoolOptions {
    PgPoolOptions::new()
        .max_connections(max_connections)
        .test_before_acquire(false)
        .before_acquire(|connection, meta| {
            Box::pin(async move {
                if meta.idle_for >= CHECK_AFTER_IDLE {
                    connection.ping().await?;
                }
                Ok(true)
            })
        })
}

/// Connects to the database at `url` with a [`pool`] of `max_connections`,
/// creating the database when it is missing, and runs `migrations`.
pub async fn connect_and_migrate(
    url: &str,
    max_connections: u32,
    migrations: &Migrator,
) -> Result<PgPool, sqlx::Error> {
    if !sqlx::Postgres::database_exists(url).await? {
        // Two instances may race to create it; losing that race is fine.
        if let Err(e) = sqlx::Postgres::create_database(url).await
            && !sqlx::Postgres::database_exists(url).await?
        {
            return Err(e);
        }
    }
    let pool = pool(max_connections).connect(url).await?;
    migrations.run(&pool).await?;
    Ok(pool)
}
