//! The walking skeleton end to end: a probe written transactionally by the
//! command service is projected into PostgreSQL and read over the query API.

use std::time::Duration;

use events::command::Role;
use reqwest::StatusCode;
use serde_json::Value;
use tests::auth::token;
use tests::{TestEnv, eventually};

#[tokio::test]
async fn a_probe_travels_from_command_api_to_query_api() {
    let env = TestEnv::new();
    let command = env.spawn_command().await;
    let _projections = env.spawn_projections().await;
    let query = env.spawn_query_api().await;
    let _sagas = env.spawn_sagas().await;

    let admin = token(Role::Admin, "ops");
    let response = command
        .http
        .post(command.url("/probes"))
        .bearer_auth(admin)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let probe: Value = response.json().await.unwrap();
    let probe_id = probe["probe_id"].as_str().unwrap().to_owned();

    let seen = eventually(Duration::from_secs(30), || async {
        let response = query.get(&format!("/probes/{probe_id}")).await;
        (response.status() == StatusCode::OK).then_some(response)
    })
    .await
    .expect("the probe never became visible in the query api");
    let row: Value = seen.json().await.unwrap();
    assert_eq!(row["probe_id"], probe["probe_id"]);
    assert_eq!(row["sent_at"], probe["sent_at"]);
}

#[tokio::test]
async fn errors_are_problem_json() {
    let env = TestEnv::new();
    let _projections = env.spawn_projections().await;
    let query = env.spawn_query_api().await;

    let response = query.get("/probes/not-a-uuid").await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let body: Value = response.json().await.unwrap();
    assert!(
        body["type"].as_str().unwrap().ends_with("/invalid_id"),
        "{body}"
    );

    let response = query
        .get(&format!("/probes/{}", uuid::Uuid::now_v7()))
        .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let response = query.get("/no/such/route").await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
}

#[tokio::test]
async fn every_service_reports_health_and_metrics() {
    let env = TestEnv::new();
    let services = [
        env.spawn_command().await,
        env.spawn_projections().await,
        env.spawn_query_api().await,
        env.spawn_sagas().await,
    ];
    for service in &services {
        assert_eq!(service.get("/health/live").await.status(), StatusCode::OK);
        let ready = service.get("/health/ready").await;
        assert_eq!(ready.status(), StatusCode::OK);
        let body: Value = ready.json().await.unwrap();
        assert_eq!(body["status"], "ready", "{body}");
        let metrics = service.get("/metrics").await;
        assert_eq!(metrics.status(), StatusCode::OK);
        let text = metrics.text().await.unwrap();
        assert!(text.contains("http_requests_total"), "{text}");
    }
}
