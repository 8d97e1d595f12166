//! The saga's stored state: the facts observed about each aggregate, the step
//! the saga is in, and the history of its steps for the saga view.

use std::collections::BTreeSet;

use chrono::{DateTime, Duration, Utc};
use events::domain::{Money, ReservationRejectedReason, SagaStatus, Sku, StepRecord};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::OrderPlacedFacts;

/// One order's fulfilment saga. Stored as JSON by the worker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Saga {
    pub(super) order: OrderPlacedFacts,
    pub(super) facts: Facts,
    pub(super) phase: Phase,
    /// Attempt of the current phase, from 1; part of every command id.
    pub(super) attempt: u32,
    /// Attempts before the current retry budget: an operator's retry gives a
    /// fresh budget while the attempt (and so the ids) keeps counting up.
    #[serde(default)]
    pub(super) attempt_base: u32,
    /// Capture attempts started so far (bounded by `MAX_CAPTURE_ATTEMPTS`).
    pub(super) captures: u32,
    pub(super) deadline: Option<DateTime<Utc>>,
    /// How long one nominal second of the step timeouts lasts.
    #[serde(default)]
    pub(super) pace: Pace,
    /// Fixed when every line is reserved; the amount to authorize and capture.
    pub(super) total: Option<Money>,
    /// Ids already returned in the current attempt, so a later event in the
    /// same attempt does not emit them a second time.
    pub(super) issued: BTreeSet<Uuid>,
    pub(super) history: Vec<StepRecord>,
    pub(super) last_error: Option<String>,
}

/// The length of the nominal second in which step timeouts are written
/// (a reservation may take 30 of them, a capture retry waits 10, 20, 40 ...).
/// Production runs at 1,000 ms; tests and demos run the same saga faster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pace {
    pub millis_per_second: u32,
}

impl Default for Pace {
    fn default() -> Self {
        Pace {
            millis_per_second: 1000,
        }
    }
}

/// Everything the saga has learned from the event topics. Facts only ever
/// grow, so a duplicate or late event can never undo what was learned.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Facts {
    pub lines: Vec<LineFacts>,
    pub payment: PaymentFacts,
    pub shipment: ShipmentFacts,
    pub order: OrderFacts,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct LineFacts {
    pub sku: Sku,
    pub quantity: u32,
    pub reservation: Reservation,
    /// The saga sent `Restock` for this line (cancel after capture).
    pub restock_issued: bool,
    pub restocked: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub(super) enum Reservation {
    /// ReserveStock was sent and its outcome is not known yet.
    Pending,
    Reserved {
        unit_price: Money,
    },
    Rejected {
        reason: ReservationRejectedReason,
    },
    Released,
    Committed,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct PaymentFacts {
    /// The saga sent RequestAuthorization, so a payment may exist.
    pub authorization_issued: bool,
    pub authorized: bool,
    pub declined: bool,
    /// The capture attempt whose failure was last observed.
    pub failed_capture: u32,
    pub captured: bool,
    pub void_requested: bool,
    pub voided: bool,
    pub refunded: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct ShipmentFacts {
    /// The saga sent RequestShipment, so a shipment may exist.
    pub issued: bool,
    pub scheduled: bool,
    /// The saga released it for dispatch after the capture (sagas stored
    /// before releases existed read false and release it on their next step).
    #[serde(default)]
    pub released: bool,
    pub refused: bool,
    pub cancelled: bool,
    pub dispatched: bool,
    #[serde(default)]
    pub delivered: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct OrderFacts {
    pub priced: bool,
    pub confirmed: bool,
    pub rejected: bool,
    pub cancelled: bool,
    pub cancellation_requested: bool,
    pub shipped: bool,
    #[serde(default)]
    pub delivered: bool,
}

/// The step the saga is in.
///
/// Steps that do not depend on each other run together: once the stock is
/// reserved (which fixes the total) the saga prices the order, asks for the
/// authorization and books the shipment at once, and after the capture it
/// commits the stock and confirms the order at once. Names of the steps of
/// the older, one-thing-at-a-time graph are read as the step that now
/// contains them, so sagas stored before the change carry on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub(super) enum Phase {
    ReservingStock,
    /// PriceOrder, RequestAuthorization and RequestShipment in parallel.
    #[serde(alias = "pricing_order", alias = "authorizing_payment")]
    #[serde(alias = "scheduling_shipment")]
    AuthorizingAndScheduling,
    CapturingPayment,
    /// The last capture failed; the deadline is when to try again.
    AwaitingCaptureRetry,
    /// CommitStock for every line, ConfirmOrder and the shipment's Release
    /// in parallel: all three follow the capture.
    #[serde(alias = "committing_stock", alias = "confirming_order")]
    CommittingAndConfirming,
    Completed {
        /// The customer's cancellation came too late: the parcel left.
        cancellation_moot: bool,
    },
    Compensating(Compensation),
    Compensated {
        reason: String,
    },
    NeedsAttention {
        reason: String,
        parked: Box<Phase>,
        parked_attempt: u32,
    },
    Resolved {
        note: String,
    },
}

/// Undoing the saga: first the shipment, then payment and stock together,
/// then the order. The order closes last so that a closed order always means
/// nothing is left held.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Compensation {
    pub kind: CompensationKind,
    pub reason: String,
    pub stage: Stage,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum CompensationKind {
    /// Before the capture: void, release, RejectOrder.
    Reject,
    /// After the capture (the order is confirmed): refund, restock, CancelOrder.
    Cancel,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum Stage {
    CancelShipment,
    SettlePaymentAndStock,
    CloseOrder,
}

impl Phase {
    pub(super) fn name(&self) -> &'static str {
        match self {
            Self::ReservingStock => "reserving_stock",
            Self::AuthorizingAndScheduling => "authorizing_and_scheduling",
            Self::CapturingPayment => "capturing_payment",
            Self::AwaitingCaptureRetry => "awaiting_capture_retry",
            Self::CommittingAndConfirming => "committing_and_confirming",
            Self::Completed { .. } => "completed",
            Self::Compensating(c) => match c.stage {
                Stage::CancelShipment => "compensating_shipment",
                Stage::SettlePaymentAndStock => "compensating_payment_and_stock",
                Stage::CloseOrder => "closing_order",
            },
            Self::Compensated { .. } => "compensated",
            Self::NeedsAttention { .. } => "needs_attention",
            Self::Resolved { .. } => "resolved_by_operator",
        }
    }

    /// How long the phase may wait for its events before its deadline fires.
    /// Compensations back off with each attempt.
    pub(super) fn timeout(&self, attempt: u32, pace: Pace) -> Option<Duration> {
        let seconds = match self {
            Self::ReservingStock | Self::CommittingAndConfirming => 30,
            Self::AuthorizingAndScheduling | Self::CapturingPayment => 60,
            Self::AwaitingCaptureRetry => 5 * 2_i64.pow(attempt.min(6)),
            Self::Compensating(_) => 30 * i64::from(attempt.min(8)),
            Self::Completed { .. }
            | Self::Compensated { .. }
            | Self::NeedsAttention { .. }
            | Self::Resolved { .. } => return None,
        };
        Some(Duration::milliseconds(
            seconds * i64::from(pace.millis_per_second),
        ))
    }
}

impl Saga {
    pub(super) fn new(order: OrderPlacedFacts, pace: Pace, now: DateTime<Utc>) -> Self {
        let lines = order
            .lines
            .iter()
            .map(|line| LineFacts {
                sku: line.sku.clone(),
                quantity: line.quantity,
                reservation: Reservation::Pending,
                restock_issued: false,
                restocked: false,
            })
            .collect();
        let phase = Phase::ReservingStock;
        Self {
            order,
            facts: Facts {
                lines,
                ..Facts::default()
            },
            deadline: phase.timeout(1, pace).map(|t| now + t),
            pace,
            history: vec![StepRecord {
                step: phase.name().to_owned(),
                started_at: now,
                attempts: 1,
                outcome: None,
            }],
            phase,
            attempt: 1,
            attempt_base: 0,
            captures: 0,
            total: None,
            issued: BTreeSet::new(),
            last_error: None,
        }
    }

    /// When the timer should fire `DeadlineFired`; `None` when nothing waits.
    pub fn deadline(&self) -> Option<DateTime<Utc>> {
        self.deadline
    }

    /// Completed, compensated, parked or resolved. A completed saga still
    /// reacts to a customer's cancellation until the parcel is dispatched.
    pub fn is_terminal(&self) -> bool {
        !matches!(
            self.status(),
            SagaStatus::Running | SagaStatus::Compensating
        )
    }

    pub fn status(&self) -> SagaStatus {
        match self.phase {
            Phase::Completed { .. } => SagaStatus::Completed,
            Phase::Compensating(_) => SagaStatus::Compensating,
            Phase::Compensated { .. } => SagaStatus::Compensated,
            Phase::NeedsAttention { .. } => SagaStatus::NeedsAttention,
            Phase::Resolved { .. } => SagaStatus::ResolvedByOperator,
            _ => SagaStatus::Running,
        }
    }

    /// The current step's name, e.g. `capturing_payment`.
    pub fn current_step(&self) -> &'static str {
        self.phase.name()
    }

    pub fn history(&self) -> &[StepRecord] {
        &self.history
    }

    pub fn last_error(&self) -> Option<&str> {
        self.last_error.as_deref()
    }

    /// Why the saga is parked, while it is.
    pub fn attention_reason(&self) -> Option<&str> {
        match &self.phase {
            Phase::NeedsAttention { reason, .. } => Some(reason),
            _ => None,
        }
    }

    /// Why the saga compensates or compensated: the reason given to the order.
    pub fn compensation_reason(&self) -> Option<&str> {
        match &self.phase {
            Phase::Compensating(c) => Some(&c.reason),
            Phase::Compensated { reason } => Some(reason),
            _ => None,
        }
    }

    /// The order total, once every line is reserved and priced.
    pub fn total(&self) -> Option<Money> {
        self.total
    }

    pub fn order_id(&self) -> events::domain::OrderId {
        self.order.order_id
    }

    pub fn customer_id(&self) -> &events::domain::CustomerId {
        &self.order.customer_id
    }

    /// Attempt of the current step, from 1 (counting past operator retries).
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// How the operator settled the saga, once they did.
    pub fn resolution_note(&self) -> Option<&str> {
        match &self.phase {
            Phase::Resolved { note } => Some(note),
            _ => None,
        }
    }
}
