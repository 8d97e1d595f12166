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
    /// The read-model database (created and migrated when missing).
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:15432/commerce"
    )]
    database_url: String,
    #[arg(long, env = "REDIS_URL", default_value = "redis://127.0.0.1:16379")]
    redis_url: String,
    #[command(flatten)]
    kafka: KafkaArgs,
    #[command(flatten)]
    signing: events::auth::signing::SigningArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    events::service::init_tracing();
    let args = Args::parse();
    let signing_key = args.signing.key()?;
    let listener = tokio::net::TcpListener::bind(&args.http_addr).await?;
    let config = projections::Config {
        kafka: args.kafka.into(),
        group_id: args.group_id,
        database_url: args.database_url,
        redis_url: args.redis_url,
        signing_key,
    };
    projections::run(config, listener, events::service::shutdown_on_signal()).await
}
