//! The query API as a separate process, configured from the environment
//! (the real command line's read-model variables), so the chaos test can
//! SIGKILL and pause it. It prints its HTTP address on the first line of
//! stdout.

use events::args::from_env;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _telemetry = events::telemetry::init("query-api");
    let config = query_api::Config {
        http: tests::test_http(),
        ..query_api::Config::new(from_env()?, tests::auth_config())
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!("{}", listener.local_addr()?);
    query_api::run(config, listener, events::service::shutdown_on_signal()).await
}
