//! Operator decisions about parked sagas: envelopes to `sagas.commands`,
//! admin only, validated notes, and the saga worker's answers mapped.

use axum::http::StatusCode;
use events::AggregateType;
use events::command::{DomainCommand, RejectionKind, Role};
use events::consistency::ConsistencyToken;
use events::domain::SagaCommand;
use serde_json::json;

use super::*;

const ORDER: &str = "0190a5b2-3c4d-7e8f-9a0b-1c2d3e4f5a6b";

fn retry(token: &str, headers: &[(&str, &str)]) -> Request<Body> {
    raw(
        "POST",
        &format!("/sagas/{ORDER}/retry"),
        Some(token),
        headers,
        None,
    )
}

fn resolve(token: &str, headers: &[(&str, &str)], body: &Value) -> Request<Body> {
    json(
        "POST",
        &format!("/sagas/{ORDER}/resolve"),
        token,
        headers,
        body,
    )
}

#[tokio::test]
async fn a_retry_goes_to_the_saga_and_answers_its_version_and_token() {
    let app = app();
    app.bus.then(Script::Accept(7));
    let answer = app.call(retry(&admin(), &[KEY])).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    let envelope = app.bus.only();
    assert_eq!(
        envelope.command,
        DomainCommand::Saga(SagaCommand::RetrySaga)
    );
    assert_eq!(envelope.command.aggregate_type(), AggregateType::Saga);
    assert_eq!(envelope.aggregate_id, ORDER);
    assert_eq!(envelope.correlation_id.to_string(), ORDER);
    assert_eq!(envelope.expected_version, None);
    assert_eq!(envelope.issued_by.role, Role::Admin);
    assert_eq!(answer.body["order_id"], ORDER);
    assert_eq!(answer.body["version"], 7);
    assert_eq!(answer.body["command_id"], envelope.command_id.to_string());
    let text = answer.body["consistency_token"].as_str().unwrap();
    let token = ConsistencyToken::verify(text, &signing()).unwrap();
    assert_eq!(
        (token.aggregate, token.id.as_str(), token.version),
        (AggregateType::Saga, ORDER, 7)
    );
    let saga_url = format!("{QUERY_API}/sagas/{ORDER}");
    assert_eq!(answer.body["saga_url"], saga_url);
    assert_eq!(answer.header("location"), Some(saga_url.as_str()));
}

#[tokio::test]
async fn a_resolution_carries_the_operators_note() {
    let app = app();
    let body = json!({"note": "refunded by hand"});
    let answer = app.call(resolve(&admin(), &[], &body)).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(
        app.bus.only().command,
        DomainCommand::Saga(SagaCommand::ResolveSaga {
            note: "refunded by hand".into()
        })
    );
}

#[tokio::test]
async fn the_sagas_refusals_are_problems_with_its_codes() {
    let app = app();
    let cases = [
        (
            RejectionKind::NotFound,
            "saga_not_found",
            StatusCode::NOT_FOUND,
        ),
        (
            RejectionKind::Conflict,
            "saga_not_parked",
            StatusCode::CONFLICT,
        ),
        (
            RejectionKind::Invalid,
            "invalid_note",
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ];
    for (kind, code, status) in cases {
        app.bus.then(Script::Reject(kind, code));
        let body = json!({"note": "done"});
        app.call(resolve(&admin(), &[], &body))
            .await
            .assert_problem(status, code);
    }
}

#[tokio::test]
async fn no_answer_in_time_is_202_with_the_status_url() {
    let app = app();
    app.bus.then(Script::Queue);
    let answer = app.call(retry(&admin(), &[KEY])).await;
    assert_eq!(answer.status, StatusCode::ACCEPTED);
    let status_url = format!("/commands/{}", app.bus.only().command_id);
    assert_eq!(answer.body["status_url"], status_url);
    assert_eq!(answer.header("location"), Some(status_url.as_str()));
}

#[tokio::test]
async fn kafka_down_is_503_and_safe_to_retry() {
    let app = app();
    app.bus.then(Script::Fail);
    app.call(retry(&admin(), &[KEY]))
        .await
        .assert_problem(StatusCode::SERVICE_UNAVAILABLE, "command_log_unavailable");
}

#[tokio::test]
async fn only_operators_decide_about_sagas() {
    let app = app();
    let body = json!({"note": "done"});
    for token in [customer("alice"), carrier()] {
        app.call(retry(&token, &[]))
            .await
            .assert_problem(StatusCode::FORBIDDEN, "forbidden");
        app.call(resolve(&token, &[], &body))
            .await
            .assert_problem(StatusCode::FORBIDDEN, "forbidden");
    }
    let anonymous = raw("POST", &format!("/sagas/{ORDER}/retry"), None, &[], None);
    app.call(anonymous)
        .await
        .assert_problem(StatusCode::UNAUTHORIZED, "unauthorized");
    app.assert_nothing_dispatched();
}

#[tokio::test]
async fn a_note_must_be_printable_bounded_text() {
    let app = app();
    for note in [
        json!(""),
        json!("   "),
        json!("a\nb"),
        json!("n".repeat(501)),
    ] {
        let answer = app
            .call(resolve(&admin(), &[], &json!({ "note": note })))
            .await;
        answer.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
        assert_eq!(answer.invalid_params(), ["note"]);
    }
    for body in [
        json!({}),
        json!({"note": "x", "force": true}),
        json!({"note": 3}),
    ] {
        app.call(resolve(&admin(), &[], &body))
            .await
            .assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "invalid_body");
    }
    app.assert_nothing_dispatched();
}

#[tokio::test]
async fn a_bad_order_id_or_key_is_400() {
    let app = app();
    let bad_id = raw("POST", "/sagas/nope/retry", Some(&admin()), &[], None);
    app.call(bad_id)
        .await
        .assert_problem(StatusCode::BAD_REQUEST, "invalid_path_parameter");
    let bad_id = json(
        "POST",
        "/sagas/nope/resolve",
        &admin(),
        &[],
        &json!({"note": ""}),
    );
    app.call(bad_id)
        .await
        .assert_problem(StatusCode::BAD_REQUEST, "invalid_path_parameter");
    app.call(retry(&admin(), &[("Idempotency-Key", " ")]))
        .await
        .assert_problem(StatusCode::BAD_REQUEST, "invalid_idempotency_key");
    app.assert_nothing_dispatched();
}

#[tokio::test]
async fn an_idempotency_key_makes_a_decision_retry_safe() {
    let app = app();
    let note = json!({"note": "done"});
    app.call(retry(&admin(), &[KEY])).await;
    app.call(retry(&admin(), &[KEY])).await;
    app.call(resolve(&admin(), &[KEY], &note)).await;
    app.call(retry(&admin(), &[("Idempotency-Key", "key-2")]))
        .await;
    let ids: Vec<Uuid> = app.bus.seen().iter().map(|e| e.command_id).collect();
    assert_eq!(ids[0], ids[1], "a retry reaches the same command");
    assert_ne!(ids[0], ids[2], "another decision is another command");
    assert_ne!(ids[0], ids[3], "another key is another command");
    let fingerprints: Vec<String> = app
        .bus
        .seen()
        .iter()
        .map(|e| e.fingerprint.clone())
        .collect();
    assert_eq!(fingerprints[0], fingerprints[1]);
}
