//! The command service's command line: `serve` (the default) and
//! `mint-token`. `main.rs` only calls [`main`]. [`ServeArgs::config`] is the
//! one conversion from `serve`'s flags to a [`crate::Config`]; the tests'
//! command process reads the same flags from the environment.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand, ValueEnum};
use events::KafkaArgs;
use events::auth::args::{parse_duration, read_file};
use events::auth::{AuthArgs, Minter};
use events::command::{Principal, Role};

/// Command service: the command HTTP API and the command processors.
#[derive(Parser)]
#[command(version)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// `serve`'s flags also work without the subcommand.
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Run the command API and a command processor (the default).
    Serve(ServeArgs),
    /// Print a token signed with the JWT secret or a private key.
    MintToken(MintArgs),
}

/// `serve`'s flags.
#[derive(Args)]
pub struct ServeArgs {
    /// Address of the command HTTP API.
    #[arg(long, env = "COMMAND_HTTP_ADDR", default_value = "127.0.0.1:8080")]
    http_addr: String,
    /// Stable name of this instance; transactional ids derive from it.
    #[arg(long, env = "INSTANCE_ID", default_value = "command-0")]
    instance_id: String,
    #[command(flatten)]
    auth: AuthArgs,
    /// Base URL of the query API, for `Location` headers.
    #[arg(long, env = "QUERY_API_URL", default_value = "http://127.0.0.1:8081")]
    query_api_url: String,
    /// How long a request waits for the processor's reply before answering 202.
    #[arg(long, env = "REPLY_WAIT_MS", default_value_t = 3000)]
    reply_wait_ms: u64,
    /// Processor lanes of this instance: consumer group members with their
    /// own transactional ids, whose transactions overlap. Two by default:
    /// on a machine where the broker is the bottleneck, fewer and larger
    /// transactions carried a quarter more confirmed orders a second than
    /// four lanes (BENCHMARKS.md, "Two processor lanes").
    #[arg(long, env = "PROCESSOR_LANES", default_value_t = 2)]
    processor_lanes: usize,
    /// Where the processor keeps its partitions' state on disk: a cache
    /// rebuilt from the snapshots topic (default: a folder in the system's
    /// temporary directory).
    #[arg(long, env = "COMMAND_STATE_DIR")]
    state_dir: Option<PathBuf>,
    #[command(flatten)]
    kafka: KafkaArgs,
    #[command(flatten)]
    http: events::http::HttpArgs,
}

impl ServeArgs {
    /// The service's configuration these flags describe, with the token
    /// keys `auth` that [`ServeArgs`]'s key flags were resolved to.
    pub fn config(self, auth: events::auth::AuthConfig) -> crate::Config {
        crate::Config {
            kafka: self.kafka.into(),
            instance_id: self.instance_id,
            auth,
            query_api_url: self.query_api_url,
            reply_wait: Duration::from_millis(self.reply_wait_ms),
            lanes: self.processor_lanes,
            state_dir: self.state_dir.unwrap_or_else(crate::default_state_dir),
            http: self.http.into(),
        }
    }
}

#[derive(Args)]
struct MintArgs {
    #[arg(long, value_enum)]
    role: TokenRole,
    /// The customer id (role customer), or the operator's or carrier's name.
    #[arg(long)]
    sub: String,
    /// Lifetime, e.g. 30m, 1h, 7d (s, m, h, d); at most --jwt-max-lifetime.
    #[arg(long, default_value = "1h", value_parser = parse_duration)]
    ttl: Duration,
    /// PEM private key to sign with (algorithm: --jwt-algorithm) instead of
    /// the HS256 secret.
    #[arg(long, env = "JWT_PRIVATE_KEY_FILE")]
    jwt_private_key_file: Option<PathBuf>,
    #[command(flatten)]
    auth: AuthArgs,
}

#[derive(Clone, Copy, ValueEnum)]
enum TokenRole {
    Customer,
    Admin,
    Carrier,
}

/// Runs the command line `args` (the program name first).
pub async fn main<I, T>(args: I) -> anyhow::Result<()>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = Cli::parse_from(args);
    match cli.command.unwrap_or(Command::Serve(cli.serve)) {
        Command::Serve(args) => serve(args).await,
        Command::MintToken(args) => mint(args).await,
    }
}

async fn mint(args: MintArgs) -> anyhow::Result<()> {
    let role = match args.role {
        TokenRole::Customer => Role::Customer,
        TokenRole::Admin => Role::Admin,
        TokenRole::Carrier => Role::Carrier,
    };
    let principal = Principal {
        subject: args.sub,
        role,
    };
    let minter = match &args.jwt_private_key_file {
        Some(path) => Minter::from_private_pem(
            &read_file(path)?,
            args.auth.jwt_algorithm,
            &args.auth.policy(),
        )?,
        None => Minter::new(&args.auth.config().await?)?,
    };
    println!("{}", minter.mint(&principal, args.ttl)?);
    Ok(())
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let _telemetry = events::telemetry::init("command");
    let auth = args.auth.config().await.context("token keys")?;
    let listener = tokio::net::TcpListener::bind(&args.http_addr).await?;
    let config = args.config(auth);
    crate::run(config, listener, events::service::shutdown_on_signal()).await
}
