//! The query API refuses bad input and strangers with problem+json, and a
//! poison record on the bus is dead-lettered (and shown to operators)
//! while the rest flows on.

use std::time::Duration;

use events::command::Role;
use rdkafka::producer::FutureProducer;
use reqwest::StatusCode;
use serde_json::Value;
use tests::auth::{operator, token};
use tests::records::poison;
use tests::views::query::{get, place, problem, start, wait_for_version};
use tests::{TestEnv, eventually};
use uuid::Uuid;

#[tokio::test]
async fn strangers_and_bad_input_get_problem_json() {
    let env = TestEnv::new();
    let (bus, query) = start(&env).await;
    let owner = token(Role::Customer, "owner");
    let stranger = token(Role::Customer, "stranger");
    let admin = token(Role::Admin, "ops");
    // A poison record ahead of the order: dead-lettered, and the rest flows on.
    let producer: FutureProducer = env.kafka.producer().create().unwrap();
    poison(&producer, &env, "poison").await;
    let (order, _) = place(&bus, "owner", &["SKU-Y"]).await;
    let path = format!("/orders/{order}");
    wait_for_version(&query, &path, Some(&owner), 1).await;
    let views = sqlx::PgPool::connect(&env.views_db_url).await.unwrap();
    let dead = eventually(Duration::from_secs(30), || async {
        let sql = "SELECT error FROM dead_letters WHERE projection = 'orders'";
        sqlx::query_scalar::<_, String>(sql)
            .fetch_optional(&views)
            .await
            .ok()?
    });
    assert!(
        dead.await.unwrap().contains("ce_"),
        "the error names the missing header"
    );
    views.close().await;
    let openapi = get(&query, "/openapi.json", None, None).await;
    assert_eq!(openapi.status(), StatusCode::OK);
    let openapi: Value = openapi.json().await.unwrap();
    assert!(openapi["paths"]["/sales"].is_object());
    let asyncapi: Value = get(&query, "/asyncapi.json", None, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        asyncapi["channels"]["ordersEvents"]["address"],
        "orders.events"
    );
    // Operators see it through the query API, newest first.
    let letters: Value = get(&query, "/dead-letters?limit=5", Some(&admin), None)
        .await
        .json()
        .await
        .unwrap();
    let first = &letters["dead_letters"][0];
    assert_eq!(
        (first["key"].as_str(), first["projection"].as_str()),
        (Some("poison"), Some("orders"))
    );
    assert_eq!(first["payload"], "{not json");

    assert_eq!(
        get(&query, &path, Some(&admin), None).await.status(),
        StatusCode::OK
    );
    // The scheme is case-insensitive (RFC 9110), as on the command API: both
    // read it through events::auth::bearer_token.
    let lowercase = query
        .http
        .get(query.url(&path))
        .header("authorization", format!("bearer {owner}"))
        .send()
        .await
        .unwrap();
    assert_eq!(lowercase.status(), StatusCode::OK);
    let history: Value = get(&query, "/customers/owner/orders", Some(&admin), None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(history["orders"].as_array().unwrap().len(), 1);

    let forged = command::auth::mint_hs256(
        b"another-secret-of-thirty-two-byt",
        &operator(),
        Duration::from_secs(60),
    );
    let forged = forged.unwrap();
    let missing = format!("/orders/{}", Uuid::now_v7());
    let (bad, unauthorized, absent) = (
        StatusCode::BAD_REQUEST,
        StatusCode::UNAUTHORIZED,
        StatusCode::NOT_FOUND,
    );
    let history = "/customers/owner/orders";
    let (limit_high, limit_zero) = (format!("{history}?limit=101"), format!("{history}?limit=0"));
    let cursor = format!("{history}?cursor=garbage!");
    #[rustfmt::skip]
    let cases: [BadRead; 21] = [
        // Another customer's order and history look exactly like missing ones.
        (&path, Some(&stranger), None, absent, "not_found"),
        (&missing, Some(&stranger), None, absent, "not_found"),
        (history, Some(&stranger), None, absent, "not_found"),
        (&path, None, None, unauthorized, "unauthorized"),
        (&path, Some(&forged), None, unauthorized, "unauthorized"),
        (&limit_high, Some(&owner), None, bad, "invalid_limit"),
        (&limit_zero, Some(&owner), None, bad, "invalid_limit"),
        (&cursor, Some(&owner), None, bad, "invalid_cursor"),
        (&path, Some(&owner), Some("v1.orders.x.y"), bad, "invalid_consistency_token"),
        ("/orders/not-a-uuid", Some(&owner), None, bad, "invalid_id"),
        ("/catalog/items/bad%20sku", None, None, bad, "invalid_id"),
        ("/catalog/items/NO-SUCH-SKU", None, None, absent, "not_found"),
        ("/no/such/route", None, None, absent, "not_found"),
        ("/dead-letters", Some(&owner), None, StatusCode::FORBIDDEN, "forbidden"),
        ("/dead-letters?cursor=%21", Some(&admin), None, bad, "invalid_cursor"),
        ("/dead-letters?limit=1000", Some(&admin), None, bad, "invalid_limit"),
        (SALES_REVERSED, Some(&admin), None, bad, "invalid_range"),
        (SALES_TOO_LONG, Some(&admin), None, bad, "invalid_range"),
        ("/sales?from=yesterday&to=today", Some(&admin), None, bad, "invalid_range"),
        (SALES_WEEKLY, Some(&admin), None, bad, "invalid_bucket"),
        (SALES_WEEKLY, Some(&owner), None, StatusCode::FORBIDDEN, "forbidden"),
    ];
    for (path, bearer, consistency, status, kind) in cases {
        problem(get(&query, path, bearer, consistency).await, status, kind).await;
    }
}

const SALES_REVERSED: &str = "/sales?from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z";
const SALES_TOO_LONG: &str =
    "/sales?from=2026-01-01T00:00:00Z&to=2026-01-03T00:00:00Z&bucket=minute";
const SALES_WEEKLY: &str = "/sales?from=2026-01-01T00:00:00Z&to=2026-01-02T00:00:00Z&bucket=week";

/// A read that must fail: path, bearer token, consistency token, status, problem kind.
type BadRead<'a> = (
    &'a str,
    Option<&'a str>,
    Option<&'a str>,
    StatusCode,
    &'a str,
);
