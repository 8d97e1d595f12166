//! The query API as a separate process, configured from the environment, so
//! the chaos test can SIGKILL and pause it. It prints its HTTP address on
//! the first line of stdout.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _telemetry = events::telemetry::init("query-api");
    let env = |name: &str| std::env::var(name).unwrap_or_default();
    let config = query_api::Config {
        http: tests::test_http(),
        ..query_api::Config::new(env("DATABASE_URL"), env("REDIS_URL"), tests::auth_config())
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!("{}", listener.local_addr()?);
    query_api::run(config, listener, events::service::shutdown_on_signal()).await
}
