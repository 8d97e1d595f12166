use clap::Parser;

/// Query API: the read models over HTTP.
#[derive(Parser)]
#[command(version)]
struct Args {
    #[arg(long, env = "QUERY_HTTP_ADDR", default_value = "127.0.0.1:8081")]
    http_addr: String,
    /// The read-model database the projectors maintain.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:15432/commerce"
    )]
    database_url: String,
    #[arg(long, env = "REDIS_URL", default_value = "redis://127.0.0.1:16379")]
    redis_url: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    events::service::init_tracing();
    let args = Args::parse();
    let listener = tokio::net::TcpListener::bind(&args.http_addr).await?;
    let config = query_api::Config {
        database_url: args.database_url,
        redis_url: args.redis_url,
    };
    query_api::run(config, listener, events::service::shutdown_on_signal()).await
}
