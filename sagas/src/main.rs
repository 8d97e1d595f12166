use clap::Parser;
use events::KafkaArgs;

/// Saga worker: runs the order fulfilment saga.
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
    #[command(flatten)]
    kafka: KafkaArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    events::service::init_tracing();
    let args = Args::parse();
    let listener = tokio::net::TcpListener::bind(&args.http_addr).await?;
    let config = sagas::Config {
        kafka: args.kafka.into(),
        database_url: args.database_url,
    };
    sagas::run(config, listener, events::service::shutdown_on_signal()).await
}
