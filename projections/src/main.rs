#[tokio::main]
async fn main() -> anyhow::Result<()> {
    projections::cli::main(std::env::args_os()).await
}
