//! An axum handler with no I/O, served by a separate process (so it does not
//! share a runtime with the load generator, as the real services do not):
//! the ceiling of the HTTP stack and the load generator together.

use std::process::Stdio;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::http::header;
use axum::routing::get;
use tokio::process::{Child, Command};

use crate::fixtures;
use crate::load;
use crate::stats::Measured;

/// Serves `GET /orders/{id}` with a fixed order-sized JSON document.
pub async fn serve(addr: &str) -> anyhow::Result<()> {
    let body: &'static [u8] = fixtures::order_document().leak();
    let app = Router::new()
        .route(
            "/orders/{id}",
            get(move || async move { ([(header::CONTENT_TYPE, "application/json")], body) }),
        )
        .route("/health/live", get(|| async { "ok" }));
    let listener = tokio::net::TcpListener::bind(addr).await?;
    axum::serve(listener, app).await?;
    Ok(())
}

/// Starts `bench noop-server` on a free port and waits until it answers.
async fn start() -> anyhow::Result<(Child, String)> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let addr = format!("127.0.0.1:{port}");
    let child = Command::new(std::env::current_exe()?)
        .args(["noop-server", "--addr", &addr])
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .context("starting the no-I/O server")?;
    let url = format!("http://{addr}");
    let client = load::http_client(1);
    for _ in 0..100 {
        if client
            .get(format!("{url}/health/live"))
            .send()
            .await
            .is_ok()
        {
            return Ok((child, url));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    anyhow::bail!("the no-I/O server did not start on {addr}")
}

/// Requests per second and latency of the no-I/O handler at `concurrency`.
pub async fn noop(concurrency: usize, duration: Duration) -> anyhow::Result<Measured> {
    let (mut child, url) = start().await?;
    let pid = child.id().context("the no-I/O server's pid")?;
    let client = load::http_client(concurrency);
    let url = format!("{url}/orders/{}", uuid::Uuid::new_v4());
    let services = [("noop-server".to_owned(), pid)];
    let measured = load::closed_loop(concurrency, duration / 5, duration, &services, move |_| {
        let request = client.get(&url);
        async move {
            match request.send().await {
                Ok(r) => r.status().is_success() && r.bytes().await.is_ok(),
                Err(_) => false,
            }
        }
    })
    .await;
    child.kill().await.ok();
    Ok(measured)
}
