//! The command service's and the query API's real command lines in one
//! binary, so tests can start them as an operator would:
//! `service-cli command [flags]`, `service-cli query-api [flags]`.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args_os().skip(1);
    let which = args.next().unwrap_or_default();
    let args = std::iter::once(which.clone()).chain(args);
    match which.to_str() {
        Some("command") => command::cli::main(args).await,
        Some("query-api") => query_api::cli::main(args).await,
        _ => anyhow::bail!("usage: service-cli command|query-api [flags]"),
    }
}
