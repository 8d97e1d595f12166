//! The command processors on the real stack, driven through the Kafka bus
//! (the same path the command API uses): decisions, duplicates, optimistic
//! concurrency, contention on one aggregate, SIGKILL mid-batch, and two
//! instances sharing the partitions through rebalances and a zombie.

use std::time::Duration;

use command::bus::KafkaBus;
use events::command::{CommandEnvelope, Outcome, RejectionKind, codes};
use events::domain::{CatalogCommand, CatalogEvent, OrderId};
use tests::processor::{
    Instance, assert_applied_once, bus, catalog_events, create, envelope, queue, restocks, send,
};
use tests::{TestEnv, eventually};
use uuid::Uuid;

#[tokio::test]
async fn commands_become_sequenced_events_and_duplicates_do_not() {
    let env = TestEnv::new();
    let _command = env.spawn_command().await;
    let bus = bus(&env).await;

    let reply = send(&bus, envelope("MUG-1", create(5))).await;
    assert_eq!(
        reply.outcome,
        Outcome::Accepted {
            version: 1,
            events: vec!["ItemCreated".into()]
        }
    );

    let restock = envelope("MUG-1", CatalogCommand::Restock { quantity: 3 });
    let first = send(&bus, restock.clone()).await;
    let again = send(&bus, restock.clone()).await;
    assert_eq!(first, again, "a duplicate command gets the recorded reply");

    let reused = CommandEnvelope {
        fingerprint: "another request".into(),
        ..restock
    };
    let reply = send(&bus, reused).await;
    assert!(
        matches!(&reply.outcome, Outcome::Rejected { kind: RejectionKind::Invalid, code, .. } if code == codes::IDEMPOTENCY_KEY_REUSED)
    );

    let stale = CommandEnvelope {
        expected_version: Some(1),
        ..envelope("MUG-1", CatalogCommand::Restock { quantity: 1 })
    };
    let reply = send(&bus, stale).await;
    assert!(
        matches!(&reply.outcome, Outcome::Rejected { kind: RejectionKind::Conflict, version: 2, code, .. } if code == codes::VERSION_CONFLICT)
    );

    let log = catalog_events(&env, "MUG-1").await;
    let sequences: Vec<u64> = log.iter().map(|(meta, _)| meta.sequence).collect();
    assert_eq!(sequences, vec![1, 2]);
    assert_eq!(log[1].1, CatalogEvent::Restocked { quantity: 3 });
}

#[tokio::test]
async fn a_thousand_concurrent_orders_reserve_exactly_the_stock() {
    let env = TestEnv::new();
    let _command = env.spawn_command().await;
    let bus = bus(&env).await;
    send(&bus, envelope("HOT-1", create(100))).await;

    let tasks: Vec<_> = (0..1000)
        .map(|_| {
            let bus = bus.clone();
            let command = envelope(
                "HOT-1",
                CatalogCommand::ReserveStock {
                    order_id: OrderId::from(Uuid::now_v7()),
                    quantity: 1,
                },
            );
            tokio::spawn(async move { send(&bus, command).await })
        })
        .collect();
    for task in tasks {
        assert!(matches!(
            task.await.unwrap().outcome,
            Outcome::Accepted { .. }
        ));
    }
    let log = catalog_events(&env, "HOT-1").await;
    let reserved = log
        .iter()
        .filter(|(_, e)| matches!(e, CatalogEvent::StockReserved { .. }))
        .count();
    let refused = log
        .iter()
        .filter(|(_, e)| matches!(e, CatalogEvent::StockReservationRejected { .. }))
        .count();
    assert_eq!((reserved, refused), (100, 900));
}

const SERVICE: &str = env!("CARGO_BIN_EXE_command-service");
const REBALANCES: &str = "kafka_consumer_rebalances_total";

fn skus(prefix: &str, count: usize) -> Vec<String> {
    (0..count).map(|n| format!("{prefix}-{n}")).collect()
}

async fn create_all(bus: &KafkaBus, skus: &[String]) {
    for sku in skus {
        send(bus, envelope(sku, create(0))).await;
    }
}

#[tokio::test]
async fn a_processor_killed_mid_batch_loses_and_duplicates_nothing() {
    let env = TestEnv::new();
    let bus = bus(&env).await;
    let mut child = Instance::start(SERVICE, &env, "crashy").await;
    let skus = skus("CRASH", 1);
    create_all(&bus, &skus).await;
    let commands = restocks(&skus, 2000);
    // Produce everything without waiting for replies, killing the processor
    // five times while it works through the backlog.
    for chunk in commands.chunks(400) {
        queue(&bus, chunk).await;
        tokio::time::sleep(Duration::from_millis(150)).await;
        child.kill().await;
        child = Instance::start(SERVICE, &env, "crashy").await;
    }
    assert_applied_once(&env, &bus, &skus, &commands).await;
    child.kill().await;
}

/// Instances joining and leaving while commands flow move partitions between
/// them mid-batch; nothing is lost or applied twice.
#[tokio::test]
async fn rebalances_while_commands_flow_lose_and_duplicate_nothing() {
    let env = TestEnv::new();
    let bus = bus(&env).await;
    let skus = skus("MOVE", 8);
    let a = Instance::start(SERVICE, &env, "a").await;
    create_all(&bus, &skus).await;
    let commands = restocks(&skus, 150);
    let mut chunks = commands.chunks(commands.len() / 3);
    queue(&bus, chunks.next().unwrap()).await;
    let b = Instance::start(SERVICE, &env, "b").await;
    queue(&bus, chunks.next().unwrap()).await;
    a.kill().await;
    let a = Instance::start(SERVICE, &env, "a").await;
    for chunk in chunks {
        queue(&bus, chunk).await;
    }
    assert_applied_once(&env, &bus, &skus, &commands).await;
    a.kill().await;
    b.kill().await;
}

/// An instance paused (SIGSTOP) in the middle of its work for longer than
/// the session and transaction timeouts loses its partitions to another one
/// and its open transaction is aborted; when it wakes up it is a zombie, and
/// the broker fences everything it still tries to write.
#[tokio::test]
async fn a_paused_processor_that_wakes_after_its_partitions_moved_writes_nothing() {
    let env = TestEnv::new();
    let bus = bus(&env).await;
    let skus = skus("ZOMBIE", 8);
    let zombie = Instance::start(SERVICE, &env, "zombie").await;
    create_all(&bus, &skus).await;
    // The pause lands while the only instance works through a backlog that
    // is still growing, so in the middle of its lanes' transactions.
    let commands = restocks(&skus, 400);
    let queueing = {
        let (bus, commands) = (bus.clone(), commands.clone());
        tokio::spawn(async move { queue(&bus, &commands).await })
    };
    let working = eventually(Duration::from_secs(30), || async {
        let processed = zombie.counter("commands_processed_total").await;
        (processed >= 200.0).then_some(())
    });
    working.await.expect("the zombie-to-be processes commands");
    let revoked = || zombie.counter_where(REBALANCES, &[("kind", "revoke")]);
    let revoked_before = revoked().await;
    zombie.signal("STOP");
    queueing.await.unwrap();
    let paused = tokio::time::Instant::now();
    let other = Instance::start(SERVICE, &env, "other").await;
    // Past the session timeout (10 s) and the transaction timeout (30 s).
    tokio::time::sleep_until(paused + Duration::from_secs(35)).await;
    zombie.signal("CONT");
    let after = restocks(&skus, 50);
    queue(&bus, &after).await;
    let all: Vec<_> = commands.iter().chain(&after).cloned().collect();
    assert_applied_once(&env, &bus, &skus, &all).await;
    // Paused in a transaction, the zombie is fenced when it tries to end it
    // and restarts; paused between two, it first learns on waking that its
    // partitions were revoked, and drops what it had polled. Either way
    // the pause outlived its membership, which is what this test is about.
    let restarts = zombie.counter("command_processor_restarts_total").await;
    let revokes = revoked().await - revoked_before;
    assert!(
        restarts >= 1.0 || revokes >= 1.0,
        "the zombie was fenced and restarted, or lost its partitions on waking"
    );
    zombie.kill().await;
    other.kill().await;
}
