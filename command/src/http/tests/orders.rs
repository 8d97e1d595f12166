//! Placing and cancelling orders: ids, envelopes and outcome mapping.

use axum::http::StatusCode;
use events::command::{DomainCommand, RejectionKind, Role, codes};
use events::domain::OrderCommand;
use serde_json::json;

use super::*;
use events::consistency::ConsistencyToken;

const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
const ORDER: &str = "0190a5b2-3c4d-7e8f-9a0b-1c2d3e4f5a6b";

async fn place(app: &TestApp, subject: &str, key: &str, body: &Value) -> Answer {
    let headers = [("Idempotency-Key", key), ("traceparent", TRACEPARENT)];
    app.call(json("POST", "/orders", &customer(subject), &headers, body))
        .await
}

#[tokio::test]
async fn a_placed_order_answers_201_with_its_id_version_token_and_location() {
    let app = app();
    app.bus.then(Script::Accept(1));
    let answer = place(&app, "alice", "key-1", &order_body()).await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
    let envelope = app.bus.only();
    let order_id = envelope.aggregate_id.clone();
    assert_eq!(answer.body["order_id"], order_id);
    assert_eq!(answer.body["status"], "pending");
    assert_eq!(answer.body["version"], 1);
    assert_eq!(answer.body["command_id"], envelope.command_id.to_string());
    let text = answer.body["consistency_token"].as_str().unwrap();
    let token = ConsistencyToken::verify(text, &signing()).unwrap();
    assert_eq!(
        (token.aggregate, token.id.as_str(), token.version),
        (events::AggregateType::Order, order_id.as_str(), 1)
    );
    assert_eq!(
        answer.header("location"),
        Some(format!("{QUERY_API}/orders/{order_id}").as_str())
    );
}

#[tokio::test]
async fn the_envelope_carries_the_order_the_caller_and_the_trace() {
    let app = app();
    place(&app, "alice", "key-1", &order_body()).await;
    let envelope = app.bus.only();
    assert_eq!(
        envelope.correlation_id.to_string(),
        envelope.aggregate_id,
        "the saga correlates by order"
    );
    assert_eq!(envelope.causation_id, envelope.command_id);
    assert_eq!(envelope.traceparent.as_deref(), Some(TRACEPARENT));
    assert_eq!(envelope.expected_version, None);
    assert_eq!(envelope.issued_by.subject, "alice");
    assert_eq!(envelope.issued_by.role, Role::Customer);
    let DomainCommand::Order(OrderCommand::PlaceOrder {
        customer_id,
        currency,
        lines,
        shipping_address,
        payment_token,
    }) = envelope.command
    else {
        panic!("expected PlaceOrder, got {:?}", envelope.command);
    };
    assert_eq!(customer_id.as_str(), "alice");
    assert_eq!(currency.code(), "USD");
    let lines: Vec<(&str, u32)> = lines.iter().map(|l| (l.sku.as_str(), l.quantity)).collect();
    assert_eq!(lines, [("SKU-1", 2), ("SKU-2", 1)]);
    assert_eq!(shipping_address.country, "GB");
    assert_eq!(payment_token, "tok_ok");
}

#[tokio::test]
async fn an_invalid_traceparent_is_dropped_not_refused() {
    let app = app();
    for bad in [
        "garbage",
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    ] {
        let headers = [("Idempotency-Key", bad), ("traceparent", bad)];
        let answer = app
            .call(json(
                "POST",
                "/orders",
                &customer("alice"),
                &headers,
                &order_body(),
            ))
            .await;
        assert_eq!(answer.status, StatusCode::CREATED);
    }
    assert!(app.bus.seen().iter().all(|e| e.traceparent.is_none()));
}

#[tokio::test]
async fn a_retry_reaches_the_same_command_and_order_but_another_callers_key_does_not() {
    let app = app();
    let first = place(&app, "alice", "key-1", &order_body()).await;
    let retry = place(&app, "alice", "key-1", &order_body()).await;
    let other_caller = place(&app, "bob", "key-1", &order_body()).await;
    let other_key = place(&app, "alice", "key-2", &order_body()).await;
    assert_eq!(first.body, retry.body, "same key and body: the same answer");
    let seen = app.bus.seen();
    assert_eq!(seen[0].command_id, seen[1].command_id);
    assert_eq!(seen[0].aggregate_id, seen[1].aggregate_id);
    assert_eq!(seen[0].fingerprint, seen[1].fingerprint);
    for other in [&seen[2], &seen[3]] {
        assert_ne!(other.command_id, seen[0].command_id);
        assert_ne!(other.aggregate_id, seen[0].aggregate_id);
    }
    assert_ne!(
        seen[0].command_id.to_string(),
        seen[0].aggregate_id,
        "command and order ids differ"
    );
    assert_ne!(other_caller.body["order_id"], first.body["order_id"]);
    assert_ne!(other_key.body["order_id"], first.body["order_id"]);
}

#[tokio::test]
async fn the_fingerprint_follows_the_content_not_the_bytes() {
    let app = app();
    let reordered = r#"{"payment":{"token":"tok_ok"},"lines":[{"quantity":2,"sku":"SKU-1"},{"sku":"SKU-2","quantity":1}],
        "shipping_address":{"country":"GB","name":"Ada Lovelace","line1":"12 St James's Square","city":"London","postal_code":"SW1Y 4JH"},
        "currency":"USD"}"#;
    place(&app, "alice", "key-1", &order_body()).await;
    let body = Some(("application/json", reordered.as_bytes().to_vec()));
    app.call(raw(
        "POST",
        "/orders",
        Some(&customer("alice")),
        &[("Idempotency-Key", "key-1")],
        body,
    ))
    .await;
    let mut changed = order_body();
    changed["lines"][0]["quantity"] = json!(3);
    place(&app, "alice", "key-1", &changed).await;
    let seen = app.bus.seen();
    assert_eq!(seen[0].fingerprint, seen[1].fingerprint);
    assert_ne!(seen[0].fingerprint, seen[2].fingerprint);
    assert_eq!(
        seen[0].command_id, seen[2].command_id,
        "the processor sees the same command id"
    );
}

#[tokio::test]
async fn a_key_reused_for_another_body_is_422() {
    let app = app();
    app.bus.then(Script::Reject(
        RejectionKind::Invalid,
        codes::IDEMPOTENCY_KEY_REUSED,
    ));
    let answer = place(&app, "alice", "key-1", &order_body()).await;
    answer.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "idempotency_key_reused");
    // The bus may answer from its memory of replies: the API compares fingerprints itself.
    app.bus.then(Script::ReplayOtherFingerprint);
    let answer = place(&app, "alice", "key-1", &order_body()).await;
    answer.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "idempotency_key_reused");
}

#[tokio::test]
async fn no_reply_in_time_is_202_with_a_status_url_and_the_order_id() {
    let app = app();
    app.bus.then(Script::Queue);
    let answer = place(&app, "alice", "key-1", &order_body()).await;
    assert_eq!(answer.status, StatusCode::ACCEPTED);
    let sent = app.bus.only();
    let (command_id, order_id) = (sent.command_id, sent.aggregate_id);
    let status_url = format!("/commands/{command_id}");
    assert_eq!(
        answer.body,
        json!({"command_id": command_id, "status": "pending", "status_url": status_url, "order_id": order_id})
    );
    assert_eq!(answer.header("location"), Some(status_url.as_str()));
}

#[tokio::test]
async fn an_unavailable_log_is_503_with_retry_after() {
    let app = app();
    app.bus.then(Script::Fail);
    let answer = place(&app, "alice", "key-1", &order_body()).await;
    answer.assert_problem(StatusCode::SERVICE_UNAVAILABLE, "command_log_unavailable");
    assert_eq!(answer.header("retry-after"), Some("1"));
}

fn cancel(subject_token: &str, headers: &[(&str, &str)]) -> Request<Body> {
    let uri = format!("/orders/{ORDER}/cancel");
    json(
        "POST",
        &uri,
        subject_token,
        headers,
        &json!({"reason": "changed my mind"}),
    )
}

#[tokio::test]
async fn cancel_passes_if_match_and_the_caller_and_answers_200() {
    let app = app();
    app.bus.then(Script::Accept(4));
    let answer = app
        .call(cancel(&customer("alice"), &[("If-Match", "\"3\"")]))
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(answer.body["version"], 4);
    assert_eq!(answer.body["aggregate_id"], ORDER);
    assert_eq!(answer.header("etag"), Some("\"4\""));
    let envelope = app.bus.only();
    assert_eq!(envelope.expected_version, Some(3));
    assert_eq!(envelope.aggregate_id, ORDER);
    assert_eq!(envelope.correlation_id, envelope.command_id);
    assert_eq!(envelope.issued_by.subject, "alice");
    let reason = "changed my mind".to_owned();
    assert_eq!(
        envelope.command,
        DomainCommand::Order(OrderCommand::RequestCancellation { reason })
    );
    app.call(cancel(&admin(), &[("If-Match", "7")])).await;
    assert_eq!(app.bus.seen()[1].expected_version, Some(7));
    assert_eq!(app.bus.seen()[1].issued_by.role, Role::Admin);
}

#[tokio::test]
async fn rejections_map_to_their_kind_with_the_code_as_type_and_the_message_as_detail() {
    let app = app();
    let cases = [
        (
            RejectionKind::Conflict,
            codes::VERSION_CONFLICT,
            StatusCode::CONFLICT,
        ),
        (
            RejectionKind::NotFound,
            "order_not_found",
            StatusCode::NOT_FOUND,
        ),
        (
            RejectionKind::Invalid,
            "invalid_reason",
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ];
    for (kind, code, status) in cases {
        app.bus.then(Script::Reject(kind, code));
        let answer = app
            .call(cancel(&customer("mallory"), &[("If-Match", "1")]))
            .await;
        answer.assert_problem(status, code);
        assert_eq!(answer.body["detail"], format!("refused: {code}"));
    }
}

#[tokio::test]
async fn commands_without_a_key_get_fresh_ids_and_with_one_derived_ids() {
    let app = app();
    app.call(cancel(&customer("alice"), &[])).await;
    app.call(cancel(&customer("alice"), &[])).await;
    app.call(cancel(&customer("alice"), &[("Idempotency-Key", "c-1")]))
        .await;
    app.call(cancel(&customer("alice"), &[("Idempotency-Key", "c-1")]))
        .await;
    let seen = app.bus.seen();
    assert_ne!(seen[0].command_id, seen[1].command_id);
    assert_eq!(seen[0].command_id.get_version_num(), 7);
    assert_eq!(seen[2].command_id, seen[3].command_id);
    assert_eq!(seen[2].command_id.get_version_num(), 5);
}
