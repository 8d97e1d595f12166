//! Deadlines mean the other side did not answer in time, never that the
//! saga service had not yet read an answer waiting in the log: a backlog
//! several times longer than the deadlines, and an outage of the saga
//! service while orders flow, end with every good order confirmed
//! (`saga_deadlines` checks the timer's rule itself). Killing it twice while
//! orders on every sandbox path flow ends each one as its path implies: a
//! provider call in flight when the service died is made again after the
//! restart, never left to the saga's deadline.

use std::sync::Arc;
use std::time::Duration;

use tests::TestEnv;
use tests::shop::{OrderSpec, Shop, saga_state, start_sagas_process, terminal_saga};

const SAGAS: &str = env!("CARGO_BIN_EXE_sagas-service");
/// `scripts/start --demo`'s pace: reserving may take 3 s, authorizing 6 s.
const DEMO_PACE_MS: u32 = 100;

const LINES: [(&str, u32); 2] = [("MUG", 1), ("TEE", 2)];

/// Good orders only: every fifth pays with `tok_flaky`.
fn good(n: usize) -> (OrderSpec<'static>, &'static str) {
    let token = if n % 5 == 4 { "tok_flaky" } else { "tok_ok" };
    let spec = OrderSpec {
        customer: "burst",
        lines: &LINES[..1 + n % 2],
        token,
        country: "US",
    };
    (spec, "completed")
}

/// Every sandbox path in turn, and the terminal saga state it implies.
fn every_path(n: usize) -> (OrderSpec<'static>, &'static str) {
    let (token, country, ends) = match n % 5 {
        0 => ("tok_ok", "US", "completed"),
        1 => ("tok_capture_fail", "US", "compensated"),
        2 => ("tok_flaky", "US", "completed"),
        3 => ("tok_decline", "US", "compensated"),
        _ => ("tok_ok", "ZZ", "compensated"),
    };
    let spec = OrderSpec {
        customer: "paths",
        lines: &LINES[..1 + n % 2],
        token,
        country,
    };
    (spec, ends)
}

type Path = fn(usize) -> (OrderSpec<'static>, &'static str);

/// Places orders one after another every `every` until `until`; answers
/// their ids and the saga state each must end in.
async fn place_until(
    shop: &Shop,
    key: &str,
    path: Path,
    every: Duration,
    until: Duration,
) -> Vec<(String, &'static str)> {
    let end = tokio::time::Instant::now() + until;
    let mut orders = Vec::new();
    while tokio::time::Instant::now() < end {
        let n = orders.len();
        let (spec, ends) = path(n);
        orders.push((shop.place(&spec, &format!("{key}-{n}")).await, ends));
        tokio::time::sleep(every).await;
    }
    orders
}

async fn all_ended_as_expected(env: &TestEnv, orders: &[(String, &str)], limit: Duration) {
    for (id, expected) in orders {
        let ended = terminal_saga(env, id, limit).await;
        assert_eq!(
            &ended,
            expected,
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
        good,
        Duration::from_millis(50),
        Duration::from_secs(20),
    )
    .await;
    let mut sagas = start_sagas_process(SAGAS, &env, DEMO_PACE_MS).await;
    all_ended_as_expected(&env, &ids, Duration::from_secs(60)).await;
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
            place_until(&shop, "outage", good, every, Duration::from_secs(12)).await
        })
    };
    tokio::time::sleep(Duration::from_secs(3)).await;
    sagas.start_kill().unwrap();
    sagas.wait().await.unwrap();
    tokio::time::sleep(Duration::from_secs(4)).await;
    let mut sagas = start_sagas_process(SAGAS, &env, 1000).await;
    let ids = placing.await.unwrap();
    all_ended_as_expected(&env, &ids, Duration::from_secs(60)).await;
    sagas.start_kill().unwrap();
}

/// The pace of this test: a step's deadline is a quarter of production's
/// (capturing may take 15 s, capture retries wait 2.5, 5 and 10 s).
const QUICK_PACE_MS: u32 = 250;

#[tokio::test]
async fn two_crashes_of_the_saga_service_leave_every_path_ending_as_it_should() {
    let env = TestEnv::new();
    let shop = shop_with_items(&env).await;
    let mut sagas = start_sagas_process(SAGAS, &env, QUICK_PACE_MS).await;
    let placing = {
        let shop = shop.clone();
        tokio::spawn(async move {
            let every = Duration::from_millis(40);
            place_until(&shop, "paths", every_path, every, Duration::from_secs(20)).await
        })
    };
    // A SIGKILLed member stays in its consumer groups until its session
    // times out (10 s), and the restarted one gets no partitions before
    // that: the second crash waits until the first restart has them, so each
    // outage is one crash's (about 11 s), inside the authorization deadline
    // at this pace (15 s). Two crashes closer than that are one outage of
    // the sum of their sessions, which a deadline rightly counts.
    for up_for in [5, 12] {
        tokio::time::sleep(Duration::from_secs(up_for)).await;
        sagas.start_kill().unwrap();
        sagas.wait().await.unwrap();
        tokio::time::sleep(Duration::from_secs(1)).await;
        sagas = start_sagas_process(SAGAS, &env, QUICK_PACE_MS).await;
    }
    let orders = placing.await.unwrap();
    all_ended_as_expected(&env, &orders, Duration::from_secs(90)).await;
    sagas.start_kill().unwrap();
}
