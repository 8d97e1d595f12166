#[tokio::main]
async fn main() -> anyhow::Result<()> {
    command::cli::main(std::env::args_os()).await
}
