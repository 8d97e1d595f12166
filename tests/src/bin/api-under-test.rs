//! The whole system on a fresh slice of the stack, for the API fuzzer
//! (`scripts/fuzz`): starts the four services in-process, seeds one catalog
//! item, prints one JSON line (both APIs' base URLs and an admin and a
//! customer token) and runs until its stdin closes or it is signalled. Its
//! topics and databases are removed when it stops.

use std::time::Duration;

use events::command::Role;
use tests::TestEnv;
use tests::auth::token;
use tokio::io::AsyncReadExt;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _telemetry = events::telemetry::init("api-under-test");
    let env = TestEnv::new();
    let command = env.spawn_command().await;
    env.spawn_projections().await;
    env.spawn_sagas().await;
    let query = env.spawn_query_api().await;
    let admin = token(Role::Admin, "ops");
    let seeded = command
        .http
        .post(command.url("/catalog/items"))
        .bearer_auth(&admin)
        .json(&serde_json::json!({"sku": "MUG-1", "name": "Mug", "unit_price": 1250, "currency": "USD", "stock": 1000}))
        .timeout(Duration::from_secs(30))
        .send()
        .await?;
    anyhow::ensure!(
        seeded.status().is_success(),
        "seeding the catalog: {}",
        seeded.status()
    );
    println!(
        "{}",
        serde_json::json!({
            "command": command.url(""),
            "query": query.url(""),
            "admin": admin,
            "customer": token(Role::Customer, "alice"),
        })
    );
    let shutdown = events::service::shutdown_on_signal();
    let mut stdin = tokio::io::stdin();
    let mut sink = [0u8; 64];
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            read = stdin.read(&mut sink) => match read {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            },
        }
    }
    drop(env);
    Ok(())
}
