//! The messages a change of a saga leads to: the saga event that describes
//! it (with the steps of the history that changed), and the commands it
//! sends, as outbox rows.

use chrono::{DateTime, Utc};
use events::command::{CommandEnvelope, Principal, Role};
use events::domain::{SagaEvent, SagaProgress, SagaStatus};
use events::message::{EncodeError, encode};
use events::{AggregateType, EventMeta};
use uuid::Uuid;

use super::{Cause, NAMESPACE};
use crate::machine::{Outgoing, Saga};
use crate::store::{Kind, OutboxMessage};

/// The saga's progress, with the steps of its history that changed since
/// `before` (all of them for a new saga). The history only grows and only
/// its last step changes, so what changed is a suffix.
fn progress(before: Option<&Saga>, saga: &Saga) -> SagaProgress {
    let history = saga.history();
    let from = before.map_or(0, |before| {
        let earlier = before.history();
        history
            .iter()
            .zip(earlier)
            .position(|(now, then)| now != then)
            .unwrap_or(earlier.len().min(history.len()))
    });
    SagaProgress {
        customer_id: saga.customer_id().clone(),
        status: saga.status(),
        step: saga.current_step().to_owned(),
        attempt: saga.attempt(),
        deadline: saga.deadline(),
        last_error: saga.last_error().map(String::from),
        history_from: u32::try_from(from).unwrap_or(u32::MAX),
        history: history[from..].to_vec(),
    }
}

/// The saga event that describes moving from `before` to the saga's state.
pub(super) fn saga_event(before: Option<&Saga>, saga: &Saga) -> SagaEvent {
    let progress = progress(before, saga);
    let reason = || saga.compensation_reason().unwrap_or_default().to_owned();
    let Some(before) = before else {
        return SagaEvent::SagaStarted { progress };
    };
    match saga.status() {
        SagaStatus::Completed => SagaEvent::SagaCompleted { progress },
        SagaStatus::Compensated => SagaEvent::SagaCompensated {
            reason: reason(),
            progress,
        },
        SagaStatus::NeedsAttention => SagaEvent::SagaNeedsAttention {
            reason: saga.attention_reason().unwrap_or_default().to_owned(),
            progress,
        },
        SagaStatus::ResolvedByOperator => SagaEvent::SagaResolved {
            note: saga.resolution_note().unwrap_or_default().to_owned(),
            progress,
        },
        SagaStatus::Compensating if before.status() != SagaStatus::Compensating => {
            SagaEvent::SagaCompensating {
                reason: reason(),
                progress,
            }
        }
        SagaStatus::Compensating | SagaStatus::Running => SagaEvent::SagaStepStarted { progress },
    }
}

pub(super) fn event_message(
    order_id: Uuid,
    sequence: i64,
    event: SagaEvent,
    cause: &Cause,
    now: DateTime<Utc>,
) -> Result<OutboxMessage, EncodeError> {
    let event_id = Uuid::new_v5(
        &NAMESPACE,
        format!("event/{order_id}/{sequence}").as_bytes(),
    );
    let meta = EventMeta {
        event_id,
        event_type: event.event_type().to_owned(),
        schema_version: SagaEvent::SCHEMA_VERSION,
        aggregate_type: AggregateType::Saga,
        aggregate_id: order_id.to_string(),
        sequence: u64::try_from(sequence).unwrap_or(0),
        occurred_at: now,
        command_id: cause.id,
        correlation_id: order_id,
        causation_id: cause.id,
        traceparent: cause.traceparent.clone(),
    };
    Ok(OutboxMessage {
        message_id: event_id,
        order_id,
        stream: AggregateType::Saga,
        kind: Kind::Event,
        key: order_id.to_string(),
        payload: encode(&event)?,
        meta: Some(meta),
    })
}

pub(super) fn command_message(
    order_id: Uuid,
    out: Outgoing,
    cause: &Cause,
    now: DateTime<Utc>,
) -> Result<OutboxMessage, EncodeError> {
    let fingerprint = CommandEnvelope::fingerprint_of(&out.aggregate_id, None, &out.command);
    let stream = out.command.aggregate_type();
    let envelope = CommandEnvelope {
        command_id: out.command_id,
        aggregate_id: out.aggregate_id,
        expected_version: None,
        issued_at: now,
        correlation_id: order_id,
        causation_id: cause.id,
        traceparent: cause.traceparent.clone(),
        fingerprint,
        issued_by: Principal {
            subject: "sagas".to_owned(),
            role: Role::System,
        },
        command: out.command,
    };
    Ok(OutboxMessage {
        message_id: envelope.command_id,
        order_id,
        stream,
        kind: Kind::Command,
        key: envelope.aggregate_id.clone(),
        payload: encode(&envelope)?,
        meta: None,
    })
}
