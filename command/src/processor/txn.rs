//! A lane's transactional producer, and the wait for its acknowledgements.
//!
//! rust-rdkafka's `commit_transaction` flushes first, and its flush serves
//! delivery reports with `poll` in fixed 100 ms slices whenever anything is
//! still in flight, which would add up to 100 ms to every transaction; and
//! `BaseProducer::poll` with a timeout under a millisecond is a busy spin.
//! So the producer is a `ThreadedProducer`, whose own thread blocks on the
//! event queue and serves each delivery report as it arrives, and the lane
//! waits on a condition variable until every record of the transaction is
//! acknowledged. The commit's flush then finds nothing to wait for.

use std::collections::HashMap;
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use rdkafka::Message;
use rdkafka::client::ClientContext;
use rdkafka::error::KafkaError;
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::types::RDKafkaErrorCode;

/// The transactional producer of one lane.
pub type TxnProducer = ThreadedProducer<Deliveries>;

/// Counts the records sent and not yet acknowledged (or failed).
#[derive(Default)]
pub struct Deliveries {
    pending: Mutex<u64>,
    settled: Condvar,
    /// What was acknowledged per topic and partition.
    ends: Mutex<HashMap<(String, i32), Delivered>>,
}

/// What a lane's session had acknowledged on one partition.
#[derive(Debug, Clone, Copy)]
pub struct Delivered {
    /// The first record's offset and timestamp (ms).
    pub first: (i64, i64),
    /// One past the highest offset, where snapshot checkpoints come from.
    pub end: i64,
}

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _opaque: ()) {
        if let Ok(message) = result {
            let mut ends = self.ends.lock().unwrap_or_else(|p| p.into_inner());
            let offset = message.offset();
            let timestamp = message.timestamp().to_millis().unwrap_or_default();
            ends.entry((message.topic().to_owned(), message.partition()))
                .and_modify(|d| d.end = d.end.max(offset + 1))
                .or_insert(Delivered {
                    first: (offset, timestamp),
                    end: offset + 1,
                });
        }
        // A failed delivery puts the transaction in an abortable state, so
        // the commit reports it; here only the count matters.
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        *pending = pending.saturating_sub(1);
        if *pending == 0 {
            self.settled.notify_all();
        }
    }
}

impl Deliveries {
    fn sent(&self) {
        *self.pending.lock().unwrap_or_else(|p| p.into_inner()) += 1;
    }

    fn unsent(&self) {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        *pending = pending.saturating_sub(1);
    }

    /// One past the highest offset acknowledged on a partition, if any.
    pub fn delivered_end(&self, topic: &str, partition: i32) -> Option<i64> {
        self.delivered(topic, partition).map(|d| d.end)
    }

    /// What was acknowledged on a partition, if anything.
    pub fn delivered(&self, topic: &str, partition: i32) -> Option<Delivered> {
        let ends = self.ends.lock().unwrap_or_else(|p| p.into_inner());
        ends.get(&(topic.to_owned(), partition)).copied()
    }

    /// Blocks until every record sent so far is acknowledged (or failed).
    pub fn wait_all(&self, timeout: Duration) -> Result<(), KafkaError> {
        let deadline = Instant::now() + timeout;
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        while *pending > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(KafkaError::Flush(RDKafkaErrorCode::OperationTimedOut));
            }
            pending = self
                .settled
                .wait_timeout(pending, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        Ok(())
    }

    /// Blocks until the count drops (room in a full queue) or a short while passed.
    fn wait_for_room(&self) {
        let pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        drop(
            self.settled
                .wait_timeout(pending, Duration::from_millis(10))
                .unwrap_or_else(|p| p.into_inner()),
        );
    }
}

/// Blocks until every record sent so far is acknowledged, and librdkafka
/// has released them. The delivery callback runs before librdkafka frees
/// the report's messages, and `commit_transaction` starts with a flush that,
/// finding any message still counted, polls for a fixed 100 ms; so after the
/// last acknowledgement this waits, in 100 µs sleeps, the few microseconds
/// until the count reaches zero.
pub fn wait_acks(producer: &TxnProducer, timeout: Duration) -> Result<(), KafkaError> {
    let deadline = Instant::now() + timeout;
    producer.context().wait_all(timeout)?;
    if producer.in_flight_count() == 0 {
        return Ok(());
    }
    metrics::counter!("command_txn_unsettled_total").increment(1);
    while producer.in_flight_count() > 0 {
        if Instant::now() >= deadline {
            return Err(KafkaError::Flush(RDKafkaErrorCode::OperationTimedOut));
        }
        std::thread::sleep(Duration::from_micros(100));
    }
    Ok(())
}

/// The span of one transaction. It commits commands of many traces, so it
/// is a root of its own, linked to each command's decide span.
pub(super) fn span(commands: usize) -> tracing::Span {
    tracing::info_span!(
        target: events::telemetry::TARGET,
        "processor txn",
        otel.name = "processor txn commit",
        commands,
        events = tracing::field::Empty,
        otel.status_code = tracing::field::Empty,
        error = tracing::field::Empty,
    )
}

/// Marks the transaction of `span` failed, in the trace and the metrics.
pub(super) fn failed(span: &tracing::Span, error: &KafkaError) {
    span.record("otel.status_code", "error");
    span.record("error", tracing::field::display(error));
    metrics::counter!("command_txn_failures_total").increment(1);
}

/// Sends one record, waiting while librdkafka's queue is full.
pub fn send(
    producer: &TxnProducer,
    mut record: BaseRecord<'_, str, Vec<u8>>,
) -> Result<(), KafkaError> {
    let deliveries = producer.context();
    loop {
        deliveries.sent();
        match producer.send(record) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), returned)) => {
                deliveries.unsent();
                record = returned;
                deliveries.wait_for_room();
            }
            Err((e, _)) => {
                deliveries.unsent();
                return Err(e);
            }
        }
    }
}

/// Where a transaction's time goes, recorded per phase in
/// `command_txn_phase_seconds{phase}`.
pub struct Phases {
    last: Instant,
}

impl Phases {
    pub fn start() -> Phases {
        Phases {
            last: Instant::now(),
        }
    }

    /// Records the time since the previous mark under `phase`.
    pub fn mark(&mut self, phase: &'static str) {
        let now = Instant::now();
        metrics::histogram!("command_txn_phase_seconds", "phase" => phase)
            .record((now - self.last).as_secs_f64());
        self.last = now;
    }
}
