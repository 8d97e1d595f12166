use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    bench::main(bench::Cli::parse()).await
}
