//! The read side honours consistency tokens (read-your-writes with the
//! token a command answer carries, a plain 503 for a version the log never
//! reached, waits woken by the projector's batches) and pages through a
//! customer's history newest first.

use events::command::Role;
use reqwest::StatusCode;
use serde_json::Value;
use tests::auth::token;
use tests::views::query::{get, place, problem, start, wait_for_version};
use tests::{TestEnv, metric};

#[tokio::test]
async fn reads_wait_for_consistency_tokens_and_histories_page() {
    let env = TestEnv::new();
    let (bus, query) = start(&env).await;
    let customer = token(Role::Customer, "cust-p");

    // Warm up: the projector has joined its group once the first order shows.
    let (first, _) = place(&bus, "cust-p", &["SKU-X"]).await;
    wait_for_version(&query, &format!("/orders/{first}"), Some(&customer), 1).await;

    let mut placed = vec![first];
    for _ in 0..4 {
        placed.push(place(&bus, "cust-p", &["SKU-X"]).await.0);
    }
    place(&bus, "someone-else", &["SKU-X"]).await;
    let (last, version) = place(&bus, "cust-p", &["SKU-X"]).await;
    placed.push(last);

    // Read-your-writes with the token a command answer carries.
    let dotted = tests::consistency_token(events::AggregateType::Order, &last.to_string(), version);
    let response = get(
        &query,
        &format!("/orders/{last}"),
        Some(&customer),
        Some(&dotted),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        (body["status"].as_str(), body["version"].as_u64()),
        (Some("pending"), Some(version))
    );
    let response = get(
        &query,
        "/customers/cust-p/orders?limit=1",
        Some(&customer),
        Some(&dotted),
    )
    .await;
    let page: Value = response.json().await.unwrap();
    assert_eq!(
        page["orders"][0]["order_id"],
        last.to_string(),
        "the newest order comes first"
    );

    // Pages of 2 walk the whole history, newest first, each order once.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/customers/cust-p/orders?limit=2&cursor={c}"),
            None => "/customers/cust-p/orders?limit=2".to_owned(),
        };
        let page: Value = get(&query, &path, Some(&customer), None)
            .await
            .json()
            .await
            .unwrap();
        let orders = page["orders"].as_array().unwrap();
        assert!(orders.len() <= 2);
        seen.extend(
            orders
                .iter()
                .map(|o| o["order_id"].as_str().unwrap().to_owned()),
        );
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    let expected: Vec<String> = placed.iter().rev().map(ToString::to_string).collect();
    assert_eq!(seen, expected);

    // A version the log never reached: a plain 503, never an old answer.
    // Meanwhile the wait checks again whenever a projector batch commits,
    // told by the batch's notification, not only by its timer.
    let ahead = tests::consistency_token(events::AggregateType::Order, &last.to_string(), 99);
    let wakeups = || {
        metric(
            query.addr,
            "query_consistency_wakeups_total",
            &[("by", "listener")],
        )
    };
    let before = wakeups().await;
    let path = format!("/orders/{last}");
    let read = get(&query, &path, Some(&customer), Some(&ahead));
    tokio::pin!(read);
    // Other orders make batches for as long as the read waits.
    let response = loop {
        tokio::select! {
            response = &mut read => break response,
            _ = place(&bus, "someone-else", &["SKU-X"]) => {}
        }
    };
    problem(response, StatusCode::SERVICE_UNAVAILABLE, "stale_read").await;
    assert!(wakeups().await > before, "no batch woke the waiting read");
}
