//! A whole shop on the test's slice of the stack (command API, saga worker,
//! projector, query API) and a typed client over its public HTTP APIs, for
//! the saga tests.

use std::time::Duration;

use events::command::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::auth::token;
use crate::{Service, TestEnv, eventually, spawn_process};

/// The public APIs of a running shop.
pub struct Shop {
    pub command: Service,
    pub query: Service,
    pub admin: String,
}

/// How an order is placed: its lines, payment token and destination country.
pub struct OrderSpec<'a> {
    pub customer: &'a str,
    pub lines: &'a [(&'a str, u32)],
    pub token: &'a str,
    pub country: &'a str,
}

impl Shop {
    /// Starts the command API, the projector and the query API; the saga
    /// worker is started by the caller (in-process or as a process).
    pub async fn start(env: &TestEnv) -> Shop {
        let command = env.spawn_command().await;
        env.spawn_projections().await;
        let query = env.spawn_query_api().await;
        Shop {
            command,
            query,
            admin: token(Role::Admin, "ops"),
        }
    }

    pub async fn post(
        &self,
        path: &str,
        bearer: &str,
        key: &str,
        body: &Value,
    ) -> (StatusCode, Value) {
        let response = self
            .command
            .http
            .post(self.command.url(path))
            .bearer_auth(bearer)
            .header("Idempotency-Key", key)
            .json(body)
            .send()
            .await
            .expect("POST failed");
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn create_item(&self, sku: &str, unit_price: i64, stock: u32) {
        let body = json!({"sku": sku, "name": sku, "unit_price": unit_price, "currency": "USD", "stock": stock});
        let (status, body) = self.post("/catalog/items", &self.admin, sku, &body).await;
        assert_eq!(status, StatusCode::CREATED, "creating {sku}: {body}");
    }

    /// Places an order and answers its id.
    pub async fn place(&self, spec: &OrderSpec<'_>, key: &str) -> String {
        let placed = self.place_answer(spec, key).await;
        placed["order_id"].as_str().expect("an order id").to_owned()
    }

    /// Places an order and answers the command API's whole answer (order
    /// and command ids, consistency token).
    pub async fn place_answer(&self, spec: &OrderSpec<'_>, key: &str) -> Value {
        let lines: Vec<Value> = spec
            .lines
            .iter()
            .map(|(sku, quantity)| json!({"sku": sku, "quantity": quantity}))
            .collect();
        let body = json!({
            "currency": "USD",
            "lines": lines,
            "shipping_address": {"name": "Ada", "line1": "1 Loop Rd", "city": "Springfield",
                                 "postal_code": "12345", "country": spec.country},
            "payment": {"token": spec.token}
        });
        let customer = token(Role::Customer, spec.customer);
        let (status, body) = self.post("/orders", &customer, key, &body).await;
        assert!(status.is_success(), "placing an order: {status} {body}");
        body
    }

    pub async fn read(&self, path: &str) -> Option<Value> {
        let response = self
            .query
            .http
            .get(self.query.url(path))
            .bearer_auth(&self.admin)
            .send()
            .await
            .ok()?;
        if !response.status().is_success() {
            return None;
        }
        response.json().await.ok()
    }

    /// Waits until the order view satisfies `done`, and answers it.
    pub async fn order_until(
        &self,
        order_id: &str,
        limit: Duration,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let path = format!("/orders/{order_id}");
        let found = eventually(limit, || async {
            let order = self.read(&path).await?;
            done(&order).then_some(order)
        })
        .await;
        match found {
            Some(order) => order,
            None => panic!(
                "order {order_id} never got there: {:?}",
                self.read(&path).await
            ),
        }
    }

    pub async fn item(&self, sku: &str) -> Value {
        self.read(&format!("/catalog/items/{sku}"))
            .await
            .unwrap_or_else(|| panic!("item {sku} not in the view"))
    }
}

/// The saga's status as its worker stored it.
pub async fn saga_status(env: &TestEnv, order_id: &str) -> Option<String> {
    let pool = sqlx::PgPool::connect(&env.sagas_db_url).await.ok()?;
    let id: uuid::Uuid = order_id.parse().ok()?;
    let row: Option<(String,)> = sqlx::query_as("SELECT status FROM sagas WHERE order_id = $1")
        .bind(id)
        .fetch_optional(&pool)
        .await
        .ok()?;
    pool.close().await;
    row.map(|(status,)| status)
}

/// Waits until the order's saga is terminal and answers its status.
pub async fn terminal_saga(env: &TestEnv, order_id: &str, limit: Duration) -> String {
    let terminal = [
        "completed",
        "compensated",
        "needs_attention",
        "resolved_by_operator",
    ];
    let found = eventually(limit, || async {
        let status = saga_status(env, order_id).await?;
        terminal.contains(&status.as_str()).then_some(status)
    })
    .await;
    found.unwrap_or_else(|| panic!("the saga of {order_id} is not terminal in time"))
}

/// The saga's stored state, for failure messages.
pub async fn saga_state(env: &TestEnv, order_id: &str) -> Value {
    let Ok(pool) = sqlx::PgPool::connect(&env.sagas_db_url).await else {
        return Value::Null;
    };
    let id: uuid::Uuid = order_id.parse().unwrap_or_default();
    let row: Option<(Value,)> = sqlx::query_as("SELECT state FROM sagas WHERE order_id = $1")
        .bind(id)
        .fetch_optional(&pool)
        .await
        .ok()
        .flatten();
    pool.close().await;
    row.map_or(Value::Null, |(state,)| state)
}

/// The saga service (`binary`: the test's `CARGO_BIN_EXE_sagas-service`) in
/// a process of its own, so a test can kill it, in the test's consumer
/// group, with `pace_ms` to the nominal second.
pub async fn start_sagas_process(
    binary: &str,
    env: &TestEnv,
    pace_ms: u32,
) -> tokio::process::Child {
    let vars = [
        ("KAFKA_BROKERS", env.kafka.brokers.clone()),
        ("TOPIC_PREFIX", env.kafka.topic_prefix.clone()),
        ("KAFKA_PARTITIONS", env.kafka.partitions.to_string()),
        ("SAGAS_GROUP_ID", format!("t{}-sagas", env.id)),
        ("SAGAS_DATABASE_URL", env.sagas_db_url.clone()),
        ("SAGAS_PACE_MS", pace_ms.to_string()),
    ];
    spawn_process(binary, &vars).await.0
}
