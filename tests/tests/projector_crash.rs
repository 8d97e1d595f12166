//! The projector SIGKILLed five times while 2,000 orders and their stock
//! reservations flow: afterwards every view row equals the fold of the log,
//! and nothing is counted twice (the catalog's reserved stock is a running
//! sum, so a record applied twice would show).
//!
//! This binary runs the projector as a child process of its own, so it
//! holds a single test.

use std::sync::Arc;
use std::time::Duration;

use command::bus::{CommandBus, KafkaBus};
use events::AggregateType;
use events::command::{DomainCommand, Principal, Role};
use events::domain::{
    CatalogCommand, Currency, CustomerId, Money, OrderCommand, OrderEvent, OrderId, OrderLine,
    PricedLine, Sku,
};
use tests::views::{assert_views_equal_the_fold, expected_sales};
use tests::{TestEnv, eventually, log, spawn_process};
use uuid::Uuid;

const ORDERS: usize = 2000;
const SKUS: usize = 5;
const KILLS: usize = 5;

fn usd(minor: i64) -> Money {
    Money::new(minor, Currency::new("USD").unwrap())
}

/// Produces a command without waiting for its outcome.
async fn fire(bus: &KafkaBus, id: &str, role: Role, command: DomainCommand) {
    fire_as(bus, id, role, "ops", command).await;
}

/// Produces a command of `subject` without waiting for its outcome.
async fn fire_as(bus: &KafkaBus, id: &str, role: Role, subject: &str, command: DomainCommand) {
    bus.dispatch(
        tests::envelope(
            id,
            Principal {
                subject: subject.into(),
                role,
            },
            command,
        ),
        Duration::ZERO,
    )
    .await
    .unwrap();
}

fn sku(n: usize) -> String {
    format!("CRASH-{}", n % SKUS)
}

/// The commands of the `n`th order: placed, its stock reserved, priced, and
/// every other one confirmed (every tenth then cancelled).
async fn one_order(bus: &KafkaBus, n: usize) {
    let order_id = OrderId::from(Uuid::now_v7());
    let id = order_id.to_string();
    let quantity = 1 + (n % 3) as u32;
    let customer = format!("c{}", n % 40);
    let place = OrderCommand::PlaceOrder {
        customer_id: CustomerId::new(customer.clone()).unwrap(),
        currency: Currency::new("USD").unwrap(),
        lines: vec![OrderLine {
            sku: Sku::new(sku(n)).unwrap(),
            quantity,
        }],
        shipping_address: tests::processor::address(),
        payment_token: "tok_ok".into(),
    };
    let place = DomainCommand::Order(place);
    fire_as(bus, &id, Role::Customer, &customer, place).await;
    let reserve = CatalogCommand::ReserveStock { order_id, quantity };
    fire(
        bus,
        &sku(n),
        Role::Admin,
        DomainCommand::CatalogItem(reserve),
    )
    .await;
    let price = OrderCommand::PriceOrder {
        lines: vec![PricedLine {
            sku: Sku::new(sku(n)).unwrap(),
            quantity,
            unit_price: usd(100),
        }],
        total: usd(100 * i64::from(quantity)),
    };
    fire(bus, &id, Role::System, DomainCommand::Order(price)).await;
    if matches!(n % 2, 0) {
        let confirm = DomainCommand::Order(OrderCommand::ConfirmOrder);
        fire(bus, &id, Role::System, confirm).await;
    }
    if matches!(n % 10, 0) {
        let cancel = OrderCommand::CancelOrder {
            reason: "refunded".into(),
        };
        fire(bus, &id, Role::System, DomainCommand::Order(cancel)).await;
    }
}

/// The projector in a process of its own.
struct Projector {
    process: tokio::process::Child,
    addr: String,
}

impl Projector {
    async fn start(env: &TestEnv) -> Projector {
        let vars = [
            ("KAFKA_BROKERS", env.kafka.brokers.clone()),
            ("TOPIC_PREFIX", env.kafka.topic_prefix.clone()),
            ("KAFKA_PARTITIONS", env.kafka.partitions.to_string()),
            ("GROUP_ID", format!("t{}-projections", env.id)),
            ("DATABASE_URL", env.views_db_url.clone()),
            ("REDIS_URL", env.redis_url.clone()),
        ];
        let (process, addr) = spawn_process(env!("CARGO_BIN_EXE_projections-service"), &vars).await;
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
    for n in 0..SKUS {
        let create = CatalogCommand::CreateItem {
            name: "Mug".into(),
            unit_price: usd(100),
            initial_stock: 1_000_000,
        };
        fire(
            &bus,
            &sku(n),
            Role::Admin,
            DomainCommand::CatalogItem(create),
        )
        .await;
    }
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
