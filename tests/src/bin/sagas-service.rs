//! The saga worker as a separate process, configured from the environment,
//! so crash tests can SIGKILL it mid-batch. It prints its HTTP address on the
//! first line of stdout.

use std::time::Duration;

use events::KafkaArgs;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _telemetry = events::telemetry::init("sagas");
    let env = |name: &str| std::env::var(name).unwrap_or_default();
    let kafka = events::args::from_env::<KafkaArgs>()?.into();
    let config = sagas::Config {
        kafka,
        database_url: env("DATABASE_URL"),
        group_id: env("GROUP_ID"),
        pace: sagas::Pace {
            millis_per_second: env("PACE_MS").parse()?,
        },
        sandbox: true,
        sandbox_latency: Duration::from_millis(1),
        max_open_orders: 0,
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!("{}", listener.local_addr()?);
    sagas::run(config, listener, events::service::shutdown_on_signal()).await
}
