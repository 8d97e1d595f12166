//! The shop's customers: orders on every sandbox path, placed through both
//! command API instances in turn. An answer that does not say what happened
//! (a timeout, a refused connection, a 5xx) is retried with the same
//! Idempotency-Key, as the API promises is safe.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use events::command::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};

use super::cluster::{Cluster, Kind};
use crate::auth::token;

/// The SKU every seventh order competes for.
pub const SCARCE: &str = "SCARCE";
pub const SCARCE_STOCK: u32 = 10;
const PLENTY: &str = "MUG";

/// An acknowledged order and the saga states its path allows.
#[derive(Debug, Clone)]
pub struct Placed {
    pub order_id: String,
    pub path: &'static str,
    pub ends: &'static [&'static str],
}

/// Every sandbox path in turn: (path, token, country, SKU, allowed ends).
const PATHS: [(&str, &str, &str, &str, &[&str]); 7] = [
    ("ok", "tok_ok", "US", PLENTY, &["completed"]),
    ("decline", "tok_decline", "US", PLENTY, &["compensated"]),
    (
        "capture_fail",
        "tok_capture_fail",
        "US",
        PLENTY,
        &["compensated"],
    ),
    ("flaky", "tok_flaky", "US", PLENTY, &["completed"]),
    ("refused_shipment", "tok_ok", "ZZ", PLENTY, &["compensated"]),
    (
        "no_response",
        "tok_no_response",
        "US",
        PLENTY,
        &["compensated"],
    ),
    (
        "scarce",
        "tok_ok",
        "US",
        SCARCE,
        &["completed", "compensated"],
    ),
];

#[derive(Clone)]
pub struct Clients {
    cluster: Arc<Cluster>,
    http: reqwest::Client,
    admin: String,
}

impl Clients {
    /// Creates the catalog the orders use.
    pub async fn new(cluster: &Arc<Cluster>) -> Arc<Clients> {
        let clients = Clients {
            cluster: cluster.clone(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()
                .expect("an HTTP client"),
            admin: token(Role::Admin, "ops"),
        };
        for (sku, stock) in [(PLENTY, 1_000_000), (SCARCE, SCARCE_STOCK)] {
            let body = json!({"sku": sku, "name": sku, "unit_price": 1000, "currency": "USD", "stock": stock});
            clients
                .post("/catalog/items", &clients.admin.clone(), sku, &body)
                .await;
        }
        Arc::new(clients)
    }

    /// Places orders one after another (about 20 a second) until `placing`
    /// turns false; answers the acknowledged ones.
    pub async fn place_while(&self, placing: &AtomicBool) -> Vec<Placed> {
        let mut placed = Vec::new();
        while placing.load(Ordering::Relaxed) {
            let n = placed.len();
            let (path, payment, country, sku, ends) = PATHS[n % PATHS.len()];
            let body = json!({
                "currency": "USD",
                "lines": [{"sku": sku, "quantity": 1}],
                "shipping_address": {"name": "Ada", "line1": "1 Loop Rd", "city": "Springfield",
                                     "postal_code": "12345", "country": country},
                "payment": {"token": payment}
            });
            let customer = token(Role::Customer, &format!("chaos-{}", n % 50));
            let answer = self
                .post("/orders", &customer, &format!("chaos-{n}"), &body)
                .await;
            let order_id = answer["order_id"].as_str().expect("an order id").to_owned();
            placed.push(Placed {
                order_id,
                path,
                ends,
            });
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        placed
    }

    /// POSTs until an instance answers 201 or 202; any other answer than a
    /// retryable one is a failure of the run.
    async fn post(&self, path: &str, bearer: &str, key: &str, body: &Value) -> Value {
        for attempt in 0.. {
            let addrs = self.cluster.addrs(Kind::Command);
            let addr = &addrs[attempt % addrs.len()];
            let sent = self
                .http
                .post(format!("http://{addr}{path}"))
                .bearer_auth(bearer)
                .header("Idempotency-Key", key)
                .json(body)
                .send()
                .await;
            match sent {
                Ok(response)
                    if matches!(
                        response.status(),
                        StatusCode::CREATED | StatusCode::ACCEPTED
                    ) =>
                {
                    return response.json().await.unwrap_or(Value::Null);
                }
                Ok(response) if retryable(response.status()) => {}
                Ok(response) => {
                    let status = response.status();
                    let text = response.text().await.unwrap_or_default();
                    panic!("POST {path} (key {key}): {status} {text}");
                }
                // Refused, reset or timed out: the outcome is unknown.
                Err(_) => {}
            }
            assert!(attempt < 600, "POST {path} (key {key}) never answered");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        unreachable!("the loop returns or panics")
    }
}

fn retryable(status: StatusCode) -> bool {
    status.is_server_error()
        || status == StatusCode::REQUEST_TIMEOUT
        || status == StatusCode::TOO_MANY_REQUESTS
}
