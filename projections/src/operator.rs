//! The projector service's operator endpoints (admins only), beside its
//! health and metrics: `GET /lag` (how far each projection is behind, as
//! `lag` measures it) and `POST /dead-letters/{id}/retry|skip` (the replay
//! CLI's dead-letter commands, run by the service that owns the views
//! database). The query API's console reaches them through its same-origin
//! forwarding routes.

use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use events::auth::JwtVerifier;
use events::command::Role;
use events::service::Problem;
use serde_json::json;

use crate::lag;
use crate::replay::{self, ReplayError, Target};

#[derive(Clone)]
pub struct OperatorState {
    pub verifier: Arc<JwtVerifier>,
    pub lag: Arc<Mutex<lag::Report>>,
    pub target: Target,
}

pub fn router(state: OperatorState) -> Router {
    Router::new()
        .route("/lag", get(lag_report))
        .route(
            "/dead-letters/{id}/retry",
            post(|state, id, headers| dead_letter(state, id, headers, Action::Retry)),
        )
        .route(
            "/dead-letters/{id}/skip",
            post(|state, id, headers| dead_letter(state, id, headers, Action::Skip)),
        )
        .with_state(state)
}

/// 401 without a valid bearer token, 403 unless the caller is an admin.
fn admin(state: &OperatorState, headers: &HeaderMap) -> Result<(), Problem> {
    let caller = events::auth::bearer_token(headers)
        .and_then(|token| state.verifier.verify(token))
        .map_err(|e| Problem::new(StatusCode::UNAUTHORIZED, "unauthorized", e.to_string()))?;
    if !matches!(caller.role, Role::Admin | Role::System) {
        return Err(Problem::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "operator endpoints are for admins",
        ));
    }
    Ok(())
}

async fn lag_report(State(state): State<OperatorState>, headers: HeaderMap) -> Response {
    if let Err(problem) = admin(&state, &headers) {
        return problem.into_response();
    }
    let report = state.lag.lock().map(|r| r.clone()).unwrap_or_default();
    Json(json!({ "projections": report })).into_response()
}

/// What an operator asks of a dead letter: apply it again, or drop it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Retry,
    Skip,
}

/// One path for both dead-letter actions: the same authorization, the same
/// errors, only the replay call and its answer differ.
async fn dead_letter(
    State(state): State<OperatorState>,
    Path(id): Path<i64>,
    headers: HeaderMap,
    action: Action,
) -> Response {
    if let Err(problem) = admin(&state, &headers) {
        return problem.into_response();
    }
    let target = state.target.clone();
    let done = match action {
        Action::Retry => replay::retry_dead_letter(target, id)
            .await
            .map(|(applied, failing)| json!({ "applied": applied, "failing": failing })),
        Action::Skip => replay::skip_dead_letter(target, id)
            .await
            .map(|skipped| json!({ "skipped": skipped })),
    };
    match done {
        Ok(body) => Json(body).into_response(),
        Err(e) => problem(e).into_response(),
    }
}

fn problem(error: ReplayError) -> Problem {
    match error {
        ReplayError::NoSuchDeadLetter(id) => Problem::new(
            StatusCode::NOT_FOUND,
            "dead_letter_not_found",
            format!("no dead letter with id {id}"),
        ),
        ReplayError::Busy(what) => Problem::new(
            StatusCode::CONFLICT,
            "busy",
            format!("another replay is working on {what}"),
        ),
        other => {
            tracing::warn!(error = %other, "operator dead-letter action failed");
            Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "the dead-letter action could not complete; try again",
            )
            .retry_after(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use axum::body::Body;
    use axum::extract::Request;
    use axum::http::header::AUTHORIZATION;
    use events::KafkaConfig;
    use events::command::Principal;
    use tower::ServiceExt;

    use super::*;

    const SECRET: &[u8] = b"a-test-secret-of-at-least-32-bytes";

    fn state() -> OperatorState {
        let mut report = lag::Report::new();
        report.insert(
            "orders",
            lag::ProjectionLag {
                lag_events: 3,
                lag_seconds: 1.5,
                partitions: Vec::new(),
            },
        );
        OperatorState {
            verifier: Arc::new(JwtVerifier::new(&events::auth::AuthConfig::hs256(SECRET)).unwrap()),
            lag: Arc::new(Mutex::new(report)),
            target: Target {
                kafka: KafkaConfig::new("127.0.0.1:1"),
                database_url: "postgres://nobody@127.0.0.1:1/none".into(),
                redis_url: "redis://127.0.0.1:1".into(),
            },
        }
    }

    async fn call(method: &str, path: &str, role: Option<Role>) -> (StatusCode, serde_json::Value) {
        let mut request = Request::builder().method(method).uri(path);
        if let Some(role) = role {
            let who = Principal {
                subject: "someone".into(),
                role,
            };
            let token = events::auth::mint_hs256(SECRET, &who, Duration::from_secs(60)).unwrap();
            request = request.header(AUTHORIZATION, format!("Bearer {token}"));
        }
        let response = router(state())
            .oneshot(request.body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap();
        (status, serde_json::from_slice(&body).unwrap_or_default())
    }

    #[tokio::test]
    async fn admins_read_the_lag_of_every_projection() {
        let (status, body) = call("GET", "/lag", Some(Role::Admin)).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["projections"]["orders"]["lag_events"], 3);
    }

    #[tokio::test]
    async fn the_bearer_scheme_is_read_as_the_other_services_read_it() {
        let who = Principal {
            subject: "ops".into(),
            role: Role::Admin,
        };
        let token = events::auth::mint_hs256(SECRET, &who, Duration::from_secs(60)).unwrap();
        let request = Request::builder()
            .uri("/lag")
            .header(AUTHORIZATION, format!("bearer  {token}"))
            .body(Body::empty())
            .unwrap();
        let response = router(state()).oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }

    #[tokio::test]
    async fn nobody_else_reaches_the_operator_endpoints() {
        for (method, path) in [
            ("GET", "/lag"),
            ("POST", "/dead-letters/1/retry"),
            ("POST", "/dead-letters/1/skip"),
        ] {
            assert_eq!(call(method, path, None).await.0, StatusCode::UNAUTHORIZED);
            for role in [Role::Customer, Role::Carrier] {
                assert_eq!(
                    call(method, path, Some(role)).await.0,
                    StatusCode::FORBIDDEN
                );
            }
        }
        // An admin's retry runs; with no database it is a 503, not a 500.
        let (status, body) = call("POST", "/dead-letters/1/skip", Some(Role::Admin)).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    }
}
