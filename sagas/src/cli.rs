//! The saga worker's command line. `main.rs` only calls [`main`] and
//! chooses the exit code from its error. [`WorkerArgs::config`] is the one
//! conversion from its flags to a [`crate::Config`]; the tests' saga process
//! reads the same flags from the environment.

use std::ffi::OsString;
use std::time::Duration;

use clap::Parser;
use events::KafkaArgs;

/// Saga worker: runs the order fulfilment saga, its outbox relay, deadline
/// timer and the sandbox payment provider and carrier gateway.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// Address of the health and metrics endpoints.
    #[arg(long, env = "SAGAS_HTTP_ADDR", default_value = "127.0.0.1:8082")]
    http_addr: String,
    #[command(flatten)]
    worker: WorkerArgs,
}

/// The worker's flags other than its listener's address.
#[derive(clap::Args)]
pub struct WorkerArgs {
    /// The saga database (created when missing).
    #[arg(
        long,
        env = "SAGAS_DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:15432/commerce_sagas"
    )]
    database_url: String,
    /// Consumer group shared by all saga workers of a deployment.
    #[arg(long, env = "SAGAS_GROUP_ID", default_value = "sagas")]
    group_id: String,
    /// Length of a nominal second of the step timeouts, in milliseconds
    /// (1000 in production; smaller runs deadlines and capture retries faster).
    #[arg(long, env = "SAGAS_PACE_MS", default_value_t = 1000)]
    pace_ms: u32,
    /// Run the sandbox payment provider and carrier (development, tests,
    /// benchmarks). Without it the service refuses to start.
    #[arg(long, env = "SAGAS_SANDBOX", value_parser = clap::builder::BoolishValueParser::new(), default_value_t = false, num_args = 0..=1, default_missing_value = "true")]
    sandbox: bool,
    /// Latency of each sandbox provider and carrier call, in milliseconds.
    #[arg(long, env = "SAGAS_SANDBOX_LATENCY_MS", default_value_t = 5)]
    sandbox_latency_ms: u64,
    /// Open orders a customer may have at once; further ones are rejected
    /// (too_many_open_orders) before any stock is reserved. 0: no cap.
    #[arg(long, env = "SAGAS_MAX_OPEN_ORDERS", default_value_t = 20)]
    max_open_orders: u32,
    #[command(flatten)]
    kafka: KafkaArgs,
}

impl WorkerArgs {
    /// The worker's configuration these flags describe.
    pub fn config(self) -> crate::Config {
        crate::Config {
            kafka: self.kafka.into(),
            database_url: self.database_url,
            group_id: self.group_id,
            pace: crate::Pace {
                millis_per_second: self.pace_ms.max(1),
            },
            sandbox: self.sandbox,
            sandbox_latency: Duration::from_millis(self.sandbox_latency_ms),
            max_open_orders: self.max_open_orders,
        }
    }
}

/// A command line the worker refuses to run with (today: no payment
/// provider chosen); its message is one line.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Refused(&'static str);

/// Runs the command line `args` (the program name first).
pub async fn main<I, T>(args: I) -> anyhow::Result<()>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let _telemetry = events::telemetry::init("sagas");
    let args = Args::parse_from(args);
    let config = args.worker.config();
    if !config.sandbox {
        return Err(Refused(crate::NO_PROVIDER).into());
    }
    let listener = tokio::net::TcpListener::bind(&args.http_addr).await?;
    crate::run(config, listener, events::service::shutdown_on_signal()).await
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn a_command_line_without_a_provider_is_refused_not_exited() {
        let error = super::main(["sagas", "--sandbox=false"])
            .await
            .expect_err("started without a provider");
        assert!(error.is::<super::Refused>(), "{error:?}");
        assert!(error.to_string().contains("--sandbox"), "{error}");
    }
}
