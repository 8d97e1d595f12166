//! The command service as a separate process, configured from the
//! environment, so crash tests can SIGKILL it mid-batch. It prints its HTTP
//! address on the first line of stdout.

use std::time::Duration;

use events::KafkaArgs;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _telemetry = events::telemetry::init("command");
    let env = |name: &str| std::env::var(name).unwrap_or_default();
    let kafka = events::args::from_env::<KafkaArgs>()?.into();
    let config = command::Config {
        kafka,
        instance_id: env("INSTANCE_ID"),
        auth: tests::auth_config(),
        query_api_url: "http://127.0.0.1:8081".into(),
        reply_wait: Duration::from_secs(5),
        lanes: 2,
        state_dir: command::default_state_dir(),
        http: tests::test_http(),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!("{}", listener.local_addr()?);
    command::run(config, listener, events::service::shutdown_on_signal()).await
}
