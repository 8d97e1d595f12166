//! From a validated request to an answer: derive the ids, build the
//! [`CommandEnvelope`], dispatch it and map what the processor said.
//!
//! Ids derived from an Idempotency-Key are UUIDv5 over the purpose, the
//! caller's role and subject, and the key, so a retry reaches the same
//! command (and, for PlaceOrder, the same order) while another caller's key,
//! or the same key on another endpoint or aggregate, never does.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use events::AggregateType;
use events::command::{
    CommandEnvelope, DomainCommand, Outcome, Principal, RejectionKind, Reply, Role, codes,
};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::AppState;
use super::error::ApiError;
use super::extract::{IdempotencyKey, Traceparent};
use crate::bus::{CommandBus, Dispatch};
use events::auth::signing::SigningKey;
use events::consistency::consistency_token;

/// Namespace of ids derived from Idempotency-Keys. Never change it: retries
/// across a deployment would stop reaching their first attempt.
const ID_NAMESPACE: Uuid = Uuid::from_u128(0x5d0c_6a51_8f0e_4c3b_9d8e_2b7f_1a46_c0de);

/// A deterministic id for `purpose` (e.g. `order-id`) from the caller and its key.
/// Subjects and keys contain no control characters, so the newline-separated
/// name is unambiguous.
pub(super) fn derived_id(purpose: &str, caller: &Principal, key: &IdempotencyKey) -> Uuid {
    let name = format!(
        "{purpose}\n{}\n{}\n{}",
        role_name(caller.role),
        caller.subject,
        key.0
    );
    Uuid::new_v5(&ID_NAMESPACE, name.as_bytes())
}

/// The command id of a request: derived when it has an Idempotency-Key, a
/// fresh UUIDv7 otherwise (such a request is simply not retry-safe).
fn command_id(
    command: &DomainCommand,
    aggregate_id: &str,
    caller: &Principal,
    key: Option<&IdempotencyKey>,
) -> Uuid {
    match key {
        Some(key) => {
            let aggregate = command.aggregate_type();
            let purpose = format!(
                "command:{aggregate}:{}:{aggregate_id}",
                command.command_type()
            );
            derived_id(&purpose, caller, key)
        }
        None => Uuid::now_v7(),
    }
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::Customer => "customer",
        Role::Admin => "admin",
        Role::Carrier => "carrier",
        Role::System => "system",
    }
}

/// A command ready to be enveloped.
pub(super) struct Outgoing {
    pub command: DomainCommand,
    pub aggregate_id: String,
    pub command_id: Uuid,
    /// The command id, except for PlaceOrder whose saga correlates by order id.
    pub correlation_id: Uuid,
    pub expected_version: Option<u64>,
}

impl Outgoing {
    /// A command whose id comes from `key` (or is fresh) and which correlates by itself.
    pub fn new(
        command: DomainCommand,
        aggregate_id: String,
        caller: &Principal,
        key: Option<&IdempotencyKey>,
        expected_version: Option<u64>,
    ) -> Self {
        let command_id = command_id(&command, &aggregate_id, caller, key);
        Self {
            command,
            aggregate_id,
            command_id,
            correlation_id: command_id,
            expected_version,
        }
    }
}

/// The processor accepted the command; its events are committed.
pub(super) struct Accepted {
    pub command_id: Uuid,
    pub aggregate: AggregateType,
    pub aggregate_id: String,
    pub version: u64,
    /// Signed with the deployment's signing key.
    pub consistency_token: String,
}

impl Accepted {
    pub fn consistency_token(&self) -> String {
        self.consistency_token.clone()
    }
}

/// What became of a dispatched command, short of an error.
pub(super) enum Sent {
    Accepted(Accepted),
    /// Durably queued, no answer yet.
    Queued(Uuid),
}

/// Envelopes `out`, dispatches it and maps the reply.
pub(super) async fn send<B: CommandBus>(
    state: &AppState<B>,
    caller: Principal,
    trace: Traceparent,
    out: Outgoing,
) -> Result<Sent, ApiError> {
    let command_type = out.command.command_type();
    let fingerprint =
        CommandEnvelope::fingerprint_of(&out.aggregate_id, out.expected_version, &out.command);
    let envelope = CommandEnvelope {
        command_id: out.command_id,
        aggregate_id: out.aggregate_id,
        expected_version: out.expected_version,
        issued_at: Utc::now(),
        correlation_id: out.correlation_id,
        causation_id: out.command_id,
        traceparent: trace.0,
        fingerprint,
        issued_by: caller,
        command: out.command,
    };
    let sent = state
        .bus
        .dispatch(envelope.clone(), state.settings.reply_wait)
        .await
        .map_err(ApiError::from)
        .and_then(|dispatch| match dispatch {
            Dispatch::Completed(reply) => {
                accepted(&envelope, reply, &state.settings.signing).map(Sent::Accepted)
            }
            Dispatch::Queued => Ok(Sent::Queued(envelope.command_id)),
        });
    metrics::counter!("command_api_dispatches_total", "command" => command_type, "outcome" => outcome_label(&sent))
        .increment(1);
    sent
}

fn outcome_label(sent: &Result<Sent, ApiError>) -> &'static str {
    match sent {
        Ok(Sent::Accepted(_)) => "accepted",
        Ok(Sent::Queued(_)) => "queued",
        Err(ApiError::Unavailable(_)) => "unavailable",
        Err(_) => "rejected",
    }
}

fn accepted(
    envelope: &CommandEnvelope,
    reply: Reply,
    signing: &SigningKey,
) -> Result<Accepted, ApiError> {
    // A reply recorded for this command id but another request: the key was
    // reused. Checked here too because the bus may answer from its own memory
    // of recent replies without asking the processor.
    if reply.fingerprint != envelope.fingerprint {
        return Err(ApiError::Rejected {
            kind: RejectionKind::Invalid,
            code: codes::IDEMPOTENCY_KEY_REUSED.to_owned(),
            message: "the Idempotency-Key was already used for a different request".to_owned(),
        });
    }
    match reply.outcome {
        Outcome::Accepted { version, .. } => Ok(Accepted {
            command_id: reply.command_id,
            aggregate: reply.aggregate_type,
            consistency_token: consistency_token(
                reply.aggregate_type,
                &reply.aggregate_id,
                version,
                signing,
            ),
            aggregate_id: reply.aggregate_id,
            version,
        }),
        Outcome::Rejected {
            kind,
            code,
            message,
            ..
        } => Err(ApiError::Rejected {
            kind,
            code,
            message,
        }),
    }
}

/// The answer to an accepted command other than PlaceOrder.
#[derive(Debug, Serialize, ToSchema)]
pub struct CommandAccepted {
    pub command_id: Uuid,
    /// `catalog`, `orders`, `payments` or `shipments`.
    pub aggregate_type: String,
    pub aggregate_id: String,
    /// The aggregate's version after the command; send it back as `If-Match`.
    pub version: u64,
    /// Pass as `X-Consistency-Token` to the query API to read your own write.
    pub consistency_token: String,
}

/// The answer when no reply came in time: the command is durably queued.
#[derive(Debug, Serialize, ToSchema)]
pub struct CommandQueued {
    pub command_id: Uuid,
    /// Always `pending`.
    pub status: String,
    /// Where the outcome will appear, e.g. `/commands/{id}`.
    pub status_url: String,
    /// For `POST /orders`: the order's id, derived from the Idempotency-Key,
    /// so it is known before the processor answers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order_id: Option<Uuid>,
}

/// 200 or 201 with [`CommandAccepted`] and the version as a strong `ETag`.
pub(super) fn accepted_response(status: StatusCode, accepted: &Accepted) -> Response {
    let body = CommandAccepted {
        command_id: accepted.command_id,
        aggregate_type: accepted.aggregate.as_str().to_owned(),
        aggregate_id: accepted.aggregate_id.clone(),
        version: accepted.version,
        consistency_token: accepted.consistency_token(),
    };
    with_etag((status, Json(body)).into_response(), accepted.version)
}

/// Adds `Location: url` (a URL built from ids, so always a valid header).
pub(super) fn with_location(mut response: Response, url: &str) -> Response {
    if let Ok(location) = HeaderValue::from_str(url) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
}

pub(super) fn with_etag(mut response: Response, version: u64) -> Response {
    if let Ok(etag) = HeaderValue::from_str(&format!("\"{version}\"")) {
        response.headers_mut().insert(header::ETAG, etag);
    }
    response
}

/// 202 with a status URL (also as `Location`).
pub(super) fn queued_response(command_id: Uuid) -> Response {
    queued_order_response(command_id, None)
}

/// 202 with a status URL (also as `Location`) and, for a new order, its id.
pub(super) fn queued_order_response(command_id: Uuid, order_id: Option<Uuid>) -> Response {
    let status_url = format!("/commands/{command_id}");
    let body = CommandQueued {
        command_id,
        status: "pending".to_owned(),
        status_url: status_url.clone(),
        order_id,
    };
    with_location(
        (StatusCode::ACCEPTED, Json(body)).into_response(),
        &status_url,
    )
}

/// 201/200 for an accepted command, 202 for a queued one.
pub(super) fn respond(status: StatusCode, sent: Sent) -> Response {
    match sent {
        Sent::Accepted(accepted) => accepted_response(status, &accepted),
        Sent::Queued(command_id) => queued_response(command_id),
    }
}
