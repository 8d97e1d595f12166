//! The command service as a separate process, configured from the
//! environment (the real command line's variables: the Kafka ones and
//! `INSTANCE_ID`, `PROCESSOR_LANES`), with the tests' token keys and reply
//! wait, so crash tests can SIGKILL it mid-batch. It prints its HTTP address
//! on the first line of stdout.

use std::time::Duration;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _telemetry = events::telemetry::init("command");
    let args = events::args::from_env::<command::cli::ServeArgs>()?;
    let config = command::Config {
        reply_wait: Duration::from_secs(5),
        http: tests::test_http(),
        ..args.config(tests::auth_config())
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!("{}", listener.local_addr()?);
    command::run(config, listener, events::service::shutdown_on_signal()).await
}
