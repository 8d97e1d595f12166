//! Limits on every door, attacked the way an outsider would: a client that
//! trickles its headers or its body, one that floods the API, and one that
//! invents HTTP methods to grow the metrics without bound.

use std::time::Duration;

use events::command::Role;
use events::http::{HttpConfig, RateLimit};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use tests::TestEnv;
use tests::auth::token;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Reads until the server closes the connection (or `limit` passes, which
/// answers `None`); what the server sent, if it closed.
async fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> Option<String> {
    let mut received = Vec::new();
    let outcome = tokio::time::timeout(limit, stream.read_to_end(&mut received)).await;
    match outcome {
        Ok(_) => Some(String::from_utf8_lossy(&received).into_owned()),
        Err(_) => None,
    }
}

#[tokio::test]
async fn a_client_that_trickles_its_headers_is_disconnected() {
    let env = TestEnv::new();
    env.spawn_projections().await;
    let query = env
        .spawn_query_api_with(query_api::Config {
            http: HttpConfig {
                header_read_timeout: Duration::from_millis(500),
                ..tests::test_http()
            },
            ..env.query_api_config()
        })
        .await;
    let mut stream = TcpStream::connect(query.addr).await.unwrap();
    // The request line and one header, never the blank line that ends them.
    stream
        .write_all(b"GET /health/live HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let closed = read_until_closed(&mut stream, Duration::from_secs(5)).await;
    assert!(
        closed.is_some(),
        "a connection without complete headers was still open after 5 s"
    );

    // An idle kept-alive connection is closed as well.
    let mut idle = TcpStream::connect(query.addr).await.unwrap();
    idle.write_all(b"GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let answer = read_until_closed(&mut idle, Duration::from_secs(5)).await;
    assert!(
        answer
            .as_deref()
            .is_some_and(|a| a.starts_with("HTTP/1.1 200")),
        "{answer:?}"
    );
}

#[tokio::test]
async fn a_slow_body_is_cut_off_and_requests_in_flight_are_bounded() {
    let env = TestEnv::new();
    let command = env
        .spawn_command_with(command::Config {
            http: HttpConfig {
                request_timeout: Duration::from_secs(2),
                max_in_flight: 1,
                ..tests::test_http()
            },
            ..env.command_config()
        })
        .await;
    let alice = token(Role::Customer, "alice");
    let mut slow = TcpStream::connect(command.addr).await.unwrap();
    let head = format!(
        "POST /orders HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {alice}\r\n\
         Idempotency-Key: slow-1\r\nContent-Type: application/json\r\nContent-Length: 400\r\n\r\n{{\"currency\""
    );
    slow.write_all(head.as_bytes()).await.unwrap();

    // While the slow request holds the only slot, others are shed at once.
    let shed = tests::eventually(Duration::from_secs(2), || async {
        let response = command.get("/openapi.json").await;
        (response.status() == StatusCode::SERVICE_UNAVAILABLE).then_some(response)
    })
    .await
    .expect("a second request was served while one was in flight");
    assert_eq!(shed.headers()["retry-after"], "1");
    let problem: Value = shed.json().await.unwrap();
    assert!(
        problem["type"].as_str().unwrap().ends_with("/overloaded"),
        "{problem}"
    );

    // The slow body is answered 408 once the request timeout passes.
    let mut received = vec![0; 1024];
    let read = tokio::time::timeout(Duration::from_secs(10), slow.read(&mut received))
        .await
        .expect("the slow request was still open after 10 s")
        .unwrap();
    let answer = String::from_utf8_lossy(&received[..read]);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("application/problem+json"), "{answer}");

    // The slot is free again.
    let response = command.get("/openapi.json").await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_caller_over_its_rate_gets_429_with_retry_after_and_others_do_not() {
    let env = TestEnv::new();
    env.spawn_projections().await;
    let query = env
        .spawn_query_api_with(query_api::Config {
            http: HttpConfig {
                rate: RateLimit::new(1, 5),
                ..tests::test_http()
            },
            ..env.query_api_config()
        })
        .await;
    let get = |path: &'static str, token: Option<String>| {
        let request = query.http.get(query.url(path));
        let request = match token {
            Some(token) => request.bearer_auth(token),
            None => request,
        };
        async move { request.send().await.unwrap() }
    };
    let alice = token(Role::Customer, "alice");
    let mut limited = None;
    for _ in 0..20 {
        let response = get("/customers/alice/orders", Some(alice.clone())).await;
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            limited = Some(response);
            break;
        }
        assert_eq!(response.status(), StatusCode::OK);
    }
    let limited = limited.expect("20 requests in a row were all served");
    let retry_after: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry_after), "Retry-After {retry_after}");
    assert_eq!(
        limited.headers()["content-type"],
        "application/problem+json"
    );
    let problem: Value = limited.json().await.unwrap();
    assert!(
        problem["type"].as_str().unwrap().ends_with("/rate_limited"),
        "{problem}"
    );

    // Another customer has a bucket of their own.
    let bob = token(Role::Customer, "bob");
    let response = get("/customers/bob/orders", Some(bob)).await;
    assert_eq!(response.status(), StatusCode::OK);

    // A forged token does not buy a fresh bucket: unverified callers count
    // by address, and this address is flooded too.
    let mut anonymous = Vec::new();
    for _ in 0..10 {
        anonymous.push(
            get("/catalog/items/NOPE-1", Some("forged.token.x".into()))
                .await
                .status(),
        );
    }
    assert!(
        anonymous.contains(&StatusCode::TOO_MANY_REQUESTS),
        "{anonymous:?}"
    );
}

#[tokio::test]
async fn invented_methods_and_paths_do_not_create_metric_series() {
    let env = TestEnv::new();
    env.spawn_projections().await;
    let query = env.spawn_query_api().await;
    for i in 0..3 {
        let method = Method::from_bytes(format!("XATTACK{i}").as_bytes()).unwrap();
        let response = query
            .http
            .request(method, query.url(&format!("/attack-{i}")))
            .send()
            .await
            .unwrap();
        assert!(response.status().is_client_error());
    }
    let metrics = query.get("/metrics").await.text().await.unwrap();
    assert!(
        !metrics.contains("XATTACK"),
        "a client-chosen method became a label"
    );
    assert!(
        !metrics.contains("/attack-"),
        "a client-chosen path became a label"
    );
    assert!(
        metrics.contains(r#"method="other""#) && metrics.contains(r#"route="unmatched""#),
        "{metrics}"
    );
}

#[tokio::test]
async fn prices_above_the_bound_are_refused() {
    let env = TestEnv::new();
    let command = env.spawn_command().await;
    let admin = token(Role::Admin, "ops");
    let send = |request: reqwest::RequestBuilder, body: Value| {
        let request = request
            .bearer_auth(&admin)
            .header("Idempotency-Key", events::new_id().to_string())
            .json(&body);
        async move {
            let response = request.send().await.unwrap();
            (response.status(), response.json::<Value>().await.unwrap())
        }
    };
    let too_much = events::domain::catalog::MAX_UNIT_PRICE_MINOR + 1;
    let item = |price: i64| serde_json::json!({"sku": "GOLD-1", "name": "Gold", "unit_price": price, "currency": "USD", "stock": 5});
    let create = || command.http.post(command.url("/catalog/items"));
    let (status, problem) = send(create(), item(too_much)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(problem["invalid_params"][0]["name"], "unit_price");

    let (status, body) = send(create(), item(1_000)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let change = command.http.put(command.url("/catalog/items/GOLD-1/price"));
    let (status, problem) = send(
        change,
        serde_json::json!({"unit_price": i64::MAX, "currency": "USD"}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
}

#[tokio::test]
async fn a_customer_with_too_many_open_orders_gets_the_next_one_rejected() {
    use tests::shop::{OrderSpec, Shop};
    let env = TestEnv::new();
    let shop = Shop::start(&env).await;
    // At the production pace the held orders' authorization deadline is a
    // minute away, so a slow machine cannot release them before the check.
    env.spawn_sagas_with(sagas::Config {
        max_open_orders: 2,
        pace: sagas::Pace::default(),
        ..env.sagas_config()
    })
    .await;
    shop.create_item("MUG", 1000, 100).await;
    let spec = |customer, token| OrderSpec {
        customer,
        lines: &[("MUG", 10)],
        token,
        country: "US",
    };
    // Two orders whose payment never answers stay open (and hold stock).
    let held = [
        shop.place(&spec("ada", "tok_no_response"), "ada-1").await,
        shop.place(&spec("ada", "tok_no_response"), "ada-2").await,
    ];
    // The cap counts running sagas, so wait for theirs: an order the view
    // already shows may not have reached the saga worker yet (another
    // partition), and a third order seen first would find none open.
    for order in &held {
        let running = tests::eventually(Duration::from_secs(30), || async {
            let status = tests::shop::saga_status(&env, order).await?;
            (status == "running").then_some(())
        })
        .await;
        assert!(
            running.is_some(),
            "{}",
            tests::shop::saga_state(&env, order).await
        );
    }
    let third = shop.place(&spec("ada", "tok_ok"), "ada-3").await;
    let refused = shop
        .order_until(&third, Duration::from_secs(30), |o| {
            o["status"] == "rejected"
        })
        .await;
    assert!(
        refused.to_string().contains("too_many_open_orders"),
        "{refused}"
    );
    // Another customer is not held back by ada's orders.
    let other = shop.place(&spec("bob", "tok_ok"), "bob-1").await;
    shop.order_until(&other, Duration::from_secs(60), |o| {
        o["status"] == "confirmed"
    })
    .await;
    // The refused order never reserved anything: 10 units for each of ada's
    // two open orders and 10 sold to bob.
    let item = tests::eventually(Duration::from_secs(10), || async {
        let item = shop.item("MUG").await;
        (item["available"] == 70).then_some(item)
    })
    .await;
    assert!(item.is_some(), "{}", shop.item("MUG").await);
}

/// Stock hoarding through one huge order: a line over the per-line quantity
/// cap, or more lines than an order may have, is refused outright.
#[tokio::test]
async fn quantities_and_lines_above_the_caps_are_refused() {
    use events::domain::order::{MAX_LINE_QUANTITY, MAX_ORDER_LINES};
    let env = TestEnv::new();
    let command = env.spawn_command().await;
    let alice = token(Role::Customer, "alice");
    let order = |lines: Vec<Value>| {
        serde_json::json!({"currency": "USD", "lines": lines,
            "shipping_address": {"name": "Ada", "line1": "1 Loop Rd", "city": "Springfield",
                                 "postal_code": "12345", "country": "US"},
            "payment": {"token": "tok_ok"}})
    };
    let line = |sku: String, quantity: u32| serde_json::json!({"sku": sku, "quantity": quantity});
    let hoard = order(vec![line("MUG-1".into(), MAX_LINE_QUANTITY + 1)]);
    let many = (0..=MAX_ORDER_LINES)
        .map(|n| line(format!("SKU-{n}"), 1))
        .collect();
    for body in [hoard, order(many)] {
        let response = command
            .http
            .post(command.url("/orders"))
            .bearer_auth(&alice)
            .header("Idempotency-Key", events::new_id().to_string())
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let problem: Value = response.json().await.unwrap();
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    }
}
