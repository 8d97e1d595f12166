//! The projector as a separate process, configured from the environment
//! (the real command line's Kafka and read-model variables, and
//! `GROUP_ID`), so crash tests can SIGKILL it mid-batch. It prints its HTTP
//! address on the first line of stdout.

use events::KafkaArgs;
use events::args::from_env;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _telemetry = events::telemetry::init("projections");
    let config = projections::Config::new(
        from_env::<KafkaArgs>()?.into(),
        std::env::var("GROUP_ID").unwrap_or_default(),
        from_env()?,
        tests::auth_config(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!("{}", listener.local_addr()?);
    projections::run(config, listener, events::service::shutdown_on_signal()).await
}
