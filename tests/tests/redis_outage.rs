//! Redis dies under the read side: the query API keeps answering from
//! PostgreSQL, the projector keeps folding, and once Redis is back the cache
//! is written again (by the projector, and by the reads PostgreSQL answers)
//! and agrees with PostgreSQL.
//!
//! This binary stops the shared Redis, so it holds a single test; cargo runs
//! test binaries one after another, so no other test sees the outage.

use std::time::Duration;

use command::bus::KafkaBus;
use events::command::{DomainCommand, Role};
use events::domain::{CatalogCommand, OrderId};
use projections::documents;
use reqwest::StatusCode;
use serde_json::Value;
use tests::auth::{operator, token, who};
use tests::processor::usd;
use tests::{Service, TestEnv, eventually};
use uuid::Uuid;

async fn restock(bus: &KafkaBus, quantity: u32) -> u64 {
    let command = CatalogCommand::Restock { quantity };
    tests::processor::accepted(
        bus,
        "LAMP-1",
        operator(),
        DomainCommand::CatalogItem(command),
    )
    .await
}

async fn place(bus: &KafkaBus, customer: &str) -> OrderId {
    let order_id = OrderId::from(Uuid::now_v7());
    let command = tests::processor::place_order(customer, &[("LAMP-1", 1)]);
    tests::processor::accepted(
        bus,
        &order_id.to_string(),
        who(Role::Customer, customer),
        DomainCommand::Order(command),
    )
    .await;
    order_id
}

/// One read: status, where it was served from, and the body.
async fn read(query: &Service, path: &str, bearer: &str) -> (StatusCode, String, Value) {
    let response = query
        .http
        .get(query.url(path))
        .bearer_auth(bearer)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let source = response
        .headers()
        .get("x-served-from")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, source, response.json().await.unwrap())
}

/// Polls until `path` is served from `source` at `version` or later.
async fn served(query: &Service, path: &str, bearer: &str, source: &str, version: u64) -> Value {
    eventually(Duration::from_secs(30), || async {
        let (status, from, body) = read(query, path, bearer).await;
        (status == StatusCode::OK && from == source && body["version"].as_u64() >= Some(version))
            .then_some(body)
    })
    .await
    .unwrap_or_else(|| panic!("{path} never served from {source} at version {version}"))
}

/// The cache's entries for the item and the order equal the documents
/// PostgreSQL holds.
async fn cache_agrees(env: &TestEnv, order: OrderId) -> bool {
    let cache = tests::views::cache(env);
    let pool = projections::db::connect_lazy(&env.views_db_url).unwrap();
    let id = *order.as_uuid();
    let item = documents::items(&pool, &["LAMP-1".to_owned()])
        .await
        .unwrap();
    let orders = documents::orders(&pool, &[id]).await.unwrap();
    let (Ok(Some(cached_item)), Ok(Some(cached_order))) =
        (cache.item("LAMP-1").await, cache.order(id).await)
    else {
        return false;
    };
    let parse = |body: &str| serde_json::from_str::<Value>(body).unwrap();
    parse(&cached_item.body) == serde_json::to_value(&item[0]).unwrap()
        && parse(&cached_order.body) == serde_json::to_value(&orders[0]).unwrap()
}

#[tokio::test]
async fn reads_survive_a_redis_outage_and_the_cache_catches_up() {
    let env = TestEnv::new();
    let _command = env.spawn_command().await;
    env.spawn_projections().await;
    let query = env.spawn_query_api().await;
    let bus = KafkaBus::start(env.kafka.clone(), env.shutdown.child_token())
        .await
        .unwrap();
    let admin = token(Role::Admin, "ops");
    let alice = token(Role::Customer, "alice");
    let bob = token(Role::Customer, "bob");

    let create = CatalogCommand::CreateItem {
        name: "Lamp".into(),
        unit_price: usd(5000),
        initial_stock: 10,
    };
    tests::processor::accepted(
        &bus,
        "LAMP-1",
        operator(),
        DomainCommand::CatalogItem(create),
    )
    .await;
    let first = place(&bus, "alice").await;
    let first_path = format!("/orders/{first}");
    served(&query, "/catalog/items/LAMP-1", &admin, "cache", 1).await;
    served(&query, &first_path, &alice, "cache", 1).await;
    // A cached answer is checked for ownership like any other.
    assert_eq!(
        read(&query, &first_path, &bob).await.0,
        StatusCode::NOT_FOUND
    );
    assert!(cache_agrees(&env, first).await);

    let guard = tests::outage::kill("redis");
    let version = restock(&bus, 5).await;
    let second = place(&bus, "alice").await;
    let body = served(&query, "/catalog/items/LAMP-1", &admin, "postgres", version).await;
    assert_eq!(body["on_hand"], 15);
    let second_path = format!("/orders/{second}");
    served(&query, &second_path, &alice, "postgres", 1).await;
    for _ in 0..20 {
        let (status, from, _) = read(&query, &second_path, &alice).await;
        assert_eq!((status, from.as_str()), (StatusCode::OK, "postgres"));
        let (status, _, _) = read(&query, &second_path, &bob).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }

    drop(guard);
    // New writes reach the cache again, and what it holds is what
    // PostgreSQL holds, including the writes made while it was down.
    let version = restock(&bus, 2).await;
    let body = served(&query, "/catalog/items/LAMP-1", &admin, "cache", version).await;
    assert_eq!(body["on_hand"], 17);
    served(&query, &second_path, &alice, "cache", 1).await;
    // The restarted Redis is empty: the first order, unchanged since, is
    // read from PostgreSQL once and cached by that read.
    served(&query, &first_path, &alice, "cache", 1).await;
    let agreed = eventually(Duration::from_secs(30), || async {
        cache_agrees(&env, second).await.then_some(())
    })
    .await;
    assert!(agreed.is_some(), "the cache never agreed with postgresql");
}
