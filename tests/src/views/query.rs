//! The read side from a test's point of view: the command processor, the
//! projector and the query API started in-process with a command bus, orders
//! placed on that bus, and typed GETs against the query API (bearer and
//! consistency token, waiting for a version, problem+json answers).

use std::sync::Arc;
use std::time::Duration;

use command::bus::KafkaBus;
use events::command::{DomainCommand, Role};
use events::domain::OrderId;
use reqwest::StatusCode;
use serde_json::Value;
use uuid::Uuid;

use crate::auth::who;
use crate::{Service, TestEnv, eventually};

/// Starts the command processor, the projector and the query API; answers
/// a bus to send commands on and the query API.
pub async fn start(env: &TestEnv) -> (Arc<KafkaBus>, Service) {
    let _command = env.spawn_command().await;
    env.spawn_projections().await;
    let query = env.spawn_query_api().await;
    (crate::processor::bus(env).await, query)
}

/// Places an order of `customer` for 2 units of each SKU on the bus;
/// answers its id and version.
pub async fn place(bus: &KafkaBus, customer: &str, skus: &[&str]) -> (OrderId, u64) {
    let order_id = OrderId::from(Uuid::now_v7());
    let lines: Vec<(&str, u32)> = skus.iter().map(|sku| (*sku, 2)).collect();
    let command = crate::processor::place_order(customer, &lines);
    let version = crate::processor::accepted(
        bus,
        &order_id.to_string(),
        who(Role::Customer, customer),
        DomainCommand::Order(command),
    )
    .await;
    (order_id, version)
}

/// GETs `path` with an optional bearer and consistency token.
pub async fn get(
    query: &Service,
    path: &str,
    bearer: Option<&str>,
    consistency: Option<&str>,
) -> reqwest::Response {
    let mut request = query.http.get(query.url(path));
    if let Some(bearer) = bearer {
        request = request.bearer_auth(bearer);
    }
    if let Some(token) = consistency {
        request = request.header("X-Consistency-Token", token);
    }
    request.send().await.expect("GET failed")
}

/// Polls `path` until its `version` reaches `version`; answers the body.
pub async fn wait_for_version(
    query: &Service,
    path: &str,
    bearer: Option<&str>,
    version: i64,
) -> Value {
    eventually(Duration::from_secs(30), || async {
        let response = get(query, path, bearer, None).await;
        if response.status() != StatusCode::OK {
            return None;
        }
        let body: Value = response.json().await.unwrap();
        (body["version"].as_i64() >= Some(version)).then_some(body)
    })
    .await
    .unwrap_or_else(|| panic!("{path} never reached version {version}"))
}

/// Asserts a problem+json answer with `status` whose type ends in `/kind`.
pub async fn problem(response: reqwest::Response, status: StatusCode, kind: &str) {
    assert_eq!(response.status(), status);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let body: Value = response.json().await.unwrap();
    assert!(
        body["type"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/{kind}")),
        "{body}"
    );
}
