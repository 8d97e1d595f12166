use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use events::KafkaArgs;
use events::command::{Principal, Role};

const DEV_SECRET: &str = "dev-secret-do-not-use-in-production";

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
    /// Print a development token signed with the JWT secret.
    MintToken(MintArgs),
}

#[derive(Args)]
struct ServeArgs {
    /// Address of the command HTTP API.
    #[arg(long, env = "COMMAND_HTTP_ADDR", default_value = "127.0.0.1:8080")]
    http_addr: String,
    /// Stable name of this instance; transactional ids derive from it.
    #[arg(long, env = "INSTANCE_ID", default_value = "command-0")]
    instance_id: String,
    #[command(flatten)]
    secret: SecretArgs,
    /// Base URL of the query API, for `Location` headers.
    #[arg(long, env = "QUERY_API_URL", default_value = "http://127.0.0.1:8081")]
    query_api_url: String,
    /// How long a request waits for the processor's reply before answering 202.
    #[arg(long, env = "REPLY_WAIT_MS", default_value_t = 3000)]
    reply_wait_ms: u64,
    /// Processor lanes of this instance: consumer group members with their
    /// own transactional ids, whose transactions overlap.
    #[arg(long, env = "PROCESSOR_LANES", default_value_t = 4)]
    processor_lanes: usize,
    /// Where the processor keeps its partitions' state on disk: a cache
    /// rebuilt from the snapshots topic (default: a folder in the system's
    /// temporary directory).
    #[arg(long, env = "COMMAND_STATE_DIR")]
    state_dir: Option<std::path::PathBuf>,
    #[command(flatten)]
    kafka: KafkaArgs,
    #[command(flatten)]
    http: events::http::HttpArgs,
}

#[derive(Args)]
struct SecretArgs {
    /// HS256 secret that signs and verifies bearer tokens.
    #[arg(long, env = "JWT_SECRET", default_value = DEV_SECRET, hide_env_values = true)]
    jwt_secret: String,
}

#[derive(Args)]
struct MintArgs {
    #[arg(long, value_enum)]
    role: TokenRole,
    /// The customer id (role customer), or the operator's or carrier's name.
    #[arg(long)]
    sub: String,
    /// Lifetime, e.g. 30m, 1h, 7d (s, m, h, d).
    #[arg(long, default_value = "1h", value_parser = parse_ttl)]
    ttl: Duration,
    #[command(flatten)]
    secret: SecretArgs,
}

#[derive(Clone, Copy, ValueEnum)]
enum TokenRole {
    Customer,
    Admin,
    Carrier,
}

fn parse_ttl(text: &str) -> Result<Duration, String> {
    let invalid = || format!("invalid ttl {text:?}: expected e.g. 30m, 1h or 7d");
    let unit_at = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(invalid)?;
    let (number, unit) = text.split_at(unit_at);
    let unit_seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(invalid()),
    };
    let number: u64 = number.parse().map_err(|_| invalid())?;
    Ok(Duration::from_secs(number.saturating_mul(unit_seconds)))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Serve(cli.serve)) {
        Command::Serve(args) => serve(args).await,
        Command::MintToken(args) => {
            let role = match args.role {
                TokenRole::Customer => Role::Customer,
                TokenRole::Admin => Role::Admin,
                TokenRole::Carrier => Role::Carrier,
            };
            let principal = Principal {
                subject: args.sub,
                role,
            };
            println!(
                "{}",
                command::auth::mint_hs256(args.secret.jwt_secret.as_bytes(), &principal, args.ttl)?
            );
            Ok(())
        }
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let _telemetry = events::telemetry::init("command");
    if args.secret.jwt_secret == DEV_SECRET {
        tracing::warn!("using the development JWT secret; set JWT_SECRET in production");
    }
    let listener = tokio::net::TcpListener::bind(&args.http_addr).await?;
    let config = command::Config {
        kafka: args.kafka.into(),
        instance_id: args.instance_id,
        jwt_secret: args.secret.jwt_secret,
        query_api_url: args.query_api_url,
        reply_wait: Duration::from_millis(args.reply_wait_ms),
        lanes: args.processor_lanes,
        state_dir: args.state_dir.unwrap_or_else(command::default_state_dir),
        http: args.http.into(),
    };
    command::run(config, listener, events::service::shutdown_on_signal()).await
}
