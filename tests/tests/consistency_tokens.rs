//! Attack: use `X-Consistency-Token` as an oracle or a lever. A token is
//! signed and names one resource: made up, altered, or presented on another
//! route it is a 400 at once, never a wait (so nobody learns whether an
//! order exists, or at which version, from how long an answer takes), and
//! concurrent waits are capped.

use std::time::{Duration, Instant};

use events::AggregateType;
use events::command::Role;
use reqwest::StatusCode;
use serde_json::Value;
use tests::auth::token;
use tests::shop::{OrderSpec, Shop};
use tests::{Service, TestEnv};

async fn get(
    service: &Service,
    path: &str,
    bearer: Option<&str>,
    consistency: &str,
) -> (StatusCode, Value) {
    let mut request = service
        .http
        .get(service.url(path))
        .header("X-Consistency-Token", consistency);
    if let Some(bearer) = bearer {
        request = request.bearer_auth(bearer);
    }
    let response = request.send().await.expect("GET failed");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Alice's order of one MUG-1, paid with `tok_ok`.
const ALICE_MUG: OrderSpec<'static> = OrderSpec {
    customer: "alice",
    lines: &[("MUG-1", 1)],
    token: "tok_ok",
    country: "US",
};

#[tokio::test]
async fn foreign_made_up_and_misplaced_tokens_are_refused_without_a_wait() {
    let env = TestEnv::new();
    let shop = Shop::start(&env).await;
    shop.create_item("MUG-1", 1250, 10).await;
    let alice = token(Role::Customer, "alice");
    let placed = shop.place_answer(&ALICE_MUG, "k-1").await;
    let order_id = placed["order_id"].as_str().unwrap().to_owned();
    let real = placed["consistency_token"].as_str().unwrap().to_owned();

    let order_path = format!("/orders/{order_id}");
    let bob = token(Role::Customer, "bob");
    let unsigned = format!("v1.orders.1.{order_id}");
    let made_up = format!("v2.orders.1.AAAA.{order_id}");
    let cases = [
        // The public catalog with an order's real token: an existence
        // oracle for anyone, before.
        (
            "/catalog/items/MUG-1",
            None,
            real.clone(),
            StatusCode::BAD_REQUEST,
        ),
        (
            order_path.as_str(),
            Some(&alice),
            unsigned,
            StatusCode::BAD_REQUEST,
        ),
        (
            order_path.as_str(),
            Some(&alice),
            made_up,
            StatusCode::BAD_REQUEST,
        ),
        // Someone else's order, with its real token: refused before any wait.
        (
            order_path.as_str(),
            Some(&bob),
            real.clone(),
            StatusCode::NOT_FOUND,
        ),
    ];
    for (path, bearer, consistency, expected) in cases {
        let started = Instant::now();
        let (status, body) = get(&shop.query, path, bearer.map(String::as_str), &consistency).await;
        assert_eq!(status, expected, "{path} {consistency}: {body}");
        assert!(started.elapsed() < Duration::from_secs(1), "{path} waited");
    }
    let (status, body) = get(&shop.query, &order_path, Some(&alice), &real).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn concurrent_waits_are_capped() {
    let env = TestEnv::new();
    env.spawn_projections().await;
    let config = query_api::Config {
        max_waits: 2,
        ..query_api::Config::new(env.views(), tests::auth_config())
    };
    let query = env
        .spawn(move |listener, shutdown| query_api::run(config, listener, shutdown))
        .await;
    // A version the log never reached (the test knows the signing key).
    let order = uuid::Uuid::now_v7().to_string();
    let ahead = tests::consistency_token(AggregateType::Order, &order, 99);
    let path = format!("/orders/{order}");
    let alice = token(Role::Customer, "alice");
    let read = || get(&query, &path, Some(&alice), &ahead);
    let (a, b, c, d) = tokio::join!(read(), read(), read(), read());
    let answers = [a, b, c, d];
    let shed = answers
        .iter()
        .filter(|(status, body)| {
            *status == StatusCode::SERVICE_UNAVAILABLE
                && body["type"]
                    .as_str()
                    .is_some_and(|t| t.ends_with("/overloaded"))
        })
        .count();
    assert_eq!(shed, 2, "{answers:?}");
}
