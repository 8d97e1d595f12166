//! The order fulfilment saga as seen from outside: the events it emits for
//! the saga view, and the operator's commands for a parked saga.
//!
//! The saga's stream is keyed by order id. Every saga event carries the
//! saga's current status, step, attempt, deadline and last error, and of its
//! step history only what changed since the event before it: the steps from
//! `history_from` on (the step that just ended, the one that began, or the
//! current step's new attempt count). The saga view merges them by position.
//! Events of schema version 1 carried the whole history; they read as a
//! change from position 0.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::ids::CustomerId;

/// Where a saga is, for the saga view and the operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SagaStatus {
    Running,
    Compensating,
    Completed,
    Compensated,
    NeedsAttention,
    ResolvedByOperator,
}

impl SagaStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Compensating => "compensating",
            Self::Completed => "completed",
            Self::Compensated => "compensated",
            Self::NeedsAttention => "needs_attention",
            Self::ResolvedByOperator => "resolved_by_operator",
        }
    }
}

/// One step of the saga's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct StepRecord {
    pub step: String,
    pub started_at: DateTime<Utc>,
    pub attempts: u32,
    /// `None` while the step runs; then `succeeded`, `failed: ...` and so on.
    pub outcome: Option<String>,
}

/// The saga's progress after the event that carries it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SagaProgress {
    pub customer_id: CustomerId,
    pub status: SagaStatus,
    /// The current step, e.g. `capturing_payment`.
    pub step: String,
    /// Attempt of the current step, from 1.
    pub attempt: u32,
    pub deadline: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    /// Where `history` starts in the saga's whole step history.
    #[serde(default)]
    pub history_from: u32,
    /// The steps from position `history_from` on that this event added or
    /// changed; the steps before it are as earlier events said.
    pub history: Vec<StepRecord>,
}

/// What happened to a saga.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "type")]
pub enum SagaEvent {
    SagaStarted {
        progress: SagaProgress,
    },
    /// A new step, or a new attempt of the current one.
    SagaStepStarted {
        progress: SagaProgress,
    },
    SagaCompensating {
        reason: String,
        progress: SagaProgress,
    },
    SagaCompleted {
        progress: SagaProgress,
    },
    SagaCompensated {
        reason: String,
        progress: SagaProgress,
    },
    SagaNeedsAttention {
        reason: String,
        progress: SagaProgress,
    },
    SagaResolved {
        note: String,
        progress: SagaProgress,
    },
}

impl SagaEvent {
    /// Version 2: `history` holds what changed, from `history_from` on.
    pub const SCHEMA_VERSION: u16 = 2;

    pub fn event_type(&self) -> &'static str {
        match self {
            Self::SagaStarted { .. } => "SagaStarted",
            Self::SagaStepStarted { .. } => "SagaStepStarted",
            Self::SagaCompensating { .. } => "SagaCompensating",
            Self::SagaCompleted { .. } => "SagaCompleted",
            Self::SagaCompensated { .. } => "SagaCompensated",
            Self::SagaNeedsAttention { .. } => "SagaNeedsAttention",
            Self::SagaResolved { .. } => "SagaResolved",
        }
    }

    pub fn progress(&self) -> &SagaProgress {
        match self {
            Self::SagaStarted { progress }
            | Self::SagaStepStarted { progress }
            | Self::SagaCompensating { progress, .. }
            | Self::SagaCompleted { progress }
            | Self::SagaCompensated { progress, .. }
            | Self::SagaNeedsAttention { progress, .. }
            | Self::SagaResolved { progress, .. } => progress,
        }
    }
}

/// An operator's decision about a saga parked in `needs_attention`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "type")]
pub enum SagaCommand {
    /// Try the parked step again with a fresh retry budget.
    RetrySaga,
    /// The operator settled the saga by hand; `note` says how.
    ResolveSaga { note: String },
}

impl SagaCommand {
    pub fn command_type(&self) -> &'static str {
        match self {
            Self::RetrySaga => "RetrySaga",
            Self::ResolveSaga { .. } => "ResolveSaga",
        }
    }
}

/// Why the saga refused an operator's command.
#[derive(
    Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SagaRejection {
    #[error("saga not found")]
    NotFound,
    #[error("the saga is {status}, only a saga in needs_attention takes operator commands", status = .status.as_str())]
    NotParked { status: SagaStatus },
    #[error("a resolution needs a note")]
    InvalidNote,
}

impl SagaRejection {
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotFound => "saga_not_found",
            Self::NotParked { .. } => "saga_not_parked",
            Self::InvalidNote => "invalid_note",
        }
    }

    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::NotFound)
    }

    pub fn is_conflict(&self) -> bool {
        matches!(self, Self::NotParked { .. })
    }
}
