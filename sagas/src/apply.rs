//! Applying inputs to locked sagas in memory, collecting the messages they
//! cause: commands for the aggregates, the saga's own events, replies to
//! operators. The caller stores the changed sagas and the messages in the
//! same transaction; nothing here does I/O.

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use events::command::{CommandEnvelope, DomainCommand, Outcome, Reply};
use events::domain::{SagaCommand, SagaRejection, SagaStatus};
use events::message::{EncodeError, Rejection, encode};
use events::{AggregateType, EventMeta};
use uuid::Uuid;

use crate::machine::{self, Input, OrderPlacedFacts, Outgoing, Pace, Saga};
use crate::store::{Kind, OutboxMessage, Stored};

mod messages;

use messages::{command_message, event_message, saga_event};

/// Namespace of the saga's event ids and command fingerprints.
const NAMESPACE: Uuid = Uuid::from_u128(0x7c1b_2f0a_63e4_4d59_b8a7_0e6f_5d4c_3b2a);

/// What caused a change: the event (or timer, or operator command) whose id
/// becomes the causation id of the messages it leads to.
#[derive(Debug, Clone)]
pub struct Cause {
    pub id: Uuid,
    pub traceparent: Option<String>,
}

impl Cause {
    /// The cause `meta` names; inside a saga step span, the messages it
    /// leads to carry that span's trace context.
    pub fn of(meta: &EventMeta) -> Cause {
        Cause {
            id: meta.event_id,
            traceparent: events::telemetry::current_traceparent(meta.traceparent.as_ref()),
        }
    }
}

/// The sagas a transaction holds, and what happened to them.
pub struct Batch {
    pub sagas: HashMap<Uuid, Stored>,
    pub changed: BTreeSet<Uuid>,
    outbox: Vec<OutboxMessage>,
    /// The first message that could not be encoded: the batch must not
    /// commit (see `take_outbox`).
    unencodable: Option<EncodeError>,
    pace: Pace,
    now: DateTime<Utc>,
    /// Open sagas per customer at most (0: no cap), and how many each
    /// customer of the batch's new orders has (see `limit_open_orders`).
    max_open: u32,
    open: HashMap<String, i64>,
}

impl Batch {
    pub fn new(sagas: HashMap<Uuid, Stored>, pace: Pace, now: DateTime<Utc>) -> Batch {
        Batch {
            sagas,
            changed: BTreeSet::new(),
            outbox: Vec::new(),
            unencodable: None,
            pace,
            now,
            max_open: 0,
            open: HashMap::new(),
        }
    }

    /// The messages the batch queued, for the outbox; an error when one of
    /// them could not be encoded, so the transaction rolls back instead of
    /// publishing an empty record.
    pub fn take_outbox(&mut self) -> Result<Vec<OutboxMessage>, EncodeError> {
        match self.unencodable.take() {
            Some(error) => Err(error),
            None => Ok(std::mem::take(&mut self.outbox)),
        }
    }

    fn push(&mut self, message: Result<OutboxMessage, EncodeError>) {
        match message {
            Ok(message) => self.outbox.push(message),
            Err(error) => {
                self.unencodable.get_or_insert(error);
            }
        }
    }

    /// Refuses new orders of a customer who already has `max` open sagas;
    /// `open` counts them per customer as committed before this batch (the
    /// worker holds those customers' locks).
    pub fn limit_open_orders(&mut self, max: u32, open: HashMap<String, i64>) {
        self.max_open = max;
        self.open = open;
    }

    /// Starts the saga of a placed order; a second `OrderPlaced` changes nothing.
    pub fn start(&mut self, facts: &OrderPlacedFacts, cause: &Cause) {
        let order_id = *facts.order_id.as_uuid();
        if self.sagas.contains_key(&order_id) {
            return;
        }
        let open = self
            .open
            .entry(facts.customer_id.as_str().to_owned())
            .or_default();
        let (saga, outgoing) = if self.max_open > 0 && *open >= i64::from(self.max_open) {
            metrics::counter!("saga_orders_refused_total", "reason" => machine::TOO_MANY_OPEN_ORDERS)
                .increment(1);
            machine::refuse(facts, machine::TOO_MANY_OPEN_ORDERS, self.pace, self.now)
        } else {
            *open += 1;
            machine::start(facts, self.pace, self.now)
        };
        self.sagas.insert(order_id, Stored { saga, version: 0 });
        self.changed.insert(order_id);
        self.after(order_id, None, outgoing, cause);
    }

    /// Feeds `input` to the saga of `order_id`; events of orders without a
    /// saga (none was ever started) are ignored.
    pub fn feed(&mut self, order_id: Uuid, input: &Input, cause: &Cause) {
        let Some(stored) = self.sagas.get_mut(&order_id) else {
            return;
        };
        let unchanged = stored.saga.clone();
        let outgoing = stored.saga.handle(input, self.now);
        if stored.saga != unchanged {
            self.changed.insert(order_id);
        }
        self.after(order_id, Some(&unchanged), outgoing, cause);
    }

    /// Answers an operator's command (the caller handles duplicates).
    pub fn operator(&mut self, order_id: Uuid, envelope: &CommandEnvelope) -> Reply {
        let cause = Cause {
            id: envelope.command_id,
            traceparent: events::telemetry::current_traceparent(envelope.traceparent.as_ref()),
        };
        let mark = self.outbox.len();
        let outcome = match self.operate(order_id, envelope, &cause) {
            Ok(version) => Outcome::Accepted {
                version,
                events: self.event_types_from(mark),
            },
            Err(rejection) => Outcome::Rejected {
                kind: rejection.kind(),
                code: rejection.code().to_owned(),
                message: rejection.to_string(),
                version: self.version_of(order_id),
            },
        };
        let reply = Reply {
            command_id: envelope.command_id,
            aggregate_type: AggregateType::Saga,
            aggregate_id: envelope.aggregate_id.clone(),
            fingerprint: envelope.fingerprint.clone(),
            outcome,
            processed_at: self.now,
            issued_by: Some(envelope.issued_by.clone()),
        };
        let message = encode(&reply).map(|payload| OutboxMessage {
            message_id: Uuid::new_v5(&NAMESPACE, format!("reply/{}", reply.command_id).as_bytes()),
            order_id,
            stream: AggregateType::Saga,
            kind: Kind::Reply,
            key: envelope.aggregate_id.clone(),
            payload,
            meta: None,
        });
        self.push(message);
        reply
    }

    fn operate(
        &mut self,
        order_id: Uuid,
        envelope: &CommandEnvelope,
        cause: &Cause,
    ) -> Result<u64, SagaRejection> {
        let stored = self
            .sagas
            .get_mut(&order_id)
            .ok_or(SagaRejection::NotFound)?;
        let status = stored.saga.status();
        if status != SagaStatus::NeedsAttention {
            return Err(SagaRejection::NotParked { status });
        }
        let input = match &envelope.command {
            DomainCommand::Saga(SagaCommand::RetrySaga) => Input::OperatorRetry,
            DomainCommand::Saga(SagaCommand::ResolveSaga { note }) if note.trim().is_empty() => {
                return Err(SagaRejection::InvalidNote);
            }
            DomainCommand::Saga(SagaCommand::ResolveSaga { note }) => {
                Input::OperatorResolve { note: note.clone() }
            }
            _ => return Err(SagaRejection::NotFound),
        };
        let before = stored.saga.clone();
        let outgoing = stored.saga.handle(&input, self.now);
        self.changed.insert(order_id);
        self.after(order_id, Some(&before), outgoing, cause);
        Ok(self.version_of(order_id))
    }

    fn version_of(&self, order_id: Uuid) -> u64 {
        self.sagas
            .get(&order_id)
            .map_or(0, |s| u64::try_from(s.version).unwrap_or(0))
    }

    /// Types of the saga events queued since the outbox had `mark` messages.
    fn event_types_from(&self, mark: usize) -> Vec<String> {
        self.outbox[mark..]
            .iter()
            .filter(|m| m.kind == Kind::Event)
            .filter_map(|m| Some(m.meta.as_ref()?.event_type.clone()))
            .collect()
    }

    /// Queues the commands, and a saga event when the saga moved: its
    /// status, step or attempt, or its step history changed. (Facts learned
    /// without moving are saved by the caller marking the saga changed.)
    /// Every change of the history comes with an event, so an event that
    /// carries what changed since `before` leaves nothing out.
    fn after(
        &mut self,
        order_id: Uuid,
        before: Option<&Saga>,
        outgoing: Vec<Outgoing>,
        cause: &Cause,
    ) {
        let Some(stored) = self.sagas.get_mut(&order_id) else {
            return;
        };
        let moved = before.is_none_or(|before| {
            Snapshot::of(before) != Snapshot::of(&stored.saga)
                || before.history() != stored.saga.history()
        });
        if !moved && outgoing.is_empty() {
            return;
        }
        self.changed.insert(order_id);
        let mut messages: Vec<_> = outgoing
            .into_iter()
            .map(|out| command_message(order_id, out, cause, self.now))
            .collect();
        if moved {
            stored.version += 1;
            let event = saga_event(before, &stored.saga);
            messages.push(event_message(
                order_id,
                stored.version,
                event,
                cause,
                self.now,
            ));
        }
        for message in messages {
            self.push(message);
        }
    }
}

/// The part of a saga whose change is worth a saga event.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Snapshot {
    status: SagaStatus,
    step: &'static str,
    attempt: u32,
}

impl Snapshot {
    fn of(saga: &Saga) -> Snapshot {
        Snapshot {
            status: saga.status(),
            step: saga.current_step(),
            attempt: saga.attempt(),
        }
    }
}

#[cfg(test)]
mod tests;
