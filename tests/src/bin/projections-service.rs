//! The projector as a separate process, configured from the environment
//! (the real command line's Kafka and read-model variables, and
//! `GROUP_ID`), so crash tests can SIGKILL it mid-batch. It prints its HTTP
//! address on the first line of stdout.

use events::KafkaArgs;
use events::args::{ViewsArgs, from_env};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _telemetry = events::telemetry::init("projections");
    let views: ViewsArgs = from_env()?;
    let config = projections::Config {
        auth: tests::auth_config(),
        kafka: from_env::<KafkaArgs>()?.into(),
        group_id: std::env::var("GROUP_ID").unwrap_or_default(),
        database_url: views.database_url,
        redis_url: views.redis_url,
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!("{}", listener.local_addr()?);
    projections::run(config, listener, events::service::shutdown_on_signal()).await
}
