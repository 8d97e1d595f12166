use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{StatusCode, header};
use events::command::{Principal, Role};
use projections::read::Cache;
use tokio::sync::Semaphore;
use tower::ServiceExt;

use crate::http::{Shared, router};
use events::auth::{AuthConfig, JwtVerifier};

use super::Upstreams;

const SECRET: &[u8] = b"a-test-secret-of-at-least-32-bytes";

fn bearer(role: Role) -> String {
    let who = Principal {
        subject: "someone".into(),
        role,
    };
    let token = events::auth::mint_hs256(SECRET, &who, Duration::from_secs(60)).unwrap();
    format!("Bearer {token}")
}

fn state(upstream: &str) -> Shared {
    Shared {
        pool: projections::read::connect_lazy("postgres://nobody@127.0.0.1:1/none").unwrap(),
        cache: Arc::new(
            Cache::new("redis://127.0.0.1:1", "t:".into(), Duration::from_secs(1)).unwrap(),
        ),
        verifier: Arc::new(JwtVerifier::new(&AuthConfig::hs256(SECRET)).unwrap()),
        consistency_wait: Duration::from_millis(10),
        progress: crate::consistency::Progress::unheard(),
        fallbacks: Semaphore::new(1),
        fills: Arc::new(Semaphore::new(1)),
        signing: events::auth::signing::SigningKey::development(),
        waits: Semaphore::new(1),
        upstreams: Upstreams {
            command_url: upstream.into(),
            projections_url: upstream.into(),
            http: reqwest::Client::new(),
        },
    }
}

async fn call(state: Shared, request: Request) -> (StatusCode, String, axum::http::HeaderMap) {
    let response = router(state).oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    (status, String::from_utf8_lossy(&body).into_owned(), headers)
}

#[tokio::test]
async fn the_page_is_served_with_a_same_origin_policy() {
    let request = Request::get("/console").body(Body::empty()).unwrap();
    let (status, body, headers) = call(state("http://127.0.0.1:1"), request).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("/console/app.js"), "{body}");
    let policy = headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
    assert!(policy.contains("script-src 'self'"), "{policy}");
    let request = Request::get("/console/app.js").body(Body::empty()).unwrap();
    let (status, body, _) = call(state("http://127.0.0.1:1"), request).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        !body.contains("innerHTML"),
        "values are written as text only"
    );
}

#[tokio::test]
async fn only_admins_may_use_the_actions() {
    let paths = [
        ("GET", "/console/api/lag".to_owned()),
        (
            "POST",
            format!("/console/api/sagas/{}/retry", uuid::Uuid::new_v4()),
        ),
        ("POST", "/console/api/dead-letters/7/skip".to_owned()),
    ];
    for (method, path) in paths {
        let anonymous = Request::builder()
            .method(method)
            .uri(&path)
            .body(Body::empty())
            .unwrap();
        let (status, _, _) = call(state("http://127.0.0.1:1"), anonymous).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}");
        for role in [Role::Customer, Role::Carrier] {
            let request = Request::builder()
                .method(method)
                .uri(&path)
                .header(header::AUTHORIZATION, bearer(role))
                .body(Body::empty())
                .unwrap();
            let (status, _, _) = call(state("http://127.0.0.1:1"), request).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{path} {role:?}");
        }
        // An admin's request goes on; nothing listens there, so 503.
        let request = Request::builder()
            .method(method)
            .uri(&path)
            .header(header::AUTHORIZATION, bearer(Role::Admin))
            .body(Body::empty())
            .unwrap();
        let (status, body, _) = call(state("http://127.0.0.1:1"), request).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{path}");
        assert!(body.contains("upstream_unavailable"), "{body}");
    }
}

#[tokio::test]
async fn only_the_listed_routes_and_typed_ids_are_forwarded() {
    let admin = bearer(Role::Admin);
    for (path, expected) in [
        (
            "/console/api/sagas/not-a-uuid/retry",
            StatusCode::BAD_REQUEST,
        ),
        (
            &*format!("/console/api/sagas/{}/delete", uuid::Uuid::new_v4()),
            StatusCode::NOT_FOUND,
        ),
        ("/console/api/dead-letters/x/retry", StatusCode::BAD_REQUEST),
        ("/console/api/dead-letters/7/drop", StatusCode::NOT_FOUND),
    ] {
        let request = Request::post(path)
            .header(header::AUTHORIZATION, &admin)
            .body(Body::empty())
            .unwrap();
        let (status, _, _) = call(state("http://127.0.0.1:1"), request).await;
        assert_eq!(status, expected, "{path}");
    }
}

#[tokio::test]
async fn an_action_reaches_its_target_with_the_callers_token_and_key() {
    // A stand-in for the command API that echoes what it was sent.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let echo = axum::Router::new().route(
        "/sagas/{id}/resolve",
        axum::routing::post(|headers: axum::http::HeaderMap, body: String| async move {
            let get = |name: &str| {
                headers
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_owned()
            };
            (
                StatusCode::CONFLICT,
                [(header::CONTENT_TYPE, "application/problem+json")],
                serde_json::json!({
                    "authorization": get("authorization"),
                    "key": get("idempotency-key"),
                    "body": body,
                })
                .to_string(),
            )
        }),
    );
    tokio::spawn(async move { axum::serve(listener, echo).await });
    let admin = bearer(Role::Admin);
    let path = format!("/console/api/sagas/{}/resolve", uuid::Uuid::new_v4());
    let request = Request::post(&path)
        .header(header::AUTHORIZATION, &admin)
        .header("idempotency-key", "k-1")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(r#"{"note":"paid"}"#))
        .unwrap();
    let (status, body, headers) = call(state(&format!("http://{addr}")), request).await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "the target's status comes back"
    );
    assert_eq!(headers[header::CONTENT_TYPE], "application/problem+json");
    let echoed: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(echoed["authorization"], admin.as_str());
    assert_eq!(echoed["key"], "k-1");
    assert_eq!(echoed["body"], r#"{"note":"paid"}"#);
}
