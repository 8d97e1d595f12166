//! The saga worker as a separate process, configured from the environment
//! (the real command line's variables: the Kafka ones, `SAGAS_DATABASE_URL`,
//! `SAGAS_GROUP_ID`, `SAGAS_PACE_MS`), so crash tests can SIGKILL it
//! mid-batch. It runs the sandbox provider and carrier as the tests' in-process
//! worker does. It prints its HTTP address on the first line of stdout.

use std::time::Duration;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _telemetry = events::telemetry::init("sagas");
    let config = sagas::Config {
        sandbox: true,
        sandbox_latency: Duration::from_millis(1),
        max_open_orders: 0,
        ..events::args::from_env::<sagas::cli::WorkerArgs>()?.config()
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!("{}", listener.local_addr()?);
    sagas::run(config, listener, events::service::shutdown_on_signal()).await
}
