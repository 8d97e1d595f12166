//! Production posture, attacked from outside: what a default deployment
//! runs, what it tells a stranger, and what its pieces may do.

use std::time::Duration;

use events::args::ViewsArgs;
use events::command::Role;
use events::http::HttpConfig;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tests::TestEnv;
use tests::auth::token;
use tokio_util::sync::CancellationToken;

#[tokio::test]
async fn the_saga_service_refuses_to_start_without_an_explicit_provider() {
    let env = TestEnv::new();
    let config = sagas::Config {
        sandbox: false,
        ..env.sagas_config()
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let outcome = tokio::time::timeout(
        Duration::from_secs(5),
        sagas::run(config, listener, CancellationToken::new()),
    )
    .await
    .expect("the saga service started instead of refusing");
    let error = format!(
        "{:#}",
        outcome.expect_err("started with no provider configured")
    );
    assert!(
        error.contains("SAGAS_SANDBOX") && error.contains("--sandbox"),
        "{error}"
    );
    assert!(!error.contains('\n'), "one line: {error}");
}

/// A port nothing listens on right now.
fn free_port() -> std::net::SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

#[tokio::test]
async fn metrics_and_health_details_can_live_on_a_separate_listener() {
    let env = TestEnv::new();
    env.spawn_projections().await;
    let ops = free_port();
    let query = env
        .spawn_query_api_with(query_api::Config {
            http: HttpConfig {
                ops_addr: Some(ops),
                ..tests::test_http()
            },
            ..env.query_api_config()
        })
        .await;
    let metrics = query.get("/metrics").await;
    assert_eq!(metrics.status(), StatusCode::NOT_FOUND);
    let ready: Value = query.get("/health/ready").await.json().await.unwrap();
    assert_eq!(ready, json!({"status": "ready"}));

    let ops_metrics = query
        .http
        .get(format!("http://{ops}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(ops_metrics.status(), StatusCode::OK);
    assert!(
        ops_metrics
            .text()
            .await
            .unwrap()
            .contains("http_requests_total")
    );
    let details: Value = query
        .http
        .get(format!("http://{ops}/health/ready"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(details["checks"]["postgres"], "ok", "{details}");
}

#[tokio::test]
async fn a_failing_dependency_is_never_described_to_the_caller() {
    // Nothing listens on port 1: PostgreSQL and Redis both fail.
    let config = query_api::Config {
        http: tests::test_http(),
        ..query_api::Config::new(
            ViewsArgs {
                database_url: "postgres://secret_user@127.0.0.1:1/secret_db".into(),
                redis_url: "redis://127.0.0.1:1".into(),
            },
            tests::auth_config(),
        )
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    tokio::spawn(query_api::run(config, listener, shutdown.child_token()));
    let http = reqwest::Client::new();
    let alice = token(Role::Customer, "alice");
    let answers = [
        http.get(format!("http://{addr}/health/ready")),
        http.get(format!("http://{addr}/customers/alice/orders"))
            .bearer_auth(&alice),
        http.get(format!("http://{addr}/catalog/items/MUG-1")),
    ];
    for request in answers {
        let response = tests::eventually(Duration::from_secs(10), || {
            let request = request.try_clone().unwrap();
            async move { request.send().await.ok() }
        })
        .await
        .expect("the query api answered");
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        let body = response.text().await.unwrap();
        for leak in [
            "secret_user",
            "secret_db",
            "127.0.0.1",
            "os error",
            "refused",
        ] {
            assert!(
                !body.contains(leak),
                "the answer describes the dependency: {body}"
            );
        }
    }
    shutdown.cancel();
}

#[tokio::test]
async fn format_characters_are_refused_in_names_and_addresses() {
    let env = TestEnv::new();
    let command = env.spawn_command().await;
    let admin = token(Role::Admin, "ops");
    let alice = token(Role::Customer, "alice");
    let post = |path: &'static str, token: String, body: Value| {
        let request = command
            .http
            .post(command.url(path))
            .bearer_auth(token)
            .header("Idempotency-Key", events::new_id().to_string())
            .json(&body);
        async move {
            let response = request.send().await.unwrap();
            (response.status(), response.json::<Value>().await.unwrap())
        }
    };
    // "Mug" shown right-to-left after the override: a name that lies.
    let item = json!({"sku": "MUG-1", "name": "Mug\u{202E}exe.gnp", "unit_price": 1250, "currency": "USD", "stock": 5});
    let (status, problem) = post("/catalog/items", admin, item).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(problem["invalid_params"][0]["name"], "name", "{problem}");

    let order = json!({
        "currency": "USD",
        "lines": [{"sku": "MUG-1", "quantity": 1}],
        "shipping_address": {"name": "Ada\u{200B}", "line1": "1 Loop\u{2066} Rd", "city": "Springfield", "postal_code": "12345", "country": "US"},
        "payment": {"token": "tok_ok"}
    });
    let (status, problem) = post("/orders", alice, order).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    let fields: Vec<&str> = problem["invalid_params"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        ["shipping_address.name", "shipping_address.line1"],
        "{problem}"
    );
}

#[tokio::test]
async fn the_query_api_reads_as_a_role_that_cannot_write() {
    let env = TestEnv::new();
    env.spawn_projections().await;
    let reader_url =
        env.views_db_url
            .replacen("postgres://postgres@", "postgres://query_reader@", 1);
    assert_ne!(reader_url, env.views_db_url);
    let reader = sqlx::PgPool::connect(&reader_url)
        .await
        .expect("scripts/stack creates the query_reader login role");
    let rows: (i64,) = sqlx::query_as("SELECT count(*) FROM orders")
        .fetch_one(&reader)
        .await
        .expect("the reader reads the views");
    assert_eq!(rows.0, 0);
    for write in [
        "DELETE FROM orders",
        "INSERT INTO sales (bucket, starts_at, currency, orders, revenue_minor) VALUES ('day', now(), 'USD', 1, 1)",
        "CREATE TABLE mine (x int)",
    ] {
        let refused = sqlx::query(write).execute(&reader).await.unwrap_err();
        let code = refused
            .as_database_error()
            .and_then(|e| e.code())
            .map(|c| c.into_owned());
        assert_eq!(code.as_deref(), Some("42501"), "{write}: {refused}");
    }

    // The query API serves its reads through that role.
    let query = env
        .spawn_query_api_with(query_api::Config {
            database_url: reader_url,
            ..env.query_api_config()
        })
        .await;
    let alice = token(Role::Customer, "alice");
    let response = query
        .http
        .get(query.url("/customers/alice/orders"))
        .bearer_auth(alice)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

/// Attack: a local process that knows the port reads or poisons the cache.
/// The stack's Redis asks for the password that only `REDIS_URL` carries.
#[tokio::test]
async fn the_stack_redis_refuses_a_client_without_its_password() {
    let url = tests::redis_url();
    let (_, address) = url
        .split_once('@')
        .expect("the stack's REDIS_URL carries its password");
    let anonymous = redis::Client::open(format!("redis://{address}")).unwrap();
    let mut conn = anonymous
        .get_multiplexed_async_connection()
        .await
        .expect("the port is reachable");
    let refused = redis::cmd("GET")
        .arg("any-key")
        .query_async::<Option<String>>(&mut conn)
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("NOAUTH"), "{refused}");

    let owner = redis::Client::open(url).unwrap();
    let mut conn = owner.get_multiplexed_async_connection().await.unwrap();
    let answer: Option<String> = redis::cmd("GET")
        .arg("any-key")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(answer, None);
}
