//! The query API's command line. `main.rs` only calls [`main`].

use std::ffi::OsString;

use anyhow::Context;
use clap::Parser;
use events::auth::AuthArgs;

/// Query API: the read models over HTTP.
#[derive(Parser)]
#[command(version)]
struct Args {
    #[arg(long, env = "QUERY_HTTP_ADDR", default_value = "127.0.0.1:8081")]
    http_addr: String,
    /// The read-model database and cache the projectors maintain (their
    /// flags too).
    #[command(flatten)]
    views: events::args::ViewsArgs,
    /// Token keys: the command API's secret, or only its public key or JWKS.
    #[command(flatten)]
    auth: AuthArgs,
    /// The command API the operator console passes saga actions on to.
    #[arg(long, env = "COMMAND_URL", default_value = "http://127.0.0.1:8080")]
    command_url: String,
    /// The projector service the console reads lag from and passes
    /// dead-letter actions on to.
    #[arg(long, env = "PROJECTIONS_URL", default_value = "http://127.0.0.1:8083")]
    projections_url: String,
    /// Longest a read waits for its consistency token, in milliseconds.
    #[arg(long, env = "CONSISTENCY_WAIT_MS", default_value_t = 2000)]
    consistency_wait_ms: u64,
    #[command(flatten)]
    http: events::http::HttpArgs,
}

/// Runs the command line `args` (the program name first).
pub async fn main<I, T>(args: I) -> anyhow::Result<()>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let _telemetry = events::telemetry::init("query-api");
    let args = Args::parse_from(args);
    let auth = args.auth.config().await.context("token keys")?;
    let listener = tokio::net::TcpListener::bind(&args.http_addr).await?;
    let config = crate::Config {
        consistency_wait: std::time::Duration::from_millis(args.consistency_wait_ms),
        http: args.http.into(),
        command_url: args.command_url,
        projections_url: args.projections_url,
        ..crate::Config::new(args.views, auth)
    };
    crate::run(config, listener, events::service::shutdown_on_signal()).await
}
