//! Two saga workers sharing one consumer group, one of them SIGKILLed at a
//! random moment six times while 500 orders with mixed sandbox tokens go
//! through them: afterwards every saga is terminal and no effect happened
//! twice (no second reservation, capture or refund), no stock is left
//! reserved, and the saga database's lists (deadlines, unpublished outbox
//! rows) match its rows.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use events::AggregateType;
use events::domain::{CatalogEvent, OrderEvent, PaymentEvent};
use tests::shop::{OrderSpec, Shop, saga_status, start_sagas_process};
use tests::{TEST_PACE_MS, TestEnv, eventually, log};
use tokio::sync::Semaphore;

const ORDERS: usize = 500;
const SKUS: [&str; 5] = ["S-1", "S-2", "S-3", "S-4", "S-5"];

async fn start_worker(env: &TestEnv) -> tokio::process::Child {
    start_sagas_process(env!("CARGO_BIN_EXE_sagas-service"), env, TEST_PACE_MS).await
}

/// A random duration in `[from, to)` milliseconds.
fn random_millis(from: u64, to: u64) -> Duration {
    let r = uuid::Uuid::new_v4().as_u128() as u64;
    Duration::from_millis(from + r % (to - from))
}

fn token(n: usize) -> (&'static str, &'static str) {
    match n % 10 {
        5 => ("tok_decline", "US"),
        6 => ("tok_flaky", "US"),
        7 => ("tok_capture_fail", "US"),
        8 => ("tok_ok", "ZZ"),
        9 => ("tok_no_response", "US"),
        _ => ("tok_ok", "US"),
    }
}

#[tokio::test]
async fn sagas_end_and_nothing_happens_twice_when_workers_are_killed() {
    let env = TestEnv::new();
    let shop = Arc::new(Shop::start(&env).await);
    for sku in SKUS {
        shop.create_item(sku, 700, 10_000).await;
    }
    // Two workers share the partitions; each round kills one of them, so
    // the other takes its partitions over mid-saga and gives some back.
    let mut workers = [start_worker(&env).await, start_worker(&env).await];

    let placing = {
        let shop = shop.clone();
        tokio::spawn(async move {
            let permits = Arc::new(Semaphore::new(4));
            let mut placed = tokio::task::JoinSet::new();
            for n in 0..ORDERS {
                let permit = permits.clone().acquire_owned().await.unwrap();
                let shop = shop.clone();
                placed.spawn(async move {
                    let (token, country) = token(n);
                    let lines = [(SKUS[n % 5], 1), (SKUS[(n + 1) % 5], 2)];
                    let spec = OrderSpec {
                        customer: "crash",
                        lines: &lines[..1 + n % 2],
                        token,
                        country,
                    };
                    let id = shop.place(&spec, &format!("crash-{n}")).await;
                    drop(permit);
                    id
                });
            }
            placed.join_all().await
        })
    };
    for round in 0..6 {
        tokio::time::sleep(random_millis(200, 1500)).await;
        let worker = &mut workers[round % 2];
        worker.start_kill().unwrap();
        worker.wait().await.unwrap();
        *worker = start_worker(&env).await;
    }
    let order_ids = placing.await.unwrap();
    assert_eq!(order_ids.len(), ORDERS);

    let terminal = ["completed", "compensated"];
    for id in &order_ids {
        let ended = eventually(Duration::from_secs(180), || async {
            let status = saga_status(&env, id).await?;
            terminal.contains(&status.as_str()).then_some(())
        })
        .await;
        let status = saga_status(&env, id).await;
        assert!(ended.is_some(), "the saga of {id} ended {status:?}");
    }
    // The last compensations' commands are applied before the log is read.
    tokio::time::sleep(Duration::from_secs(2)).await;
    nothing_happened_twice(&env, &order_ids).await;
    lists_match_the_rows(&env).await;
    for worker in &mut workers {
        worker.start_kill().unwrap();
    }
}

/// The lists the workers keep beside the rows survived the kills: the
/// deadlines' index has exactly each saga's deadline, and every outbox row
/// is published (the relay took over what the killed workers' hand-offs
/// lost), so none is left pending.
async fn lists_match_the_rows(env: &TestEnv) {
    let pool = sqlx::PgPool::connect(&env.sagas_db_url).await.unwrap();
    let (unlisted, stale): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM sagas s WHERE s.deadline_at IS NOT NULL AND NOT EXISTS
                    (SELECT 1 FROM saga_deadlines d
                     WHERE d.order_id = s.order_id AND d.deadline_at = s.deadline_at)),
                (SELECT count(*) FROM saga_deadlines d WHERE NOT EXISTS
                    (SELECT 1 FROM sagas s
                     WHERE s.order_id = d.order_id AND s.deadline_at = d.deadline_at))",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(
        (unlisted, stale),
        (0, 0),
        "deadlines unlisted, listed stale"
    );
    let published = eventually(Duration::from_secs(30), || async {
        let pending: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox_pending")
            .fetch_one(&pool)
            .await
            .ok()?;
        (pending == 0).then_some(())
    })
    .await;
    assert!(published.is_some(), "outbox rows left unpublished");
    pool.close().await;
}

async fn nothing_happened_twice(env: &TestEnv, order_ids: &[String]) {
    let payments = log::<PaymentEvent>(env, AggregateType::Payment).await;
    for (order, events) in &payments {
        let count =
            |pick: fn(&PaymentEvent) -> bool| events.iter().filter(|(_, e)| pick(e)).count();
        let captures = count(|e| matches!(e, PaymentEvent::PaymentCaptured { .. }));
        let refunds = count(|e| matches!(e, PaymentEvent::PaymentRefunded { .. }));
        assert!(captures <= 1 && refunds <= 1, "payment {order}: {events:?}");
    }
    let catalog = log::<CatalogEvent>(env, AggregateType::CatalogItem).await;
    for (sku, events) in &catalog {
        let mut held: HashMap<String, i64> = HashMap::new();
        let mut reservations: HashMap<String, usize> = HashMap::new();
        for (_, event) in events {
            match event {
                CatalogEvent::StockReserved {
                    order_id, quantity, ..
                } => {
                    *reservations.entry(order_id.to_string()).or_default() += 1;
                    *held.entry(order_id.to_string()).or_default() += i64::from(*quantity);
                }
                CatalogEvent::StockReleased { order_id, quantity }
                | CatalogEvent::StockCommitted { order_id, quantity } => {
                    *held.entry(order_id.to_string()).or_default() -= i64::from(*quantity);
                }
                _ => {}
            }
        }
        assert!(
            reservations.values().all(|n| *n == 1),
            "{sku}: a second reservation"
        );
        assert!(
            held.values().all(|q| *q == 0),
            "{sku}: stock left reserved: {held:?}"
        );
    }
    // Every order ended where its saga did.
    let orders = log::<OrderEvent>(env, AggregateType::Order).await;
    for id in order_ids {
        let events = &orders[id];
        let last = events.iter().rev().find_map(|(_, e)| match e {
            OrderEvent::OrderConfirmed => Some("confirmed"),
            OrderEvent::OrderRejected { .. } => Some("rejected"),
            OrderEvent::OrderCancelled { .. } => Some("cancelled"),
            _ => None,
        });
        let saga = saga_status(env, id).await.unwrap();
        let expected = if saga == "completed" {
            "confirmed"
        } else {
            "rejected"
        };
        assert_eq!(
            last,
            Some(expected),
            "order {id} with a {saga} saga: {events:?}"
        );
        let captured = payments.get(id).is_some_and(|p| {
            p.iter()
                .any(|(_, e)| matches!(e, PaymentEvent::PaymentCaptured { .. }))
        });
        assert_eq!(
            captured,
            saga == "completed",
            "order {id}: captured but {saga}"
        );
    }
}
