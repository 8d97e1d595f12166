//! The query API: serves the read models the projectors maintain.
//!
//! - `http`: routes and the problem+json error type.
//!
//! [`run`] starts the service; the binary in `main.rs` only parses flags.

mod http;

use anyhow::Context;
use events::service::{self, Health};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Everything the query API needs to run.
#[derive(Debug, Clone)]
pub struct Config {
    pub database_url: String,
    pub redis_url: String,
}

/// Runs the query API on `listener` until `shutdown` is cancelled.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let pool =
        projections::db::connect_lazy(&config.database_url).context("parsing the database url")?;
    let redis = redis::Client::open(config.redis_url.as_str()).context("parsing the redis url")?;
    let check_pool = pool.clone();
    let health = Health::new()
        .check("postgres", move || {
            let pool = check_pool.clone();
            async move { sqlx::query("SELECT 1").execute(&pool).await.map(|_| ()) }
        })
        .check("redis", move || {
            let redis = redis.clone();
            async move {
                let mut conn = redis.get_multiplexed_async_connection().await?;
                redis::cmd("PING")
                    .query_async::<String>(&mut conn)
                    .await
                    .map(|_| ())
            }
        });
    let app = http::router(http::AppState { pool });
    tracing::info!(addr = %listener.local_addr()?, "query api listening");
    service::serve(
        listener,
        service::with_ops(app, "query-api", health),
        shutdown,
    )
    .await
    .context("serving http")
}
