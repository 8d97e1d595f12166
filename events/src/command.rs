//! Commands on the `<aggregate>.commands` topics and the replies the command
//! processors write to `<aggregate>.replies`.
//!
//! A command is keyed by its aggregate id, so it lands on the partition whose
//! processor owns that aggregate. Its reply goes to the same partition of the
//! replies topic in the same Kafka transaction as the events it produced, so a
//! reply is visible exactly when its events are.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::domain::{CatalogCommand, OrderCommand, PaymentCommand, SagaCommand, ShipmentCommand};
use crate::envelope::AggregateType;

/// Every command of every aggregate: one closed enum, so adding one makes the
/// compiler list the places to update.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "aggregate", content = "command", rename_all = "snake_case")]
pub enum DomainCommand {
    CatalogItem(CatalogCommand),
    Order(OrderCommand),
    Payment(PaymentCommand),
    Shipment(ShipmentCommand),
    /// An operator's decision about a parked saga; the saga worker takes it.
    Saga(SagaCommand),
}

impl DomainCommand {
    pub fn aggregate_type(&self) -> AggregateType {
        match self {
            DomainCommand::CatalogItem(_) => AggregateType::CatalogItem,
            DomainCommand::Order(_) => AggregateType::Order,
            DomainCommand::Payment(_) => AggregateType::Payment,
            DomainCommand::Shipment(_) => AggregateType::Shipment,
            DomainCommand::Saga(_) => AggregateType::Saga,
        }
    }

    pub fn command_type(&self) -> &'static str {
        match self {
            DomainCommand::CatalogItem(c) => c.command_type(),
            DomainCommand::Order(c) => c.command_type(),
            DomainCommand::Payment(c) => c.command_type(),
            DomainCommand::Shipment(c) => c.command_type(),
            DomainCommand::Saga(c) => c.command_type(),
        }
    }
}

/// A command with the metadata the processor needs to decide, deduplicate and
/// trace it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CommandEnvelope {
    /// Deterministic for retries: derived from the caller and its
    /// Idempotency-Key, or from the saga step that issued it.
    pub command_id: Uuid,
    pub aggregate_id: String,
    /// Optimistic concurrency: the version the caller last saw (If-Match).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_version: Option<u64>,
    pub issued_at: DateTime<Utc>,
    pub correlation_id: Uuid,
    pub causation_id: Uuid,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
    /// A digest of what the caller asked for; the same command id with a
    /// different fingerprint is an Idempotency-Key reused for another request.
    pub fingerprint: String,
    /// Who asked. Commands of a customer only reach that customer's orders.
    pub issued_by: Principal,
    pub command: DomainCommand,
}

/// Namespace of command fingerprints. Never change it: a retry across a
/// deployment would no longer match its first attempt.
const FINGERPRINT_NAMESPACE: Uuid = Uuid::from_u128(0x9a7e_03c2_41d5_4f6a_8b19_e3c4_7d20_f1ab);

impl CommandEnvelope {
    /// A digest of what is asked, so a processor can tell a retry from a
    /// command id reused for another request. It covers the parsed command,
    /// not bytes: key order and whitespace do not matter.
    pub fn fingerprint_of(
        aggregate_id: &str,
        expected_version: Option<u64>,
        command: &DomainCommand,
    ) -> String {
        #[derive(Serialize)]
        struct Request<'a> {
            aggregate_id: &'a str,
            expected_version: Option<u64>,
            command: &'a DomainCommand,
        }
        let request = Request {
            aggregate_id,
            expected_version,
            command,
        };
        // Plain data with string keys: serializing cannot fail.
        let text = crate::message::encode_plain(&request);
        Uuid::new_v5(&FINGERPRINT_NAMESPACE, text.as_bytes()).to_string()
    }
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Principal {
    /// For a customer, the customer id; otherwise the operator, carrier or service name.
    pub subject: String,
    pub role: Role,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Customer,
    Admin,
    Carrier,
    /// Internal services such as the saga.
    System,
}

/// How a command ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// The command's events are committed; `version` is the aggregate's
    /// version after them (unchanged when the command was already applied).
    Accepted { version: u64, events: Vec<String> },
    /// Nothing was appended.
    Rejected {
        kind: RejectionKind,
        code: String,
        message: String,
        /// The aggregate's version when the command was refused.
        version: u64,
    },
}

/// How a rejection maps onto HTTP: the request itself is wrong (422), the
/// aggregate's state conflicts with it (409), or the aggregate does not exist (404).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RejectionKind {
    Invalid,
    Conflict,
    NotFound,
}

/// The processor's answer to one command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Reply {
    pub command_id: Uuid,
    pub aggregate_type: AggregateType,
    pub aggregate_id: String,
    pub fingerprint: String,
    pub outcome: Outcome,
    pub processed_at: DateTime<Utc>,
    /// Who issued the command: only they (and operators) may ask about it
    /// at `GET /commands/{id}`. Absent in replies written before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issued_by: Option<Principal>,
}

/// Stable codes of rejections the processor makes itself, before the aggregate decides.
pub mod codes {
    /// `If-Match` named a version other than the current one.
    pub const VERSION_CONFLICT: &str = "version_conflict";
    /// The Idempotency-Key was already used for a different request.
    pub const IDEMPOTENCY_KEY_REUSED: &str = "idempotency_key_reused";
    /// The command could not be decoded.
    pub const MALFORMED_COMMAND: &str = "malformed_command";
}
