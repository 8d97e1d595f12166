//! Every malformed request gets a problem+json 4xx and dispatches nothing.

use axum::http::StatusCode;
use serde_json::json;

use super::*;

async fn place(app: &TestApp, body: &Value) -> Answer {
    app.call(json("POST", "/orders", &customer("alice"), &[KEY], body))
        .await
}

#[tokio::test]
async fn malformed_json_is_400() {
    let app = app();
    for bytes in [
        &b"{\"currency\": "[..],
        b"",
        b"{\"currency\": \"USD\",}",
        b"nope",
    ] {
        let body = Some(("application/json", bytes.to_vec()));
        let answer = app
            .call(raw(
                "POST",
                "/orders",
                Some(&customer("alice")),
                &[KEY],
                body,
            ))
            .await;
        answer.assert_problem(StatusCode::BAD_REQUEST, "malformed_json");
    }
    app.assert_nothing_dispatched();
}

#[tokio::test]
async fn a_body_that_is_not_json_is_415() {
    let app = app();
    let body = order_body().to_string().into_bytes();
    for content_type in ["text/plain", "application/x-www-form-urlencoded"] {
        let request = raw(
            "POST",
            "/orders",
            Some(&customer("alice")),
            &[KEY],
            Some((content_type, body.clone())),
        );
        app.call(request)
            .await
            .assert_problem(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type");
    }
    let missing = raw("POST", "/catalog/items", Some(&admin()), &[], None);
    app.call(missing)
        .await
        .assert_problem(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type");
    app.assert_nothing_dispatched();
}

#[tokio::test]
async fn client_set_prices_status_and_unknown_fields_are_422_naming_the_field() {
    let app = app();
    let mut priced = order_body();
    priced["lines"][1]["unit_price"] = json!(1);
    let mut status = order_body();
    status["status"] = json!("confirmed");
    let mut nested = order_body();
    nested["shipping_address"]["state"] = json!("CA");
    let cases = [
        (priced, "lines[1]", "unit_price"),
        (status, "status", "status"),
        (nested, "shipping_address", "state"),
    ];
    for (body, path, field) in cases {
        let answer = place(&app, &body).await;
        answer.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "invalid_body");
        let detail = answer.body["detail"].as_str().unwrap();
        assert!(detail.contains(path) && detail.contains(field), "{detail}");
    }
    app.assert_nothing_dispatched();
}

#[tokio::test]
async fn wrong_types_and_shapes_are_422() {
    let app = app();
    let mut text_quantity = order_body();
    text_quantity["lines"][0]["quantity"] = json!("two");
    let mut fraction = order_body();
    fraction["lines"][0]["quantity"] = json!(1.5);
    let mut missing = order_body();
    missing.as_object_mut().unwrap().remove("payment");
    for body in [text_quantity, fraction, missing, json!(null), json!([1, 2])] {
        place(&app, &body)
            .await
            .assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "invalid_body");
    }
    app.assert_nothing_dispatched();
}

#[tokio::test]
async fn zero_and_negative_quantities_are_422_naming_the_line() {
    let app = app();
    for quantity in [0, -1, 10_001, i64::MIN] {
        let mut body = order_body();
        body["lines"][1]["quantity"] = json!(quantity);
        let answer = place(&app, &body).await;
        answer.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
        assert_eq!(answer.invalid_params(), ["lines[1].quantity"]);
    }
    let restock = json(
        "POST",
        "/catalog/items/SKU-1/restock",
        &admin(),
        &[],
        &json!({"quantity": 0}),
    );
    let answer = app.call(restock).await;
    answer.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(answer.invalid_params(), ["quantity"]);
    app.assert_nothing_dispatched();
}

#[tokio::test]
async fn bad_sku_currency_country_and_token_are_422_naming_each_field() {
    let app = app();
    let mut body = order_body();
    body["currency"] = json!("usd");
    body["lines"][0]["sku"] = json!("SKU 1");
    body["shipping_address"]["country"] = json!("Germany");
    body["shipping_address"]["city"] = json!("  ");
    body["payment"]["token"] = json!("");
    let answer = place(&app, &body).await;
    answer.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    let expected = [
        "currency",
        "lines[0].sku",
        "shipping_address.city",
        "shipping_address.country",
        "payment.token",
    ];
    assert_eq!(answer.invalid_params(), expected);
    assert!(
        answer.body["detail"]
            .as_str()
            .unwrap()
            .contains("lines[0].sku")
    );

    body = order_body();
    body["currency"] = json!("XXX");
    let answer = place(&app, &body).await;
    assert_eq!(answer.invalid_params(), ["currency"]);
    app.assert_nothing_dispatched();
}

#[tokio::test]
async fn empty_too_long_and_duplicate_lines_are_422() {
    let app = app();
    let mut empty = order_body();
    empty["lines"] = json!([]);
    assert_eq!(place(&app, &empty).await.invalid_params(), ["lines"]);
    let mut many = order_body();
    many["lines"] = (0..51)
        .map(|i| json!({"sku": format!("S{i}"), "quantity": 1}))
        .collect();
    assert_eq!(place(&app, &many).await.invalid_params(), ["lines"]);
    let mut duplicate = order_body();
    duplicate["lines"][1]["sku"] = json!("SKU-1");
    assert_eq!(
        place(&app, &duplicate).await.invalid_params(),
        ["lines[1].sku"]
    );
    app.assert_nothing_dispatched();
}

#[tokio::test]
async fn invalid_catalog_items_name_every_field() {
    let app = app();
    let body = json!({"sku": "", "name": "", "unit_price": 0, "currency": "EURO", "stock": -1});
    let answer = app
        .call(json("POST", "/catalog/items", &admin(), &[], &body))
        .await;
    answer.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(
        answer.invalid_params(),
        ["sku", "name", "unit_price", "currency", "stock"]
    );
    let price = json!({"unit_price": -5});
    let answer = app
        .call(json(
            "PUT",
            "/catalog/items/SKU-1/price",
            &admin(),
            &[],
            &price,
        ))
        .await;
    assert_eq!(answer.invalid_params(), ["unit_price", "currency"]);
    app.assert_nothing_dispatched();
}

#[tokio::test]
async fn an_oversized_body_is_413() {
    let app = app();
    let mut body = order_body();
    body["payment"]["token"] = json!("x".repeat(super::super::MAX_BODY_BYTES));
    place(&app, &body)
        .await
        .assert_problem(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
    app.assert_nothing_dispatched();
}

#[tokio::test]
async fn a_missing_or_invalid_idempotency_key_is_400() {
    let app = app();
    let answer = app
        .call(json(
            "POST",
            "/orders",
            &customer("alice"),
            &[],
            &order_body(),
        ))
        .await;
    answer.assert_problem(StatusCode::BAD_REQUEST, "idempotency_key_required");
    let long = "k".repeat(256);
    for key in ["", "   ", long.as_str()] {
        let headers = [("Idempotency-Key", key)];
        let answer = app
            .call(json(
                "POST",
                "/orders",
                &customer("alice"),
                &headers,
                &order_body(),
            ))
            .await;
        answer.assert_problem(StatusCode::BAD_REQUEST, "invalid_idempotency_key");
    }
    let twice = [KEY, ("Idempotency-Key", "key-2")];
    let answer = app
        .call(json(
            "POST",
            "/orders",
            &customer("alice"),
            &twice,
            &order_body(),
        ))
        .await;
    answer.assert_problem(StatusCode::BAD_REQUEST, "invalid_idempotency_key");
    app.assert_nothing_dispatched();
}

#[tokio::test]
async fn a_bad_if_match_is_400() {
    let app = app();
    let uri = "/orders/0190a5b2-3c4d-7e8f-9a0b-1c2d3e4f5a6b/cancel";
    for value in [
        "abc",
        "-1",
        "W/\"3\"",
        "\"3",
        "1, 2",
        "",
        "99999999999999999999999",
    ] {
        let request = json(
            "POST",
            uri,
            &customer("alice"),
            &[("If-Match", value)],
            &json!({"reason": "r"}),
        );
        app.call(request)
            .await
            .assert_problem(StatusCode::BAD_REQUEST, "invalid_if_match");
    }
    app.assert_nothing_dispatched();
}

#[tokio::test]
async fn bad_path_ids_are_400() {
    let app = app();
    let reason = json!({"reason": "r"});
    let cases = [
        json(
            "POST",
            "/orders/not-a-uuid/cancel",
            &customer("alice"),
            &[],
            &reason,
        ),
        json(
            "POST",
            "/catalog/items/SKU%201/restock",
            &admin(),
            &[],
            &json!({"quantity": 1}),
        ),
        raw(
            "POST",
            "/shipments/123/deliver",
            Some(&carrier()),
            &[],
            None,
        ),
        raw("GET", "/commands/nope", Some(&admin()), &[], None),
    ];
    for request in cases {
        app.call(request)
            .await
            .assert_problem(StatusCode::BAD_REQUEST, "invalid_path_parameter");
    }
    app.assert_nothing_dispatched();
}

#[tokio::test]
async fn cancel_requires_a_printable_reason() {
    let app = app();
    let uri = "/orders/0190a5b2-3c4d-7e8f-9a0b-1c2d3e4f5a6b/cancel";
    for reason in [json!(""), json!("a\u{0}b"), json!("r".repeat(501))] {
        let answer = app
            .call(json(
                "POST",
                uri,
                &customer("alice"),
                &[],
                &json!({"reason": reason}),
            ))
            .await;
        answer.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
        assert_eq!(answer.invalid_params(), ["reason"]);
    }
    app.assert_nothing_dispatched();
}
