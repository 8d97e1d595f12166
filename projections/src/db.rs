//! Connection to the read-model database and its migrations.

use sqlx::migrate::MigrateDatabase;
use sqlx::postgres::PgPool;

/// Connects to the views database, creating it when missing, and brings its
/// schema up to date.
pub async fn connect_and_migrate(url: &str) -> Result<PgPool, sqlx::Error> {
    if !sqlx::Postgres::database_exists(url).await? {
        // Two instances may race to create it; losing that race is fine.
        if let Err(e) = sqlx::Postgres::create_database(url).await
            && !sqlx::Postgres::database_exists(url).await?
        {
            return Err(e);
        }
    }
    let pool = events::pg::pool(16).connect(url).await?;
    sqlx::migrate!("./migrations").run(&pool).await?;
    Ok(pool)
}

/// A pool over the views database for readers. Lazy, so a reader starts (and
/// reports itself not ready) while PostgreSQL is down.
pub fn connect_lazy(url: &str) -> Result<PgPool, sqlx::Error> {
    events::pg::pool(16)
        .acquire_timeout(std::time::Duration::from_secs(2))
        .connect_lazy(url)
}
