//! Connection to the read-model database and its migrations.

use sqlx::postgres::PgPool;

/// Connects to the views database, creating it when missing, and brings its
/// schema up to date.
pub async fn connect_and_migrate(url: &str) -> Result<PgPool, sqlx::Error> {
    events::pg::connect_and_migrate(url, 16, &sqlx::migrate!("./migrations")).await
}

/// A pool over the views database for readers. Lazy, so a reader starts (and
/// reports itself not ready) while PostgreSQL is down.
pub fn connect_lazy(url: &str) -> Result<PgPool, sqlx::Error> {
    events::pg::pool(16)
        .acquire_timeout(std::time::Duration::from_secs(2))
        .connect_lazy(url)
}
