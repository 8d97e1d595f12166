#[tokio::main]
async fn main() -> anyhow::Result<()> {
    sagas::cli::main(std::env::args_os()).await
}
