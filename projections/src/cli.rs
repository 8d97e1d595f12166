//! The projector's command line. `main.rs` only calls [`main`].

use std::ffi::OsString;

use anyhow::Context;
use clap::Parser;
use events::KafkaArgs;

/// Projector: folds the event log into the read-model database and cache.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// Address of the health and metrics endpoints.
    #[arg(long, env = "PROJECTIONS_HTTP_ADDR", default_value = "127.0.0.1:8083")]
    http_addr: String,
    /// Consumer group shared by every projector instance.
    #[arg(long, env = "PROJECTIONS_GROUP_ID", default_value = "projections")]
    group_id: String,
    /// The read-model database and cache (the query API's flags too).
    #[command(flatten)]
    views: events::args::ViewsArgs,
    /// Token keys (the command API's), for the operator endpoints (`/lag`,
    /// dead-letter retry and skip), and the key that signs cached orders.
    #[command(flatten)]
    auth: events::auth::AuthArgs,
    #[command(flatten)]
    kafka: KafkaArgs,
}

/// Runs the command line `args` (the program name first).
pub async fn main<I, T>(args: I) -> anyhow::Result<()>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let _telemetry = events::telemetry::init("projections");
    let args = Args::parse_from(args);
    let auth = args.auth.config().await.context("token keys")?;
    let listener = tokio::net::TcpListener::bind(&args.http_addr).await?;
    let config = crate::Config::new(args.kafka.into(), args.group_id, args.views, auth);
    crate::run(config, listener, events::service::shutdown_on_signal()).await
}
