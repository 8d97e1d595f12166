//! A command processor restarted over a partition with 1,000,000 events
//! restores from the snapshots topic and the events after its checkpoint,
//! not from the whole log (issue 11).
//!
//! The history is produced directly in the processor's format into a
//! one-partition topic: one catalog item created and restocked 999,999
//! times, its snapshot twice `SNAPSHOT_LAG` events before the end and a
//! checkpoint at the offset of the event after it. The first start folds
//! only that tail; the item's first unsnapshotted event is then older than
//! the lag, so the processor's first transaction writes a newer snapshot and
//! checkpoint, and a second start (after a SIGKILL) reads only the events
//! after it. Both answer with the version the whole history gives. Each
//! start is given a state folder: the ones named again resume from the
//! tables the killed process left there (an earlier start's, even those of
//! one that another process has since moved past) and read only what
//! follows them; a new one restores from the snapshots.
//!
//! A second test restores 25,000 items from their snapshots alone, more
//! than the restore sorts in memory at once, so they reach the processor's
//! local store through sorted runs on disk.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use command::aggregate::{Aggregate, CatalogItem};
use command::bus::{CommandBus, Dispatch, KafkaBus};
use command::processor::snapshot::{self, CHECKPOINT_KEY, Checkpoint, SNAPSHOT_LAG, Slot};
use command::processor::store::Versioned;
use events::command::{DomainCommand, Outcome};
use events::domain::{CatalogCommand, CatalogEvent};
use events::{AggregateType, KafkaConfig, kafka};
use rdkafka::error::KafkaError;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::types::RDKafkaErrorCode;
use tests::processor::Instance;
use tests::{TestEnv, eventually};

const EVENTS: u64 = 1_000_000;
/// The version the produced snapshot is at; events after it form the tail.
const SNAPSHOT_AT: u64 = EVENTS - 2 * SNAPSHOT_LAG as u64;
const SKU: &str = "BIG-1";

/// The item's history: created without stock, then restocked one unit at a
/// time, keyed as the processor would have written it, plus its snapshot
/// and checkpoint. In a one-partition topic without transactions the event
/// of sequence s sits at offset s - 1.
fn produce_history(kafka: &KafkaConfig) {
    let producer: ThreadedProducer<DefaultProducerContext> =
        kafka.producer().create().expect("a producer");
    let topic = kafka.events_topic(AggregateType::CatalogItem);
    let created = CatalogEvent::ItemCreated {
        name: "Bolt".into(),
        unit_price: tests::processor::usd(5),
        initial_stock: 0,
    };
    let restocked = CatalogEvent::Restocked { quantity: 1 };
    let restocked_payload = serde_json::to_vec(&restocked).unwrap();
    let mut state = CatalogItem::default();
    for sequence in 1..=EVENTS {
        let (event, payload) = match sequence {
            1 => (&created, serde_json::to_vec(&created).unwrap()),
            _ => (&restocked, restocked_payload.clone()),
        };
        if sequence <= SNAPSHOT_AT {
            state = state.evolve(event);
        }
        let record = BaseRecord::to(&topic)
            .key(SKU)
            .payload(&payload)
            .headers(kafka::to_headers(&tests::records::meta(
                event,
                AggregateType::CatalogItem,
                SKU,
                sequence,
                Utc::now(),
            )));
        send(&producer, record);
    }
    let snapshots = snapshot::topic(kafka, AggregateType::CatalogItem);
    let state = Slot::Catalog(Versioned {
        state,
        version: SNAPSHOT_AT,
    })
    .encode()
    .unwrap();
    send(
        &producer,
        BaseRecord::to(&snapshots).key(SKU).payload(&state),
    );
    send_checkpoint(&producer, kafka, SNAPSHOT_AT as i64);
    producer.flush(Duration::from_secs(60)).expect("flushing");
}

fn send(
    producer: &ThreadedProducer<DefaultProducerContext>,
    mut record: BaseRecord<'_, str, Vec<u8>>,
) {
    loop {
        match producer.send(record) {
            Ok(()) => return,
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                record = back;
                std::thread::sleep(Duration::from_millis(5));
            }
            Err((e, _)) => panic!("producing the history: {e}"),
        }
    }
}

/// Starts the command service as a process, waits until it has restored,
/// and answers it with what its restore read. One lane: with two, the
/// second to join may take the partition over after the first restored
/// it, and the figures would be those of that second restore.
async fn start(env: &TestEnv, state: &Path) -> (Instance, HashMap<&'static str, u64>, Duration) {
    let started = Instant::now();
    let service = Instance::start_with(
        env!("CARGO_BIN_EXE_command-service"),
        env,
        "restorer",
        &[
            ("COMMAND_STATE_DIR", state.display().to_string()),
            ("PROCESSOR_LANES", "1".into()),
        ],
    )
    .await;
    let ready_after = started.elapsed();
    let topic = env.kafka.events_topic(AggregateType::CatalogItem);
    let mut read = HashMap::new();
    for name in [
        "command_restore_resumed",
        "command_restore_snapshots",
        "command_restore_events_read",
        "command_restore_events_folded",
    ] {
        let value = service.counter_where(name, &[("topic", &topic)]).await;
        read.insert(name, value as u64);
    }
    (service, read, ready_after)
}

/// SIGKILLs the service once it has stored the `answered` commands it
/// replied to, so its folder holds its last commit: its local store writes
/// what a transaction changed right after the commit, which the reply may
/// beat.
async fn kill(service: Instance, answered: u64) {
    let stored = eventually(Duration::from_secs(10), || async {
        let processed = service.counter("commands_processed_total").await;
        (processed >= answered as f64).then_some(())
    });
    stored.await.expect("the service stores what it answered");
    service.kill().await;
}

/// A test's slice of the stack with one partition per topic, created.
async fn one_partition() -> TestEnv {
    let mut env = TestEnv::new();
    env.kafka.partitions = 1;
    env.kafka
        .ensure_topics(&env.kafka.all_topics())
        .await
        .unwrap();
    env.kafka
        .ensure_compacted_topics(&snapshot::topics(&env.kafka))
        .await
        .unwrap();
    env
}

async fn bus(env: &TestEnv) -> Arc<KafkaBus> {
    Arc::new(
        KafkaBus::start(env.kafka.clone(), env.shutdown.child_token())
            .await
            .unwrap(),
    )
}

/// Writes the catalog snapshots topic's checkpoint.
fn send_checkpoint(
    producer: &ThreadedProducer<DefaultProducerContext>,
    kafka: &KafkaConfig,
    events_offset: i64,
) {
    let checkpoint = Checkpoint { events_offset }.encode().unwrap();
    send(
        producer,
        BaseRecord::to(&snapshot::topic(kafka, AggregateType::CatalogItem))
            .key(CHECKPOINT_KEY)
            .payload(&checkpoint),
    );
}

async fn restock(bus: &KafkaBus) -> u64 {
    restock_item(bus, SKU).await
}

async fn restock_item(bus: &KafkaBus, sku: &str) -> u64 {
    let command = tests::envelope(
        sku,
        tests::auth::operator(),
        DomainCommand::CatalogItem(CatalogCommand::Restock { quantity: 1 }),
    );
    match bus
        .dispatch(command, Duration::from_secs(30))
        .await
        .unwrap()
    {
        Dispatch::Completed(reply) => match reply.outcome {
            Outcome::Accepted { version, .. } => version,
            Outcome::Rejected { .. } => panic!("restock rejected: {reply:?}"),
        },
        Dispatch::Queued => panic!("no reply within 30s"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_reads_the_snapshot_and_the_tail_not_the_whole_log() {
    let env = one_partition().await;
    let produced = Instant::now();
    let kafka = env.kafka.clone();
    tokio::task::spawn_blocking(move || produce_history(&kafka))
        .await
        .unwrap();
    println!("produced {EVENTS} events in {:?}", produced.elapsed());
    let bus = bus(&env).await;
    let first = tempfile::tempdir().unwrap();
    let second = tempfile::tempdir().unwrap();

    let (service, read, took) = start(&env, first.path()).await;
    println!("snapshot at {SNAPSHOT_AT}: ready after {took:?}, read {read:?}");
    assert_eq!(read["command_restore_resumed"], 0, "nothing to resume");
    assert_eq!(
        read["command_restore_snapshots"], 2,
        "the item and the checkpoint"
    );
    assert_eq!(read["command_restore_events_read"], EVENTS - SNAPSHOT_AT);
    assert_eq!(read["command_restore_events_folded"], EVENTS - SNAPSHOT_AT);
    // The first transaction snapshots the item (its tail is older than the
    // lag) with a checkpoint before its own event; the second's change waits
    // for the lag.
    assert_eq!(restock(&bus).await, EVENTS + 1);
    assert_eq!(restock(&bus).await, EVENTS + 2);
    kill(service, 2).await;

    let (service, read, took) = start(&env, second.path()).await;
    println!("snapshot by the processor: ready after {took:?}, read {read:?}");
    assert_eq!(read["command_restore_resumed"], 0, "a new state folder");
    assert!(
        read["command_restore_events_read"] <= 2,
        "only the tail after the new checkpoint is read: {read:?}"
    );
    assert_eq!(
        read["command_restore_events_folded"], 1,
        "the snapshot covers the first restock, not the second: {read:?}"
    );
    assert_eq!(
        restock(&bus).await,
        EVENTS + 3,
        "the state is the whole history's"
    );
    kill(service, 1).await;

    let (service, read, took) = start(&env, second.path()).await;
    println!("resumed from its own tables: ready after {took:?}, read {read:?}");
    assert_eq!(read["command_restore_resumed"], 1, "{read:?}");
    assert_eq!(read["command_restore_snapshots"], 0, "{read:?}");
    assert!(
        read["command_restore_events_read"] <= 3,
        "only the events from the checkpoint on: {read:?}"
    );
    assert_eq!(
        read["command_restore_events_folded"], 0,
        "the tables hold every committed restock: {read:?}"
    );
    assert_eq!(restock(&bus).await, EVENTS + 4);
    kill(service, 1).await;

    let (service, read, took) = start(&env, first.path()).await;
    println!("resumed from tables two restocks behind: ready after {took:?}, read {read:?}");
    assert_eq!(read["command_restore_resumed"], 1, "{read:?}");
    assert_eq!(
        read["command_restore_events_folded"], 2,
        "the restocks another process committed after these tables: {read:?}"
    );
    assert_eq!(
        restock(&bus).await,
        EVENTS + 5,
        "the state is the whole history's"
    );
    kill(service, 1).await;
}

/// Items whose snapshots the second test writes, more than one sorted run.
const ITEMS: u64 = 25_000;

/// Item `i`'s snapshot: created, then restocked `i % 7` times.
fn item_snapshot(i: u64) -> Vec<u8> {
    let created = CatalogEvent::ItemCreated {
        name: format!("Item {i}"),
        unit_price: tests::processor::usd(5),
        initial_stock: 0,
    };
    let mut state = CatalogItem::default().evolve(&created);
    for _ in 0..i % 7 {
        state = state.evolve(&CatalogEvent::Restocked { quantity: 1 });
    }
    Slot::Catalog(Versioned {
        state,
        version: 1 + i % 7,
    })
    .encode()
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_items_restore_from_their_snapshots_through_sorted_runs() {
    let env = one_partition().await;
    let kafka = env.kafka.clone();
    tokio::task::spawn_blocking(move || {
        let producer: ThreadedProducer<DefaultProducerContext> =
            kafka.producer().create().expect("a producer");
        let snapshots = snapshot::topic(&kafka, AggregateType::CatalogItem);
        // An older state of item 0 first: the restore must keep the newer.
        let stale = Slot::Catalog(Versioned {
            state: CatalogItem::default(),
            version: 99,
        })
        .encode()
        .unwrap();
        send(
            &producer,
            BaseRecord::to(&snapshots).key("ITEM-0").payload(&stale),
        );
        for i in 0..ITEMS {
            let key = format!("ITEM-{i}");
            send(
                &producer,
                BaseRecord::to(&snapshots)
                    .key(key.as_str())
                    .payload(&item_snapshot(i)),
            );
        }
        send_checkpoint(&producer, &kafka, 0);
        producer.flush(Duration::from_secs(60)).expect("flushing");
    })
    .await
    .unwrap();
    let bus = bus(&env).await;

    let state = tempfile::tempdir().unwrap();
    let (service, read, took) = start(&env, state.path()).await;
    println!("{ITEMS} items: ready after {took:?}, read {read:?}");
    assert_eq!(read["command_restore_snapshots"], ITEMS + 2);
    assert_eq!(read["command_restore_events_read"], 0);
    // The first and the last item written, one from the middle, and item
    // 0, written twice: each continues from its own snapshot.
    for i in [0, 1, ITEMS / 2 + 3, ITEMS - 1] {
        assert_eq!(
            restock_item(&bus, &format!("ITEM-{i}")).await,
            2 + i % 7,
            "item {i} restocked after its snapshot at version {}",
            1 + i % 7
        );
    }
    kill(service, 4).await;
}
