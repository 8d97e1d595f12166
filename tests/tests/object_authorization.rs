//! Attack: act on or learn about someone else's objects with a valid token
//! of one's own (OWASP API1, broken object-level authorization). Command
//! ids are derived from guessable inputs, so `GET /commands/{id}` answers
//! only the command's issuer and operators; a carrier acts only on the
//! shipments booked with it, and only once they are paid for.

use std::time::Duration;

use events::command::Role;
use reqwest::StatusCode;
use serde_json::Value;
use tests::auth::token;
use tests::shop::{OrderSpec, Shop, terminal_saga};
use tests::{Service, TestEnv};

const LIMIT: Duration = Duration::from_secs(60);

async fn get(service: &Service, path: &str, bearer: &str) -> StatusCode {
    let request = service.http.get(service.url(path)).bearer_auth(bearer);
    request.send().await.expect("GET failed").status()
}

async fn post(service: &Service, path: &str, bearer: &str) -> (StatusCode, Value) {
    let request = service.http.post(service.url(path)).bearer_auth(bearer);
    let response = request.send().await.expect("POST failed");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn only_the_issuer_and_operators_learn_what_became_of_a_command() {
    let env = TestEnv::new();
    let shop = Shop::start(&env).await;
    shop.create_item("MUG-1", 1250, 10).await;
    let alice = token(Role::Customer, "alice");
    let placed = shop.place_answer(&mug_order("tok_ok"), "k-1").await;
    let path = format!("/commands/{}", placed["command_id"].as_str().unwrap());

    for stranger in [
        token(Role::Customer, "bob"),
        token(Role::Carrier, "sandbox-carrier"),
    ] {
        let seen = get(&shop.command, &path, &stranger).await;
        assert_eq!(seen, StatusCode::NOT_FOUND, "{stranger}");
    }
    assert_eq!(get(&shop.command, &path, &alice).await, StatusCode::OK);
    assert_eq!(get(&shop.command, &path, &shop.admin).await, StatusCode::OK);
}

#[tokio::test]
async fn a_carrier_dispatches_only_shipments_booked_with_it() {
    let env = TestEnv::new();
    let shop = Shop::start(&env).await;
    env.spawn_sagas().await;
    shop.create_item("MUG-1", 1250, 10).await;
    let order_id = shop.place(&mug_order("tok_ok"), "k-1").await;
    // Released for dispatch once the payment is captured.
    shop.order_until(&order_id, LIMIT, |o| {
        o["status"] == "confirmed" && o["shipment_status"] == "released"
    })
    .await;

    let dispatch = format!("/shipments/{order_id}/dispatch");
    let other = token(Role::Carrier, "globex");
    let (status, body) = post(&shop.command, &dispatch, &other).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let deliver = format!("/shipments/{order_id}/deliver");
    let (status, body) = post(&shop.command, &deliver, &other).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");

    let booked = token(Role::Carrier, "sandbox-carrier");
    let (status, body) = post(&shop.command, &dispatch, &booked).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    shop.order_until(&order_id, LIMIT, |o| o["shipment_status"] == "dispatched")
        .await;
}

fn mug_order(token: &str) -> OrderSpec<'_> {
    OrderSpec {
        customer: "alice",
        lines: &[("MUG-1", 1)],
        token,
        country: "US",
    }
}

/// Goods must not leave before the money is taken: while every capture
/// fails, the booked carrier's dispatch is a 409 and changes nothing (the
/// saga still cancels the shipment when it gives up); once a payment is
/// captured, the same carrier dispatches.
#[tokio::test]
async fn a_carrier_cannot_dispatch_before_the_payment_is_captured() {
    let env = TestEnv::new();
    let shop = Shop::start(&env).await;
    env.spawn_sagas().await;
    shop.create_item("MUG-1", 1250, 10).await;
    let carrier = token(Role::Carrier, "sandbox-carrier");

    let unpaid = shop.place(&mug_order("tok_capture_fail"), "k-1").await;
    shop.order_until(&unpaid, LIMIT, |o| o["shipment_status"] == "scheduled")
        .await;
    let dispatch = format!("/shipments/{unpaid}/dispatch");
    let (status, body) = post(&shop.command, &dispatch, &carrier).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let kind = body["type"].as_str().unwrap_or_default();
    assert!(kind.ends_with("/shipment_not_released"), "{body}");
    // Nothing left: the capture attempts run out and the saga cancels the
    // shipment, as it could not if the parcel had gone.
    assert_eq!(terminal_saga(&env, &unpaid, LIMIT).await, "compensated");
    let order = shop
        .order_until(&unpaid, LIMIT, |o| o["status"] == "rejected")
        .await;
    assert_eq!(order["shipment_status"], "cancelled", "{order}");
    assert_eq!(order["payment_status"], "voided", "{order}");

    let paid = shop.place(&mug_order("tok_ok"), "k-2").await;
    shop.order_until(&paid, LIMIT, |o| o["shipment_status"] == "released")
        .await;
    let dispatch = format!("/shipments/{paid}/dispatch");
    let (status, body) = post(&shop.command, &dispatch, &carrier).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    shop.order_until(&paid, LIMIT, |o| {
        o["status"] == "shipped" && o["shipment_status"] == "dispatched"
    })
    .await;
}

/// Whoever can write to Redis (the cache is derived data, often less
/// guarded than the database) must not be able to grant themselves an
/// order by rewriting its cached `owner`.
#[tokio::test]
async fn a_rewritten_cache_owner_grants_nothing() {
    let env = TestEnv::new();
    let shop = Shop::start(&env).await;
    shop.create_item("MUG-1", 1250, 10).await;
    let alice = token(Role::Customer, "alice");
    let placed = shop.place_answer(&mug_order("tok_ok"), "k-1").await;
    let order_id: uuid::Uuid = placed["order_id"].as_str().unwrap().parse().unwrap();
    let path = format!("/orders/{order_id}");
    let from_cache = tests::eventually(LIMIT, || async {
        let request = shop
            .query
            .http
            .get(shop.query.url(&path))
            .bearer_auth(&alice);
        let response = request.send().await.ok()?;
        let source = response.headers().get("x-served-from")?.to_str().ok()?;
        (response.status() == StatusCode::OK && source == "cache").then_some(())
    })
    .await;
    assert!(from_cache.is_some(), "the order never came from the cache");

    let namespace = projections::cache::namespace_for(&env.views_db_url);
    let cache = projections::cache::Cache::new(&env.redis_url, namespace, LIMIT).unwrap();
    let client = redis::Client::open(env.redis_url.as_str()).unwrap();
    let mut redis = client.get_multiplexed_async_connection().await.unwrap();
    let _: () = redis::cmd("HSET")
        .arg(cache.order_key(order_id))
        .arg("owner")
        .arg("mallory")
        .query_async(&mut redis)
        .await
        .unwrap();
    let mallory = token(Role::Customer, "mallory");
    assert_eq!(
        get(&shop.query, &path, &mallory).await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(get(&shop.query, &path, &alice).await, StatusCode::OK);
}
