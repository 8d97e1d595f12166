//! The command side: turns requests into events on Kafka.
//!
//! - [`aggregate`]: the aggregates as pure `decide`/`evolve` functions.
//! - [`processor`]: command processors, the single writer of each events
//!   partition (restore, decide, publish in one Kafka transaction).
//! - [`bus`]: how the HTTP API hands commands to the processors and awaits replies.
//! - [`http`]: the command HTTP API (axum).
//! - [`probe`]: transactional pipeline probes.
//! - [`cli`]: the binary's flags (`serve`, `mint-token`).
//!
//! [`run`] starts the service; the binary in `main.rs` only calls [`cli::main`].

pub mod aggregate;
pub use events::auth;
pub mod bus;
pub mod cli;
pub mod http;
pub mod openapi;
pub mod probe;
pub mod processor;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use events::KafkaConfig;
use events::service::{self, Health};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Everything the command service needs to run.
#[derive(Debug, Clone)]
pub struct Config {
    pub kafka: KafkaConfig,
    /// Stable per instance: transactional ids derive from it (zombie fencing).
    pub instance_id: String,
    /// Token keys, issuer, audience and lifetime (`events::auth`).
    pub auth: auth::AuthConfig,
    /// Base URL of the query API, for `Location` headers.
    pub query_api_url: String,
    /// How long a request waits for the processor's reply before answering 202.
    pub reply_wait: Duration,
    /// Processor lanes: group members whose Kafka transactions overlap.
    pub lanes: usize,
    /// Where the processor keeps its partitions' state on disk.
    pub state_dir: PathBuf,
    /// Timeouts, connection and rate limits, the optional ops listener.
    pub http: events::http::HttpConfig,
}

/// The state directory when none is configured: under the system's
/// temporary directory, since it is a cache the log can always rebuild.
pub fn default_state_dir() -> PathBuf {
    std::env::temp_dir().join("commerce-command-state")
}

/// Runs the command API and a command processor until `shutdown` is cancelled.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    // Refuses to start without a usable key (a short secret, a bad key file).
    let verifier = auth::JwtVerifier::new(&config.auth).context("loading the token keys")?;
    config
        .kafka
        .ensure_topics(&config.kafka.all_topics())
        .await
        .context("creating kafka topics")?;
    config
        .kafka
        .ensure_compacted_topics(&processor::snapshot::topics(&config.kafka))
        .await
        .context("creating the snapshots topics")?;
    let sink = bus::ReplySink::default();
    let processor = processor::spawn(
        processor::ProcessorConfig {
            kafka: config.kafka.clone(),
            group_id: format!("{}command-processors", config.kafka.topic_prefix),
            transactional_id: format!(
                "{}{}-processor",
                config.kafka.topic_prefix, config.instance_id
            ),
            lanes: config.lanes,
            max_batch: 500,
            dedup_window: Duration::from_secs(24 * 3600),
            dedup_capacity: 200_000,
            // An order's commands arrive within seconds of each other, so a
            // small hot set serves nearly every command from memory.
            hot_aggregates: 1_000,
            state_dir: config.state_dir.clone(),
            replies: Some(sink.clone()),
        },
        shutdown.clone(),
    )
    .context("starting the command processor")?;
    let processor_ready = processor.is_ready();
    let health = Health::new()
        .kafka(config.kafka.clone())
        .check("processor", move || {
            let ready = processor_ready();
            async move {
                if ready {
                    Ok(())
                } else {
                    Err("joining the group or restoring partitions")
                }
            }
        });
    tracing::info!(addr = %listener.local_addr()?, "command api listening");
    let bus = bus::KafkaBus::with_sink(config.kafka.clone(), sink, shutdown.clone())
        .await
        .context("starting the command bus")?;
    let verifier = Arc::new(verifier);
    let caller = verifier.clone();
    let app = http::router(http::AppState {
        bus: Arc::new(bus),
        auth: verifier,
        settings: Arc::new(http::Settings {
            query_api_url: config.query_api_url.clone(),
            reply_wait: config.reply_wait,
            signing: config.auth.signing.clone(),
        }),
        probes: Arc::new(probe::ProbeWriter::new(
            &config.kafka,
            format!("{}{}-probe", config.kafka.topic_prefix, config.instance_id),
        )),
    });
    let served = service::serve_api(
        listener,
        app,
        "command",
        health,
        &config.http,
        Arc::new(move |headers, extensions| caller.rate_key(headers, extensions)),
        shutdown,
    )
    .await;
    // The processor notices the cancelled token between batches.
    tokio::task::spawn_blocking(move || processor.join())
        .await
        .ok();
    served.context("serving http")
}
