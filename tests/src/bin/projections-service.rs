//! The projector as a separate process, configured from the environment, so
//! crash tests can SIGKILL it mid-batch. It prints its HTTP address on the
//! first line of stdout.

use events::KafkaConfig;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _telemetry = events::telemetry::init("projections");
    let env = |name: &str| std::env::var(name).unwrap_or_default();
    let kafka = KafkaConfig {
        brokers: env("KAFKA_BROKERS"),
        topic_prefix: env("TOPIC_PREFIX"),
        partitions: env("KAFKA_PARTITIONS").parse()?,
    };
    let config = projections::Config {
        auth: tests::auth_config(),
        kafka,
        group_id: env("GROUP_ID"),
        database_url: env("DATABASE_URL"),
        redis_url: env("REDIS_URL"),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!("{}", listener.local_addr()?);
    projections::run(config, listener, events::service::shutdown_on_signal()).await
}
