//! Handler tests: `router.oneshot(request)` against a fake [`CommandBus`]
//! that records every envelope and answers from a script.

mod auth;
mod bad_input;
mod catalog;
mod commands;
mod orders;
mod sagas;
mod shipments;

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode, header};
use chrono::Utc;
use events::KafkaConfig;
use events::command::{CommandEnvelope, Outcome, Principal, RejectionKind, Reply, Role};
use serde_json::Value;
use tower::ServiceExt;
use uuid::Uuid;

use super::{AppState, Settings, router};
use crate::auth::{AuthConfig, JwtVerifier, mint_hs256};
use crate::bus::{BusError, CommandBus, CommandStatus, Dispatch};
use crate::probe::ProbeWriter;

pub(super) const SECRET: &[u8] = b"test-secret-of-thirty-two-bytes!";
pub(super) const QUERY_API: &str = "http://query.test";
/// An Idempotency-Key header for requests that need one.
pub(super) const KEY: (&str, &str) = ("Idempotency-Key", "key-1");

/// What the fake bus answers to the next dispatch.
pub(super) enum Script {
    Accept(u64),
    Reject(RejectionKind, &'static str),
    Queue,
    Fail,
    /// A recorded reply of another request under the same command id.
    ReplayOtherFingerprint,
}

#[derive(Default)]
pub(super) struct FakeBus {
    seen: Mutex<Vec<CommandEnvelope>>,
    script: Mutex<VecDeque<Script>>,
    statuses: Mutex<HashMap<Uuid, CommandStatus>>,
}

impl FakeBus {
    pub fn then(&self, step: Script) {
        self.script.lock().unwrap().push_back(step);
    }

    pub fn seen(&self) -> Vec<CommandEnvelope> {
        self.seen.lock().unwrap().clone()
    }

    pub fn only(&self) -> CommandEnvelope {
        let seen = self.seen();
        assert_eq!(seen.len(), 1, "expected exactly one dispatched command");
        seen[0].clone()
    }

    pub fn know(&self, command_id: Uuid, status: CommandStatus) {
        self.statuses.lock().unwrap().insert(command_id, status);
    }
}

pub(super) fn reply(envelope: &CommandEnvelope, outcome: Outcome) -> Reply {
    Reply {
        command_id: envelope.command_id,
        aggregate_type: envelope.command.aggregate_type(),
        aggregate_id: envelope.aggregate_id.clone(),
        fingerprint: envelope.fingerprint.clone(),
        outcome,
        processed_at: Utc::now(),
        issued_by: Some(envelope.issued_by.clone()),
    }
}

impl CommandBus for FakeBus {
    async fn dispatch(
        &self,
        command: CommandEnvelope,
        _wait: Duration,
    ) -> Result<Dispatch, BusError> {
        self.seen.lock().unwrap().push(command.clone());
        let step = self
            .script
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or(Script::Accept(1));
        let outcome = match step {
            Script::Accept(version) => Outcome::Accepted {
                version,
                events: vec![command.command.command_type().to_owned()],
            },
            Script::Reject(kind, code) => Outcome::Rejected {
                kind,
                code: code.to_owned(),
                message: format!("refused: {code}"),
                version: 0,
            },
            Script::Queue => return Ok(Dispatch::Queued),
            Script::Fail => return Err(BusError::Unavailable("broker down".into())),
            Script::ReplayOtherFingerprint => {
                let mut reply = reply(
                    &command,
                    Outcome::Accepted {
                        version: 1,
                        events: vec![],
                    },
                );
                reply.fingerprint = "another-request".into();
                return Ok(Dispatch::Completed(reply));
            }
        };
        Ok(Dispatch::Completed(reply(&command, outcome)))
    }

    fn status(&self, command_id: Uuid) -> CommandStatus {
        let statuses = self.statuses.lock().unwrap();
        statuses
            .get(&command_id)
            .cloned()
            .unwrap_or(CommandStatus::Unknown)
    }
}

pub(super) struct TestApp {
    pub router: Router,
    pub bus: Arc<FakeBus>,
}

pub(super) fn app() -> TestApp {
    let bus = Arc::new(FakeBus::default());
    let state = AppState {
        bus: bus.clone(),
        auth: Arc::new(JwtVerifier::new(&AuthConfig::hs256(SECRET)).unwrap()),
        settings: Arc::new(Settings {
            query_api_url: format!("{QUERY_API}/"),
            reply_wait: Duration::from_millis(10),
            signing: signing(),
        }),
        // Connects lazily; these tests never record a probe.
        probes: Arc::new(ProbeWriter::new(
            &KafkaConfig::new("127.0.0.1:1"),
            "x".into(),
        )),
    };
    TestApp {
        router: router(state),
        bus,
    }
}

/// The key the test app signs consistency tokens with.
pub(super) fn signing() -> events::auth::signing::SigningKey {
    AuthConfig::hs256(SECRET).signing
}

pub(super) fn token(role: Role, subject: &str) -> String {
    let principal = Principal {
        subject: subject.into(),
        role,
    };
    mint_hs256(SECRET, &principal, Duration::from_secs(600)).unwrap()
}

pub(super) fn customer(subject: &str) -> String {
    token(Role::Customer, subject)
}

pub(super) fn admin() -> String {
    token(Role::Admin, "ops")
}

pub(super) fn carrier() -> String {
    token(Role::Carrier, "dhl")
}

/// A JSON request with a bearer token and extra headers.
pub(super) fn json(
    method: &str,
    uri: &str,
    token: &str,
    headers: &[(&str, &str)],
    body: &Value,
) -> Request<Body> {
    raw(
        method,
        uri,
        Some(token),
        headers,
        Some(("application/json", body.to_string().into_bytes())),
    )
}

pub(super) fn raw(
    method: &str,
    uri: &str,
    token: Option<&str>,
    headers: &[(&str, &str)],
    body: Option<(&str, Vec<u8>)>,
) -> Request<Body> {
    let mut builder = Request::builder().method(method).uri(uri);
    if let Some(token) = token {
        builder = builder.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    match body {
        Some((content_type, bytes)) => builder
            .header(header::CONTENT_TYPE, content_type)
            .body(Body::from(bytes)),
        None => builder.body(Body::empty()),
    }
    .unwrap()
}

pub(super) struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }

    /// Asserts a problem+json answer with `status` and `type` suffix `code`.
    #[track_caller]
    pub fn assert_problem(&self, status: StatusCode, code: &str) {
        assert_eq!(self.status, status, "{}", self.body);
        assert_eq!(
            self.header("content-type"),
            Some("application/problem+json")
        );
        let expected = format!("https://commerce.example/problems/{code}");
        assert_eq!(self.body["type"], expected, "{}", self.body);
        assert_eq!(self.body["status"], status.as_u16());
    }

    /// The names in a validation problem's `invalid_params`.
    pub fn invalid_params(&self) -> Vec<String> {
        let params = self.body["invalid_params"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        params
            .iter()
            .map(|p| p["name"].as_str().unwrap().to_owned())
            .collect()
    }
}

impl TestApp {
    pub async fn call(&self, request: Request<Body>) -> Answer {
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()))
        };
        Answer {
            status,
            headers,
            body,
        }
    }

    #[track_caller]
    pub fn assert_nothing_dispatched(&self) {
        assert!(
            self.bus.seen().is_empty(),
            "dispatched {:?}",
            self.bus.seen()
        );
    }
}

/// A valid order body; tests change one thing at a time.
pub(super) fn order_body() -> Value {
    serde_json::json!({
        "currency": "USD",
        "lines": [{"sku": "SKU-1", "quantity": 2}, {"sku": "SKU-2", "quantity": 1}],
        "shipping_address": {
            "name": "Ada Lovelace",
            "line1": "12 St James's Square",
            "city": "London",
            "postal_code": "SW1Y 4JH",
            "country": "GB"
        },
        "payment": {"token": "tok_ok"}
    })
}
