//! The projector SIGKILLed five times while 2,000 orders and their stock
//! reservations flow: afterwards every view row equals the fold of the log,
//! and nothing is counted twice (the catalog's reserved stock is a running
//! sum, so a record applied twice would show).
//!
//! This binary runs the projector as a child process of its own, so it
//! holds a single test.

use std::sync::Arc;
use std::time::Duration;

use command::bus::KafkaBus;
use events::AggregateType;
use events::domain::OrderEvent;
use tests::views::traffic::{self, create_items};
use tests::views::{assert_views_equal_the_fold, expected_sales, projector_process};
use tests::{TestEnv, eventually, log};

const ORDERS: usize = 2000;
const SKUS: usize = 5;
const KILLS: usize = 5;

fn sku(n: usize) -> String {
    format!("CRASH-{}", n % SKUS)
}

/// The `n`th order: one to three units, forty customers.
async fn one_order(bus: &KafkaBus, n: usize) {
    let quantity = 1 + (n % 3) as u32;
    traffic::one_order(bus, n, &format!("c{}", n % 40), &sku(n), quantity).await;
}

/// The projector in a process of its own.
struct Projector {
    process: tokio::process::Child,
    addr: String,
}

impl Projector {
    async fn start(env: &TestEnv) -> Projector {
        let binary = env!("CARGO_BIN_EXE_projections-service");
        let (process, addr) = projector_process(binary, env, &env.redis_url).await;
        Projector { process, addr }
    }

    async fn kill(mut self) {
        self.process.start_kill().unwrap();
        self.process.wait().await.unwrap();
    }
}

#[tokio::test]
async fn a_projector_killed_five_times_still_equals_the_fold() {
    let env = TestEnv::new();
    let _command = env.spawn_command().await;
    let bus = Arc::new(
        KafkaBus::start(env.kafka.clone(), env.shutdown.child_token())
            .await
            .unwrap(),
    );
    create_items(&bus, &(0..SKUS).map(sku).collect::<Vec<_>>()).await;
    let mut projector = Projector::start(&env).await;

    // Forty clients, each sending its share of the orders.
    let mut load = tokio::task::JoinSet::new();
    for client in 0..40 {
        let bus = bus.clone();
        load.spawn(async move {
            for n in (client..ORDERS).step_by(40) {
                one_order(&bus, n).await;
            }
        });
    }
    for _ in 0..KILLS {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        projector.kill().await;
        projector = Projector::start(&env).await;
    }
    while let Some(done) = load.join_next().await {
        done.unwrap();
    }

    let pool = projections::db::connect_lazy(&env.views_db_url).unwrap();
    assert_views_equal_the_fold(&env, &pool).await;
    let (dead,): (i64,) = sqlx::query_as("SELECT count(*) FROM dead_letters")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(dead, 0);
    // Caught up: the projector reports no lag, in its readiness details and
    // in its metrics.
    let http = reqwest::Client::new();
    let ready = format!("http://{}/health/ready", projector.addr);
    let caught_up = eventually(Duration::from_secs(30), || async {
        let body: serde_json::Value = http.get(&ready).send().await.ok()?.json().await.ok()?;
        let orders = &body["details"]["projections"]["orders"];
        (orders["lag_events"] == 0 && orders["lag_seconds"] == 0.0).then_some(())
    })
    .await;
    assert!(caught_up.is_some(), "the projector never reported zero lag");
    let metrics = http
        .get(format!("http://{}/metrics", projector.addr))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("projection_lag_events{"), "{metrics}");
    assert!(metrics.contains("projection_lag_seconds{"), "{metrics}");
    let log = log::<OrderEvent>(&env, AggregateType::Order).await;
    assert_eq!(log.len(), ORDERS, "orders in the log");
    assert_eq!(
        expected_sales(&log).0,
        800,
        "half the orders confirmed, a fifth of those cancelled"
    );
    projector.kill().await;
}
