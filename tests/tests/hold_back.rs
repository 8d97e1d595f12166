//! A poison record holds its aggregate back: the projector dead-letters it and
//! every later record of the same order, so the view never silently skips an
//! event, while other orders keep flowing.
//!
//! The events are written straight to the topic (the projector is what is
//! under test), with the envelope headers a command processor would write.

use std::time::Duration;

use events::AggregateType;
use events::domain::OrderEvent;
use rdkafka::producer::FutureProducer;
use tests::records::{append, placed, poison};
use tests::{TestEnv, eventually};
use uuid::Uuid;

#[tokio::test]
async fn later_events_of_a_poisoned_order_are_held_back() {
    let env = TestEnv::new();
    env.kafka
        .ensure_topics(&env.kafka.all_topics())
        .await
        .unwrap();
    let _projections = env.spawn_projections().await;
    let producer: FutureProducer = env.kafka.producer().create().unwrap();
    let orders = AggregateType::Order;
    let (poisoned, healthy) = (Uuid::now_v7(), Uuid::now_v7());

    append(&producer, &env, orders, poisoned, 1, &placed("owner")).await;
    let key = poisoned.to_string();
    poison(&producer, &env, &key).await;
    let cancel = OrderEvent::OrderCancellationRequested {
        reason: "late".into(),
    };
    append(&producer, &env, orders, poisoned, 3, &cancel).await;
    append(&producer, &env, orders, healthy, 1, &placed("owner")).await;
    append(&producer, &env, orders, healthy, 2, &cancel).await;

    let views = sqlx::PgPool::connect(&env.views_db_url).await.unwrap();
    let version = |id: Uuid| tests::views::order_version(&views, id);
    let healthy_done = eventually(Duration::from_secs(30), || async {
        (version(healthy).await == Some(2)).then_some(())
    });
    assert!(healthy_done.await.is_some(), "other orders keep flowing");

    let letters: Vec<(String, String)> = sqlx::query_as(
        "SELECT record_key, error FROM dead_letters WHERE projection = 'orders' ORDER BY \"offset\"",
    )
    .fetch_all(&views)
    .await
    .unwrap();
    assert_eq!(letters.len(), 2, "{letters:?}");
    assert!(letters.iter().all(|(k, _)| *k == key));
    assert!(letters[1].1.starts_with("held back"), "{letters:?}");
    assert_eq!(
        version(poisoned).await,
        Some(1),
        "the event after the poison one is not applied"
    );

    // The operator's side: list, skip the poison record, retry what it held back.
    let listed = dead_letters(&env, &["list"]).await;
    assert_eq!(listed.len(), 2, "{listed:?}");
    let poison_id = listed
        .iter()
        .find(|l| !l["error"].as_str().unwrap().starts_with("held back"))
        .and_then(|l| l["id"].as_i64())
        .expect("the poison record is listed");
    dead_letters(&env, &["skip", &poison_id.to_string()]).await;
    assert_eq!(version(poisoned).await, Some(1), "skipping applies nothing");
    dead_letters(&env, &["retry", "--all"]).await;
    assert_eq!(
        version(poisoned).await,
        Some(3),
        "the held-back event is applied"
    );
    assert!(dead_letters(&env, &["list"]).await.is_empty());
    views.close().await;
}

/// `replay dead-letters <args> --output=json` on the test's views; answers
/// the JSON lines it printed, after checking it succeeded.
async fn dead_letters(env: &TestEnv, args: &[&str]) -> Vec<serde_json::Value> {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_replay-cli"))
        .arg("dead-letters")
        .args(args)
        .arg("--output=json")
        .env("DATABASE_URL", &env.views_db_url)
        .env("REDIS_URL", &env.redis_url)
        .env("KAFKA_BROKERS", &env.kafka.brokers)
        .env("TOPIC_PREFIX", &env.kafka.topic_prefix)
        .env("KAFKA_PARTITIONS", env.kafka.partitions.to_string())
        .output()
        .await
        .expect("running the replay cli");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "dead-letters {args:?}: {stderr}");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
        .collect()
}
