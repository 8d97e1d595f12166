//! Proves the stack's Kafka is real and transactional: an aborted transaction
//! is never seen by a read_committed consumer, a committed one is, and the
//! aborted record really was written (a read_uncommitted consumer sees it).

use std::time::Duration;

use rdkafka::Message;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use tests::TestEnv;

/// Generous: the test before this one restarts the broker, and on a busy
/// machine its first transactions and fetches after the restart are slow.
/// The test is about what a consumer sees, not about how fast.
const TIMEOUT: Duration = Duration::from_secs(30);

async fn send(producer: &FutureProducer, topic: &str, value: &str) {
    producer
        .send(FutureRecord::to(topic).key("k").payload(value), TIMEOUT)
        .await
        .map_err(|(e, _)| e)
        .expect("send failed");
}

/// Reads the topic from the start until `last` arrives; returns every value seen.
async fn read_until(env: &TestEnv, topic: &str, isolation: &str, last: &str) -> Vec<String> {
    let consumer: StreamConsumer = env
        .kafka
        .consumer(&format!("t{}-{isolation}", env.id))
        .set("isolation.level", isolation)
        .create()
        .unwrap();
    consumer.subscribe(&[topic]).unwrap();
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    while !seen.iter().any(|v| v == last) {
        let message = tokio::time::timeout_at(deadline, consumer.recv())
            .await
            .unwrap_or_else(|_| panic!("{last} never arrived; saw {seen:?}"));
        // A consumer error (a topic's metadata not yet everywhere, a broker
        // just back) is transient: the deadline bounds the wait.
        let message = match message {
            Ok(message) => message,
            Err(e) => {
                eprintln!("consume, retrying: {e}");
                continue;
            }
        };
        seen.push(String::from_utf8(message.payload().unwrap().to_vec()).unwrap());
    }
    seen
}

#[tokio::test]
async fn aborted_transactions_are_invisible_to_read_committed_consumers() {
    let env = TestEnv::new();
    let topic = format!("{}txn-check", env.kafka.topic_prefix);
    env.kafka
        .ensure_topics(std::slice::from_ref(&topic))
        .await
        .unwrap();

    let producer: FutureProducer = env
        .kafka
        .transactional_producer(&format!("t{}-txn", env.id))
        .create()
        .unwrap();
    // The test before this one may have restarted the broker, whose
    // transaction coordinator answers "load in progress" for a while: that
    // error is retriable, as it is for the services.
    let p = producer.clone();
    let ready = tests::eventually(Duration::from_secs(120), || {
        let p = p.clone();
        async move {
            tokio::task::spawn_blocking(move || p.init_transactions(TIMEOUT))
                .await
                .unwrap()
                .inspect_err(|e| eprintln!("init_transactions, retrying: {e}"))
                .ok()
        }
    })
    .await;
    assert!(ready.is_some(), "the transaction coordinator never loaded");

    producer.begin_transaction().unwrap();
    send(&producer, &topic, "aborted").await;
    let p = producer.clone();
    tokio::task::spawn_blocking(move || p.abort_transaction(TIMEOUT))
        .await
        .unwrap()
        .unwrap();

    producer.begin_transaction().unwrap();
    send(&producer, &topic, "committed").await;
    let p = producer.clone();
    tokio::task::spawn_blocking(move || p.commit_transaction(TIMEOUT))
        .await
        .unwrap()
        .unwrap();

    let committed_view = read_until(&env, &topic, "read_committed", "committed").await;
    assert_eq!(committed_view, vec!["committed".to_owned()]);

    let uncommitted_view = read_until(&env, &topic, "read_uncommitted", "committed").await;
    assert_eq!(
        uncommitted_view,
        vec!["aborted".to_owned(), "committed".to_owned()]
    );
}
