//! The fulfilment saga end to end on the real stack, one order down every
//! sandbox path, observed through the public APIs: the order's final status,
//! its payment and shipment, and the stock left behind.

use std::time::Duration;

use events::command::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tests::TestEnv;
use tests::auth::token;
use tests::shop::{OrderSpec, Shop, saga_state, terminal_saga};

const LIMIT: Duration = Duration::from_secs(90);

fn spec<'a>(lines: &'a [(&'a str, u32)], token: &'a str, country: &'a str) -> OrderSpec<'a> {
    OrderSpec {
        customer: "ada",
        lines,
        token,
        country,
    }
}

/// What an order should end as: saga status, order status, payment, shipment.
struct Expected {
    name: &'static str,
    saga: &'static str,
    order: &'static str,
    payment: Option<&'static str>,
    shipment: Option<&'static str>,
}

fn field<'a>(order: &'a Value, name: &str) -> Option<&'a str> {
    order[name].as_str()
}

#[tokio::test]
async fn every_sandbox_path_ends_as_documented() {
    let env = TestEnv::new();
    let shop = Shop::start(&env).await;
    env.spawn_sagas().await;
    shop.create_item("MUG", 1000, 100).await;
    shop.create_item("RARE", 5000, 1).await;

    let paths: Vec<(OrderSpec, Expected)> = vec![
        (
            spec(&[("MUG", 2)], "tok_ok", "US"),
            Expected {
                name: "ok",
                saga: "completed",
                order: "confirmed",
                payment: Some("captured"),
                // Released to the carrier once the payment was captured.
                shipment: Some("released"),
            },
        ),
        (
            spec(&[("MUG", 1)], "tok_flaky", "US"),
            Expected {
                name: "flaky",
                saga: "completed",
                order: "confirmed",
                payment: Some("captured"),
                // Released to the carrier once the payment was captured.
                shipment: Some("released"),
            },
        ),
        (
            spec(&[("MUG", 1)], "tok_decline", "US"),
            Expected {
                name: "decline",
                saga: "compensated",
                order: "rejected",
                payment: Some("declined"),
                // Booked in parallel with the authorization, then cancelled.
                shipment: Some("cancelled"),
            },
        ),
        (
            spec(&[("MUG", 1)], "tok_no_response", "US"),
            Expected {
                name: "no response",
                saga: "compensated",
                order: "rejected",
                payment: Some("void_pending"),
                shipment: Some("cancelled"),
            },
        ),
        (
            spec(&[("MUG", 1)], "tok_capture_fail", "US"),
            Expected {
                name: "capture fails",
                saga: "compensated",
                order: "rejected",
                payment: Some("voided"),
                shipment: Some("cancelled"),
            },
        ),
        (
            spec(&[("MUG", 1)], "tok_ok", "ZZ"),
            Expected {
                name: "carrier refuses",
                saga: "compensated",
                order: "rejected",
                payment: Some("voided"),
                shipment: Some("refused"),
            },
        ),
        (
            spec(&[("MUG", 1), ("RARE", 5)], "tok_ok", "US"),
            Expected {
                name: "short of stock",
                saga: "compensated",
                order: "rejected",
                payment: None,
                shipment: None,
            },
        ),
        (
            spec(&[("NOPE", 1)], "tok_ok", "US"),
            Expected {
                name: "unknown sku",
                saga: "compensated",
                order: "rejected",
                payment: None,
                shipment: None,
            },
        ),
    ];
    let mut placed = Vec::new();
    for (i, (spec, expected)) in paths.iter().enumerate() {
        placed.push((shop.place(spec, &format!("path-{i}")).await, expected));
    }
    for (order_id, expected) in &placed {
        let saga = terminal_saga(&env, order_id, LIMIT).await;
        assert_eq!(
            saga,
            expected.saga,
            "saga of the {} order: {}",
            expected.name,
            saga_state(&env, order_id).await
        );
        let order = shop
            .order_until(order_id, LIMIT, |o| {
                field(o, "status") == Some(expected.order)
                    && field(o, "payment_status") == expected.payment
                    && field(o, "shipment_status") == expected.shipment
            })
            .await;
        if expected.order == "confirmed" {
            assert_eq!(
                order["total"]["minor"].as_i64().unwrap() % 1000,
                0,
                "{order}"
            );
        }
    }
    // Only the two completed orders took stock (2 + 1 mugs); nothing is left reserved.
    for (sku, on_hand) in [("MUG", 97), ("RARE", 1)] {
        let settled = tests::eventually(LIMIT, || async {
            let item = shop.item(sku).await;
            (item["on_hand"] == json!(on_hand) && item["reserved"] == json!(0)).then_some(())
        })
        .await;
        assert!(settled.is_some(), "{sku}: {}", shop.item(sku).await);
    }
}

#[tokio::test]
async fn customers_cancel_before_capture_after_capture_and_too_late() {
    let env = TestEnv::new();
    let shop = Shop::start(&env).await;
    env.spawn_sagas().await;
    shop.create_item("MUG", 1000, 10).await;
    let ada = token(Role::Customer, "ada");
    let cancel = json!({"reason": "changed my mind"});

    // Before the capture: the payment provider has not answered yet.
    let waiting = shop
        .place(&spec(&[("MUG", 1)], "tok_no_response", "US"), "c-1")
        .await;
    shop.order_until(&waiting, LIMIT, |o| {
        field(o, "payment_status") == Some("authorization_pending")
    })
    .await;
    let (status, body) = shop
        .post(
            &format!("/orders/{waiting}/cancel"),
            &ada,
            "c-1-cancel",
            &cancel,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let saga = terminal_saga(&env, &waiting, LIMIT).await;
    assert_eq!(saga, "compensated", "{}", saga_state(&env, &waiting).await);
    let order = shop
        .order_until(&waiting, LIMIT, |o| field(o, "status") == Some("rejected"))
        .await;
    assert_eq!(
        field(&order, "status_reason"),
        Some("cancelled_by_customer"),
        "{order}"
    );
    // Nothing was authorized: the void waits for a late authorization to release.
    shop.order_until(&waiting, LIMIT, |o| {
        field(o, "payment_status") == Some("void_pending")
    })
    .await;

    // After the capture, before dispatch: refund, cancel the shipment, restock.
    let paid = shop
        .place(&spec(&[("MUG", 2)], "tok_ok", "US"), "c-2")
        .await;
    assert_eq!(terminal_saga(&env, &paid, LIMIT).await, "completed");
    shop.order_until(&paid, LIMIT, |o| field(o, "status") == Some("confirmed"))
        .await;
    let (status, body) = shop
        .post(
            &format!("/orders/{paid}/cancel"),
            &ada,
            "c-2-cancel",
            &cancel,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let order = shop
        .order_until(&paid, LIMIT, |o| {
            field(o, "status") == Some("cancelled")
                && field(o, "payment_status") == Some("refunded")
                && field(o, "shipment_status") == Some("cancelled")
        })
        .await;
    assert!(field(&order, "cancellation_reason").is_some(), "{order}");
    let saga = terminal_saga(&env, &paid, LIMIT).await;
    assert_eq!(saga, "compensated", "{}", saga_state(&env, &paid).await);

    // After dispatch: too late, nothing changes.
    let shipped = shop
        .place(&spec(&[("MUG", 1)], "tok_ok", "US"), "c-3")
        .await;
    assert_eq!(terminal_saga(&env, &shipped, LIMIT).await, "completed");
    shop.order_until(&shipped, LIMIT, |o| field(o, "status") == Some("confirmed"))
        .await;
    let carrier = token(Role::Carrier, "sandbox-carrier");
    let (status, body) = shop
        .post(
            &format!("/shipments/{shipped}/dispatch"),
            &carrier,
            "c-3-dispatch",
            &json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    shop.order_until(&shipped, LIMIT, |o| field(o, "status") == Some("shipped"))
        .await;
    let (status, body) = shop
        .post(
            &format!("/orders/{shipped}/cancel"),
            &ada,
            "c-3-cancel",
            &cancel,
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");

    // 10 mugs: the refunded order's 2 came back, the shipped one took 1.
    let settled = tests::eventually(LIMIT, || async {
        let item = shop.item("MUG").await;
        (item["on_hand"] == json!(9) && item["reserved"] == json!(0)).then_some(())
    })
    .await;
    assert!(settled.is_some(), "stock: {}", shop.item("MUG").await);
}

#[tokio::test]
async fn an_unanswered_capture_parks_the_saga_for_an_operator() {
    let env = TestEnv::new();
    let shop = Shop::start(&env).await;
    env.spawn_sagas().await;
    shop.create_item("MUG", 1000, 10).await;
    // The provider never answers a capture: whether the money was taken is
    // unknown, so after its deadlines the saga waits for a person.
    let unpaid = shop
        .place(&spec(&[("MUG", 1)], "tok_capture_no_response", "US"), "p-1")
        .await;
    let parked = terminal_saga(&env, &unpaid, LIMIT).await;
    assert_eq!(
        parked,
        "needs_attention",
        "{}",
        saga_state(&env, &unpaid).await
    );
    let view = tests::eventually(LIMIT, || async {
        let saga = shop.read(&format!("/sagas/{unpaid}")).await?;
        (saga["status"] == "needs_attention").then_some(saga)
    })
    .await
    .expect("the saga view shows the parked saga");
    assert!(
        view["reason"]
            .as_str()
            .is_some_and(|r| r.contains("capture")),
        "{view}"
    );
    // Nothing was released: the parcel cannot leave unpaid.
    let carrier = token(Role::Carrier, "sandbox-carrier");
    let path = format!("/shipments/{unpaid}/dispatch");
    let (status, body) = shop.post(&path, &carrier, "p-1-dispatch", &json!({})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");

    // A retry asks for the capture again, unanswered, and parks again; a
    // resolution settles it.
    let admin = shop.admin.clone();
    let (status, body) = shop
        .post(
            &format!("/sagas/{unpaid}/retry"),
            &admin,
            "p-1-retry",
            &json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(terminal_saga(&env, &unpaid, LIMIT).await, "needs_attention");
    let blank = json!({"note": "  "});
    let resolve = format!("/sagas/{unpaid}/resolve");
    let (status, _) = shop.post(&resolve, &admin, "p-1-blank", &blank).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let note = json!({"note": "customer paid by bank transfer"});
    let (status, body) = shop.post(&resolve, &admin, "p-1-resolve", &note).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        terminal_saga(&env, &unpaid, LIMIT).await,
        "resolved_by_operator"
    );
    let (status, body) = shop.post(&resolve, &admin, "p-1-again", &note).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(
        body["type"]
            .as_str()
            .map(|t| t.ends_with("saga_not_parked")),
        Some(true),
        "{body}"
    );
    let nowhere = format!("/sagas/{}/retry", uuid::Uuid::new_v4());
    let (status, body) = shop.post(&nowhere, &admin, "p-1-nowhere", &json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
}
