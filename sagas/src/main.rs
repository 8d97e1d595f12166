use std::time::Duration;

use clap::Parser;
use events::KafkaArgs;

/// Saga worker: runs the order fulfilment saga, its outbox relay, deadline
/// timer and the sandbox payment provider and carrier gateway.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// Address of the health and metrics endpoints.
    #[arg(long, env = "SAGAS_HTTP_ADDR", default_value = "127.0.0.1:8082")]
    http_addr: String,
    /// The saga database (created when missing).
    #[arg(
        long,
        env = "SAGAS_DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:15432/commerce_sagas"
    )]
    database_url: String,
    /// Consumer group shared by all saga workers of a deployment.
    #[arg(long, env = "SAGAS_GROUP_ID", default_value = "sagas")]
    group_id: String,
    /// Length of a nominal second of the step timeouts, in milliseconds
    /// (1000 in production; smaller runs deadlines and capture retries faster).
    #[arg(long, env = "SAGAS_PACE_MS", default_value_t = 1000)]
    pace_ms: u32,
    /// Latency of each sandbox provider and carrier call, in milliseconds.
    #[arg(long, env = "SAGAS_SANDBOX_LATENCY_MS", default_value_t = 5)]
    sandbox_latency_ms: u64,
    #[command(flatten)]
    kafka: KafkaArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _telemetry = events::telemetry::init("sagas");
    let args = Args::parse();
    let listener = tokio::net::TcpListener::bind(&args.http_addr).await?;
    let config = sagas::Config {
        kafka: args.kafka.into(),
        database_url: args.database_url,
        group_id: args.group_id,
        pace: sagas::Pace {
            millis_per_second: args.pace_ms.max(1),
        },
        sandbox_latency: Duration::from_millis(args.sandbox_latency_ms),
    };
    sagas::run(config, listener, events::service::shutdown_on_signal()).await
}
