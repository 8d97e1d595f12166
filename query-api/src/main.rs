#[tokio::main]
async fn main() -> anyhow::Result<()> {
    query_api::cli::main(std::env::args_os()).await
}
