//! Deadlines mean the other side did not answer in time, never that the
//! saga service had not yet read an answer waiting in the log: a backlog
//! several times longer than the deadlines, and an outage of the saga
//! service while orders flow, end with every good order confirmed
//! (`saga_deadlines` checks the timer's rule itself).

use std::sync::Arc;
use std::time::Duration;

use tests::shop::{OrderSpec, Shop, saga_state, saga_status, start_sagas_process};
use tests::{TestEnv, eventually};

const SAGAS: &str = env!("CARGO_BIN_EXE_sagas-service");
/// `scripts/start --demo`'s pace: reserving may take 3 s, authorizing 6 s.
const DEMO_PACE_MS: u32 = 100;

fn spec(n: usize) -> (OrderSpec<'static>, usize) {
    const LINES: [(&str, u32); 2] = [("MUG", 1), ("TEE", 2)];
    let token = if n % 5 == 4 { "tok_flaky" } else { "tok_ok" };
    let spec = OrderSpec {
        customer: "burst",
        lines: &LINES[..1 + n % 2],
        token,
        country: "US",
    };
    (spec, n)
}

/// Places orders one after another every `every` until `until`; answers their ids.
async fn place_until(shop: &Shop, key: &str, every: Duration, until: Duration) -> Vec<String> {
    let end = tokio::time::Instant::now() + until;
    let mut ids = Vec::new();
    while tokio::time::Instant::now() < end {
        let (spec, n) = spec(ids.len());
        ids.push(shop.place(&spec, &format!("{key}-{n}")).await);
        tokio::time::sleep(every).await;
    }
    ids
}

async fn all_completed(env: &TestEnv, ids: &[String], limit: Duration) {
    for id in ids {
        let ended = eventually(limit, || async {
            let status = saga_status(env, id).await?;
            (status != "running").then_some(status)
        })
        .await;
        assert_eq!(
            ended.as_deref(),
            Some("completed"),
            "the saga of {id}: {}",
            saga_state(env, id).await
        );
    }
}

async fn shop_with_items(env: &TestEnv) -> Arc<Shop> {
    let shop = Shop::start(env).await;
    shop.create_item("MUG", 1000, 100_000).await;
    shop.create_item("TEE", 1500, 100_000).await;
    Arc::new(shop)
}

#[tokio::test]
async fn a_backlog_longer_than_every_deadline_still_confirms_every_good_order() {
    let env = TestEnv::new();
    let shop = shop_with_items(&env).await;
    // 20 s of orders while no saga service runs: over three times the
    // longest forward deadline at this pace (6 s).
    let ids = place_until(
        &shop,
        "backlog",
        Duration::from_millis(50),
        Duration::from_secs(20),
    )
    .await;
    let mut sagas = start_sagas_process(SAGAS, &env, DEMO_PACE_MS).await;
    all_completed(&env, &ids, Duration::from_secs(60)).await;
    sagas.start_kill().unwrap();
}

#[tokio::test]
async fn an_outage_shorter_than_the_deadlines_at_production_pace_compensates_nothing() {
    let env = TestEnv::new();
    let shop = shop_with_items(&env).await;
    let mut sagas = start_sagas_process(SAGAS, &env, 1000).await;
    let placing = {
        let shop = shop.clone();
        tokio::spawn(async move {
            let every = Duration::from_millis(50);
            place_until(&shop, "outage", every, Duration::from_secs(12)).await
        })
    };
    tokio::time::sleep(Duration::from_secs(3)).await;
    sagas.start_kill().unwrap();
    sagas.wait().await.unwrap();
    tokio::time::sleep(Duration::from_secs(4)).await;
    let mut sagas = start_sagas_process(SAGAS, &env, 1000).await;
    let ids = placing.await.unwrap();
    all_completed(&env, &ids, Duration::from_secs(60)).await;
    sagas.start_kill().unwrap();
}
