//! The command processors on the real stack, driven through the Kafka bus
//! (the same path the command API uses): decisions, duplicates, optimistic
//! concurrency, contention on one aggregate, and SIGKILL mid-batch.

use std::collections::HashMap;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use command::bus::{CommandBus, Dispatch, KafkaBus};
use events::command::{CommandEnvelope, DomainCommand, Outcome, RejectionKind, Reply, codes};
use events::domain::{CatalogCommand, CatalogEvent, Currency, Money, OrderId};
use events::message::EventPayload;
use events::{AggregateType, kafka};
use rdkafka::Message;
use tests::{TestEnv, read_topic};
use tokio::io::{AsyncBufReadExt, BufReader};
use uuid::Uuid;

fn envelope(sku: &str, command: CatalogCommand) -> CommandEnvelope {
    tests::envelope(sku, tests::operator(), DomainCommand::CatalogItem(command))
}

fn create(stock: u32) -> CatalogCommand {
    CatalogCommand::CreateItem {
        name: "Mug".into(),
        unit_price: Money::new(1250, Currency::new("USD").unwrap()),
        initial_stock: stock,
    }
}

async fn bus(env: &TestEnv) -> Arc<KafkaBus> {
    Arc::new(
        KafkaBus::start(env.kafka.clone(), env.shutdown.child_token())
            .await
            .unwrap(),
    )
}

async fn send(bus: &KafkaBus, command: CommandEnvelope) -> Reply {
    match bus
        .dispatch(command, Duration::from_secs(30))
        .await
        .unwrap()
    {
        Dispatch::Completed(reply) => reply,
        Dispatch::Queued => panic!("no reply within 30s"),
    }
}

/// The catalog events of one SKU, decoded, in log order.
async fn catalog_events(env: &TestEnv, sku: &str) -> Vec<(events::EventMeta, CatalogEvent)> {
    read_topic(
        &env.kafka,
        &env.kafka.events_topic(AggregateType::CatalogItem),
    )
    .await
    .into_iter()
    .filter(|m| m.key() == Some(sku.as_bytes()))
    .map(|m| {
        let meta = kafka::from_headers(m.headers().unwrap()).unwrap();
        let event = CatalogEvent::decode(&meta, m.payload().unwrap()).unwrap();
        (meta, event)
    })
    .collect()
}

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

/// The command service in a child process, so it can be SIGKILLed.
struct Child {
    process: tokio::process::Child,
}

impl Child {
    async fn start(env: &TestEnv) -> Child {
        let mut process = tokio::process::Command::new(env!("CARGO_BIN_EXE_command-service"))
            .env("KAFKA_BROKERS", &env.kafka.brokers)
            .env("TOPIC_PREFIX", &env.kafka.topic_prefix)
            .env("KAFKA_PARTITIONS", env.kafka.partitions.to_string())
            .env("INSTANCE_ID", "crashy")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("starting the command service");
        let stdout = process.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        lines
            .next_line()
            .await
            .unwrap()
            .expect("the service printed its address");
        Child { process }
    }

    async fn kill(mut self) {
        self.process.start_kill().unwrap();
        self.process.wait().await.unwrap();
    }
}

#[tokio::test]
async fn a_processor_killed_mid_batch_loses_and_duplicates_nothing() {
    let env = TestEnv::new();
    let bus = bus(&env).await;
    let mut child = Child::start(&env).await;
    send(&bus, envelope("CRASH-1", create(0))).await;

    let commands: Vec<CommandEnvelope> = (0..2000)
        .map(|_| envelope("CRASH-1", CatalogCommand::Restock { quantity: 1 }))
        .collect();
    // Produce everything without waiting for replies, killing the processor
    // five times while it works through the backlog.
    for chunk in commands.chunks(400) {
        for command in chunk {
            bus.dispatch(command.clone(), Duration::ZERO).await.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
        child.kill().await;
        child = Child::start(&env).await;
    }
    // Retrying every command (as a client whose request failed would) must
    // be answered from the recorded outcomes, never applied again.
    let mut replies: HashMap<Uuid, Reply> = HashMap::new();
    for command in &commands {
        replies.insert(command.command_id, send(&bus, command.clone()).await);
    }
    child.kill().await;

    let log = catalog_events(&env, "CRASH-1").await;
    let sequences: Vec<u64> = log.iter().map(|(meta, _)| meta.sequence).collect();
    assert_eq!(
        sequences,
        (1..=2001).collect::<Vec<u64>>(),
        "no gap, no duplicate"
    );
    let mut applied: HashMap<Uuid, usize> = HashMap::new();
    for (meta, _) in &log[1..] {
        *applied.entry(meta.command_id).or_default() += 1;
    }
    assert_eq!(applied.len(), 2000, "every command applied");
    assert!(applied.values().all(|&n| n == 1), "none applied twice");
    for (id, reply) in &replies {
        let Outcome::Accepted { version, .. } = reply.outcome else {
            panic!("{id} was rejected: {reply:?}");
        };
        let (meta, _) = log.iter().find(|(meta, _)| meta.command_id == *id).unwrap();
        assert_eq!(
            version, meta.sequence,
            "the reply names the version the event got"
        );
    }
}
