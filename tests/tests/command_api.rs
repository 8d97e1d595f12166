//! The command HTTP API on the real stack: idempotency keys, optimistic
//! concurrency, ownership, and bad input that must leave the log untouched.

use events::AggregateType;
use events::command::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tests::auth::token;
use tests::{JWT_SECRET, Service, TestEnv, read_topic};

async fn post(
    api: &Service,
    path: &str,
    token: &str,
    key: Option<&str>,
    body: &Value,
) -> (StatusCode, Value) {
    let mut request = api.http.post(api.url(path)).bearer_auth(token).json(body);
    if let Some(key) = key {
        request = request.header("Idempotency-Key", key);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn order(sku: &str, quantity: i64) -> Value {
    json!({
        "currency": "USD",
        "lines": [{"sku": sku, "quantity": quantity}],
        "shipping_address": {"name": "Ada", "line1": "1 Loop Rd", "city": "Springfield", "postal_code": "12345", "country": "US"},
        "payment": {"token": "tok_ok"}
    })
}

async fn setup() -> (TestEnv, Service) {
    let env = TestEnv::new();
    let api = env.spawn_command().await;
    let admin = token(Role::Admin, "ops");
    let item =
        json!({"sku": "MUG-1", "name": "Mug", "unit_price": 1250, "currency": "USD", "stock": 10});
    let (status, body) = post(&api, "/catalog/items", &admin, None, &item).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    (env, api)
}

#[tokio::test]
async fn idempotency_keys_make_retries_safe() {
    let (env, api) = setup().await;
    let alice = token(Role::Customer, "alice");
    let (status, first) = post(&api, "/orders", &alice, Some("k-1"), &order("MUG-1", 2)).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    assert_eq!(first["status"], "pending");
    assert_eq!(first["version"], 1);
    assert!(first["consistency_token"].is_string());

    let (status, again) = post(&api, "/orders", &alice, Some("k-1"), &order("MUG-1", 2)).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(
        again["order_id"], first["order_id"],
        "the same key reaches the same order"
    );

    let (status, body) = post(&api, "/orders", &alice, Some("k-1"), &order("MUG-1", 3)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");

    let bob = token(Role::Customer, "bob");
    let (status, other) = post(&api, "/orders", &bob, Some("k-1"), &order("MUG-1", 2)).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_ne!(
        other["order_id"], first["order_id"],
        "another caller's key is another order"
    );

    let placed = read_topic(&env.kafka, &env.kafka.events_topic(AggregateType::Order)).await;
    assert_eq!(placed.len(), 2, "two orders placed, nothing else appended");
}

#[tokio::test]
async fn stale_versions_conflict_and_other_customers_see_nothing() {
    let (_env, api) = setup().await;
    let alice = token(Role::Customer, "alice");
    let (_, placed) = post(&api, "/orders", &alice, Some("k-2"), &order("MUG-1", 1)).await;
    let id = placed["order_id"].as_str().unwrap().to_owned();
    let cancel = json!({"reason": "changed my mind"});

    let bob = token(Role::Customer, "bob");
    let (status, body) = post(&api, &format!("/orders/{id}/cancel"), &bob, None, &cancel).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");

    // A hundred concurrent cancellations, all claiming version 1: one wins.
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let request = api
                .http
                .post(api.url(&format!("/orders/{id}/cancel")))
                .bearer_auth(&alice)
                .header("If-Match", "1")
                .json(&cancel);
            tokio::spawn(async move { request.send().await.unwrap().status() })
        })
        .collect();
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.unwrap());
    }
    let won = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    let conflicts = statuses
        .iter()
        .filter(|s| **s == StatusCode::CONFLICT)
        .count();
    assert_eq!((won, conflicts), (1, 99), "{statuses:?}");
}

#[tokio::test]
async fn bad_input_is_refused_and_appends_nothing() {
    let (env, api) = setup().await;
    let alice = token(Role::Customer, "alice");
    let admin = token(Role::Admin, "ops");
    let cases: Vec<(&str, String, Option<&str>, Value, StatusCode)> = vec![
        (
            "/orders",
            alice.clone(),
            Some("b-1"),
            order("MUG-1", 0),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "/orders",
            alice.clone(),
            Some("b-2"),
            order("MUG-1", -1),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "/orders",
            alice.clone(),
            None,
            order("MUG-1", 1),
            StatusCode::BAD_REQUEST,
        ),
        (
            "/orders",
            "forged.token.value".into(),
            Some("b-3"),
            order("MUG-1", 1),
            StatusCode::UNAUTHORIZED,
        ),
        (
            "/orders",
            admin.clone(),
            Some("b-4"),
            order("MUG-1", 1),
            StatusCode::FORBIDDEN,
        ),
        (
            "/catalog/items/MUG-1/restock",
            alice.clone(),
            None,
            json!({"quantity": 1}),
            StatusCode::FORBIDDEN,
        ),
        (
            "/catalog/items/NOPE/restock",
            admin.clone(),
            None,
            json!({"quantity": 1}),
            StatusCode::NOT_FOUND,
        ),
        (
            "/catalog/items/MUG-1/restock",
            admin.clone(),
            None,
            json!({"quantity": 0}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ];
    for (path, token, key, body, expected) in cases {
        let (status, problem) = post(&api, path, &token, key, &body).await;
        assert_eq!(status, expected, "{path} {body}: {problem}");
        assert!(
            problem["type"].as_str().is_some_and(|t| !t.is_empty()),
            "{problem}"
        );
    }
    let no_token = api
        .http
        .post(api.url("/orders"))
        .header("Idempotency-Key", "b-8")
        .json(&order("MUG-1", 1))
        .send()
        .await
        .unwrap();
    assert_eq!(no_token.status(), StatusCode::UNAUTHORIZED);
    // Expired two minutes ago: beyond any clock-skew leeway.
    let claims =
        json!({"sub": "alice", "role": "customer", "exp": chrono::Utc::now().timestamp() - 120});
    let expired = jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(JWT_SECRET.as_bytes()),
    )
    .unwrap();
    let (status, _) = post(&api, "/orders", &expired, Some("b-9"), &order("MUG-1", 1)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "an expired token");
    let other = token(Role::Admin, "ops");
    let request = api
        .http
        .put(api.url("/catalog/items/MUG-1/price"))
        .bearer_auth(&other)
        .json(&json!({"unit_price": 900, "currency": "EUR"}));
    let response = request.send().await.unwrap();
    assert_eq!(
        response.status(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "a price in another currency"
    );

    let mut with_price = order("MUG-1", 1);
    with_price["lines"][0]["unit_price"] = json!(1);
    let (status, _) = post(&api, "/orders", &alice, Some("b-5"), &with_price).await;
    assert!(status.is_client_error(), "a client cannot set prices");

    let malformed = api
        .http
        .post(api.url("/orders"))
        .bearer_auth(&alice)
        .header("Idempotency-Key", "b-6")
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        malformed.headers()["content-type"],
        "application/problem+json"
    );

    let oversized = json!({"currency": "USD", "lines": [], "filler": "x".repeat(100_000)});
    let (status, _) = post(&api, "/orders", &alice, Some("b-7"), &oversized).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);

    let orders = read_topic(&env.kafka, &env.kafka.events_topic(AggregateType::Order)).await;
    assert!(orders.is_empty(), "no order event was appended");
    let catalog = read_topic(
        &env.kafka,
        &env.kafka.events_topic(AggregateType::CatalogItem),
    )
    .await;
    assert_eq!(catalog.len(), 1, "only the item's creation");
}
