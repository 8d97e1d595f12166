//! The operator console's actions, through the query API's same-origin
//! routes, against the real projector and stack: dead letters skipped and
//! retried, lag read, and nobody but an admin let through.

use std::time::Duration;

use events::AggregateType;
use events::command::Role;
use rdkafka::producer::{FutureProducer, FutureRecord};
use reqwest::StatusCode;
use serde_json::Value;
use tests::auth::token;
use tests::{Service, TestEnv, eventually};

const LIMIT: Duration = Duration::from_secs(60);

async fn call(query: &Service, method: &str, path: &str, bearer: &str) -> (StatusCode, Value) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let response = query
        .http
        .request(method, query.url(path))
        .bearer_auth(bearer)
        .send()
        .await
        .expect("request failed");
    let status = response.status();
    (status, response.json().await.unwrap_or_default())
}

/// The ids of the stored dead letters, newest first.
async fn letters(query: &Service, admin: &str) -> Vec<i64> {
    let (_, page) = call(query, "GET", "/dead-letters?limit=50", admin).await;
    page["dead_letters"]
        .as_array()
        .map(|l| l.iter().filter_map(|d| d["id"].as_i64()).collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn operators_skip_and_retry_dead_letters_and_read_lag_through_the_console() {
    let env = TestEnv::new();
    let command = env.spawn_command().await;
    let projections = env.spawn_projections().await;
    let query = env.spawn_console(&command, &projections).await;
    let admin = token(Role::Admin, "ops");
    let customer = token(Role::Customer, "alice");

    // Two poison records: each is dead-lettered.
    let producer: FutureProducer = env.kafka.producer().create().unwrap();
    let topic = env.kafka.events_topic(AggregateType::Order);
    for key in ["poison-a", "poison-b"] {
        let record = FutureRecord::<str, [u8]>::to(&topic)
            .key(key)
            .payload(b"{not json");
        producer.send(record, Duration::from_secs(5)).await.unwrap();
    }
    let ids = eventually(LIMIT, || async {
        let ids = letters(&query, &admin).await;
        (ids.len() == 2).then_some(ids)
    })
    .await
    .expect("both records are dead-lettered");
    let (skipped, retried) = (ids[0], ids[1]);

    // A customer is refused before anything is passed on.
    let skip = format!("/console/api/dead-letters/{skipped}/skip");
    assert_eq!(
        call(&query, "POST", &skip, &customer).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(letters(&query, &admin).await.len(), 2);

    let (status, body) = call(&query, "POST", &skip, &admin).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["skipped"], 1);
    assert_eq!(letters(&query, &admin).await, vec![retried]);

    // Still poison: the retry applies nothing and the letter stays.
    let retry = format!("/console/api/dead-letters/{retried}/retry");
    let (status, body) = call(&query, "POST", &retry, &admin).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (body["applied"].as_u64(), body["failing"].as_u64()),
        (Some(0), Some(1))
    );
    assert_eq!(letters(&query, &admin).await, vec![retried]);
    let (status, body) = call(
        &query,
        "POST",
        "/console/api/dead-letters/999999/skip",
        &admin,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");

    // Lag per projection, as the projector measures it.
    let lag = eventually(LIMIT, || async {
        let (status, body) = call(&query, "GET", "/console/api/lag", &admin).await;
        (status == StatusCode::OK && body["projections"]["orders"].is_object()).then_some(body)
    })
    .await
    .expect("the console reads the projector's lag");
    assert!(lag["projections"]["orders"]["lag_events"].is_i64(), "{lag}");
    assert_eq!(
        call(&query, "GET", "/console/api/lag", &customer).await.0,
        StatusCode::FORBIDDEN
    );
}
