use clap::Parser;
use events::KafkaArgs;

/// Command service: the command HTTP API and the command processors.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// Address of the command HTTP API.
    #[arg(long, env = "COMMAND_HTTP_ADDR", default_value = "127.0.0.1:8080")]
    http_addr: String,
    /// Stable name of this instance; transactional ids derive from it.
    #[arg(long, env = "INSTANCE_ID", default_value = "command-0")]
    instance_id: String,
    #[command(flatten)]
    kafka: KafkaArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    events::service::init_tracing();
    let args = Args::parse();
    let listener = tokio::net::TcpListener::bind(&args.http_addr).await?;
    let config = command::Config {
        kafka: args.kafka.into(),
        instance_id: args.instance_id,
        jwt_secret: "dev-secret-do-not-use-in-production".into(),
        query_api_url: "http://127.0.0.1:8081".into(),
        reply_wait: std::time::Duration::from_secs(3),
    };
    command::run(config, listener, events::service::shutdown_on_signal()).await
}
