//! The query API: serves the read models the projectors maintain, over HTTP
//! with problem+json errors. It only reads the views database, and uses the
//! projector's crate only through its read side, `projections::read`.
//!
//! - `http`: routes, handlers and [`http::QueryError`].
//! - `console`: the operator console (`GET /console`, admins) and its
//!   same-origin forwarding of saga and dead-letter actions.
//! - `consistency`: `X-Consistency-Token` parsing and the bounded wait for it.
//! - `openapi`: the generated `GET /openapi.json`, and `GET /asyncapi.json`
//!   (the topics' contract, [`events::asyncapi`]).
//! - [`cli`]: the binary's flags.
//!
//! Who reads what: the catalog and probes are public; an order, its saga and
//! a customer's history need a token, and a customer sees only their own.
//! Order detail and catalog items are read from the Redis cache the
//! projector writes (bounded by `cache_timeout`), and from PostgreSQL when
//! the cache misses, fails, is slow, or is older than a consistency token.
//!
//! [`run`] starts the service; the binary in `main.rs` only calls [`cli::main`].

pub mod cli;
mod consistency;
mod console;
mod http;
mod openapi;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use events::service::{self, Health};
use projections::read::{self, Cache};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Everything the query API needs to run.
#[derive(Debug, Clone)]
pub struct Config {
    pub database_url: String,
    pub redis_url: String,
    /// How bearer tokens are verified (`events::auth`); a public key or
    /// JWKS is enough, the query API never mints.
    pub auth: events::auth::AuthConfig,
    /// Longest a read waits for the views to reach its consistency token.
    pub consistency_wait: Duration,
    /// Longest a read waits for Redis before asking PostgreSQL instead.
    pub cache_timeout: Duration,
    /// Timeouts, connection and rate limits, the optional ops listener.
    pub http: events::http::HttpConfig,
    /// The command API the console passes saga actions on to.
    pub command_url: String,
    /// The projector service the console asks for lag and passes
    /// dead-letter actions on to.
    pub projections_url: String,
    /// Reads waiting for a consistency token at the same time at most.
    pub max_waits: usize,
}

impl Config {
    /// The default consistency wait.
    pub const DEFAULT_CONSISTENCY_WAIT: Duration = Duration::from_secs(2);
    /// The default cache timeout.
    pub const DEFAULT_CACHE_TIMEOUT: Duration = Duration::from_millis(50);

    /// The configuration of the read models' flags (`views`) and the token
    /// keys, with the defaults for everything else; the binary and the
    /// tests' processes both start from it.
    pub fn new(views: events::args::ViewsArgs, auth: events::auth::AuthConfig) -> Config {
        Config {
            database_url: views.database_url,
            redis_url: views.redis_url,
            auth,
            consistency_wait: Config::DEFAULT_CONSISTENCY_WAIT,
            cache_timeout: Config::DEFAULT_CACHE_TIMEOUT,
            http: events::http::HttpConfig::default(),
            command_url: "http://127.0.0.1:8080".into(),
            projections_url: "http://127.0.0.1:8083".into(),
            max_waits: http::MAX_WAITS,
        }
    }
}

/// Runs the query API on `listener` until `shutdown` is cancelled.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    // Refuses to start without a usable key (a short secret, a bad key file).
    let verifier =
        events::auth::JwtVerifier::new(&config.auth).context("loading the token keys")?;
    let pool = read::connect_lazy(&config.database_url).context("parsing the database url")?;
    // The cache's keys are named after the views database, as the projector names them.
    let cache = Arc::new(
        Cache::new(
            &config.redis_url,
            read::namespace_for(&config.database_url),
            config.cache_timeout,
        )
        .context("parsing the redis url")?
        .with_signing(&config.auth.signing),
    );
    let check_pool = pool.clone();
    let health = Health::new()
        .check("postgres", move || {
            let pool = check_pool.clone();
            async move { sqlx::query("SELECT 1").execute(&pool).await.map(|_| ()) }
        })
        .check("redis", {
            let cache = cache.clone();
            move || {
                let cache = cache.clone();
                async move { cache.ping().await }
            }
        });
    let verifier = Arc::new(verifier);
    let caller = verifier.clone();
    let app = http::router(http::Shared {
        pool,
        cache,
        verifier,
        consistency_wait: config.consistency_wait,
        progress: consistency::Progress::listen(config.database_url.clone(), shutdown.clone()),
        fallbacks: tokio::sync::Semaphore::new(http::MAX_FALLBACKS),
        fills: Arc::new(tokio::sync::Semaphore::new(http::MAX_FILLS)),
        signing: config.auth.signing.clone(),
        waits: tokio::sync::Semaphore::new(config.max_waits),
        upstreams: console::Upstreams {
            command_url: config.command_url.trim_end_matches('/').to_owned(),
            projections_url: config.projections_url.trim_end_matches('/').to_owned(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .context("building the console's http client")?,
        },
    });
    tracing::info!(addr = %listener.local_addr()?, "query api listening");
    service::serve_api(
        listener,
        app,
        "query-api",
        health,
        &config.http,
        Arc::new(move |headers, extensions| caller.rate_key(headers, extensions)),
        shutdown,
    )
    .await
    .context("serving http")
}
