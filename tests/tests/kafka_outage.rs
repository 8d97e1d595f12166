//! Kafka dies under the command API: requests fail fast with 503 (no hang),
//! and once Kafka is back, retrying with the same Idempotency-Key applies the
//! command exactly once.
//!
//! This binary stops the shared broker, so it holds a single test; cargo runs
//! test binaries one after another, so no other test sees the outage.

use std::time::{Duration, Instant};

use events::AggregateType;
use events::command::Role;
use reqwest::StatusCode;
use serde_json::json;
use tests::auth::token;
use tests::{TestEnv, eventually, read_topic};

#[tokio::test]
async fn kafka_down_fails_fast_and_a_retry_applies_once() {
    let env = TestEnv::new();
    let api = env.spawn_command().await;
    let admin = token(Role::Admin, "ops");
    let item =
        json!({"sku": "OUT-1", "name": "Lamp", "unit_price": 5000, "currency": "USD", "stock": 1});
    let created = api
        .http
        .post(api.url("/catalog/items"))
        .bearer_auth(&admin)
        .json(&item)
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);

    let restock = || {
        api.http
            .post(api.url("/catalog/items/OUT-1/restock"))
            .bearer_auth(&admin)
            .header("Idempotency-Key", "restock-during-outage")
            .json(&json!({"quantity": 7}))
            .send()
    };

    let guard = tests::outage::kill("kafka");
    let started = Instant::now();
    let response = restock().await.unwrap();
    let elapsed = started.elapsed();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    assert!(response.headers().contains_key("retry-after"));
    assert!(
        elapsed < Duration::from_secs(15),
        "the API hung for {elapsed:?}"
    );

    drop(guard);
    let ok = eventually(Duration::from_secs(90), || async {
        match restock().await {
            Ok(r) if r.status() == StatusCode::OK => Some(()),
            _ => None,
        }
    })
    .await;
    assert!(ok.is_some(), "the retried restock never succeeded");
    // One more retry after success is answered from the recorded outcome.
    assert_eq!(restock().await.unwrap().status(), StatusCode::OK);

    let log = read_topic(
        &env.kafka,
        &env.kafka.events_topic(AggregateType::CatalogItem),
    )
    .await;
    let types: Vec<String> = log
        .iter()
        .map(|m| {
            events::kafka::from_headers(rdkafka::Message::headers(m).unwrap())
                .unwrap()
                .event_type
        })
        .collect();
    assert_eq!(
        types,
        vec!["ItemCreated", "Restocked"],
        "the restock was applied exactly once"
    );
}
