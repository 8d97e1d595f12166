//! Authentication and roles: 401 with a challenge, 403 for the wrong role,
//! both before the body is looked at, and nothing dispatched.

use axum::http::StatusCode;
use events::command::Role;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;

use super::*;

fn signed(claims: &Value, secret: &[u8]) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret),
    )
    .unwrap()
}

#[tokio::test]
async fn missing_expired_forged_and_malformed_tokens_are_401_with_a_challenge() {
    let app = app();
    let answer = app.call(raw("POST", "/orders", None, &[KEY], None)).await;
    answer.assert_problem(StatusCode::UNAUTHORIZED, "unauthorized");
    assert_eq!(answer.header("www-authenticate"), Some("Bearer"));
    let basic = raw(
        "POST",
        "/orders",
        None,
        &[KEY, ("authorization", "Basic YTpi")],
        None,
    );
    assert_eq!(app.call(basic).await.status, StatusCode::UNAUTHORIZED);

    let now = chrono::Utc::now().timestamp();
    let expired = signed(
        &json!({"sub": "alice", "role": "customer", "exp": now - 3600}),
        SECRET,
    );
    let forged = signed(
        &json!({"sub": "alice", "role": "customer", "exp": now + 3600}),
        b"guess",
    );
    for bad in [expired.as_str(), forged.as_str(), "not-a-jwt", "a.b.c"] {
        let answer = place_with_token(&app, bad).await;
        answer.assert_problem(StatusCode::UNAUTHORIZED, "unauthorized");
        assert_eq!(
            answer.header("www-authenticate"),
            Some("Bearer error=\"invalid_token\"")
        );
    }
    app.assert_nothing_dispatched();
}

async fn place_with_token(app: &TestApp, token: &str) -> Answer {
    app.call(json("POST", "/orders", token, &[KEY], &order_body()))
        .await
}

#[tokio::test]
async fn wrong_roles_are_403_before_the_body_is_read() {
    let app = app();
    let garbage = Some(("application/json", b"{".to_vec()));
    let cases = [
        ("POST", "/orders", admin()),
        ("POST", "/orders", carrier()),
        ("POST", "/catalog/items", customer("alice")),
        ("PUT", "/catalog/items/SKU-1/price", carrier()),
        (
            "POST",
            "/orders/0190a5b2-3c4d-7e8f-9a0b-1c2d3e4f5a6b/cancel",
            carrier(),
        ),
        (
            "POST",
            "/shipments/0190a5b2-3c4d-7e8f-9a0b-1c2d3e4f5a6b/dispatch",
            customer("alice"),
        ),
        ("POST", "/probes", token(Role::Carrier, "dhl")),
    ];
    for (method, uri, token) in cases {
        let answer = app
            .call(raw(method, uri, Some(&token), &[KEY], garbage.clone()))
            .await;
        answer.assert_problem(StatusCode::FORBIDDEN, "forbidden");
    }
    let anonymous_probe = app.call(raw("POST", "/probes", None, &[], None)).await;
    anonymous_probe.assert_problem(StatusCode::UNAUTHORIZED, "unauthorized");
    app.assert_nothing_dispatched();
}
