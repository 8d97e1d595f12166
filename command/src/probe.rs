//! Writes pipeline probes to Kafka in a transaction, the same way command
//! processors write events, so a probe seen by a read_committed consumer proves
//! the transactional path works end to end.

use std::time::Duration;

use chrono::{SubsecRound, Utc};
use events::probe::ProbeEvent;
use events::{AggregateType, EventMeta, KafkaConfig, kafka, new_id};
use rdkafka::error::KafkaError;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use tokio::sync::Mutex;
use uuid::Uuid;

const TXN_TIMEOUT: Duration = Duration::from_secs(10);

/// A transactional producer for probes. One transaction at a time, so calls
/// are serialised; probes are rare.
pub struct ProbeWriter {
    config: KafkaConfig,
    transactional_id: String,
    topic: String,
    producer: Mutex<Option<FutureProducer>>,
}

impl ProbeWriter {
    pub fn new(config: &KafkaConfig, transactional_id: String) -> ProbeWriter {
        ProbeWriter {
            topic: config.events_topic(AggregateType::Probe),
            config: config.clone(),
            transactional_id,
            producer: Mutex::new(None),
        }
    }

    async fn connect(&self) -> Result<FutureProducer, KafkaError> {
        let producer: FutureProducer = self
            .config
            .transactional_producer(&self.transactional_id)
            .create()?;
        let init = producer.clone();
        blocking(move || init.init_transactions(TXN_TIMEOUT)).await?;
        Ok(producer)
    }

    /// Writes one probe and returns its id once the transaction is committed.
    /// On any error the transaction is aborted (or the producer dropped), so
    /// nothing half-written is ever visible to read_committed consumers.
    pub async fn record(&self) -> Result<ProbeEvent, KafkaError> {
        let mut slot = self.producer.lock().await;
        let producer = match slot.as_ref() {
            Some(p) => p.clone(),
            None => slot.insert(self.connect().await?).clone(),
        };
        let probe_id = Uuid::now_v7();
        let event = ProbeEvent::ProbeRecorded {
            probe_id,
            // PostgreSQL keeps microseconds; so does the probe, so it compares equal.
            sent_at: Utc::now().trunc_subsecs(6),
        };
        let result = self.write(&producer, probe_id, &event).await;
        if let Err(e) = &result {
            tracing::warn!(error = %e, "probe transaction failed, dropping the producer");
            let aborting = producer.clone();
            drop(blocking(move || aborting.abort_transaction(TXN_TIMEOUT)).await);
            // A fresh producer (same transactional id) fences whatever state
            // this one was left in, which covers fatal and timed-out cases.
            *slot = None;
        }
        result.map(|()| event)
    }

    async fn write(
        &self,
        producer: &FutureProducer,
        probe_id: Uuid,
        event: &ProbeEvent,
    ) -> Result<(), KafkaError> {
        let id = new_id();
        let meta = EventMeta {
            event_id: id,
            event_type: event.event_type().to_owned(),
            schema_version: ProbeEvent::SCHEMA_VERSION,
            aggregate_type: AggregateType::Probe,
            aggregate_id: probe_id.to_string(),
            sequence: 1,
            occurred_at: Utc::now(),
            command_id: id,
            correlation_id: id,
            causation_id: id,
            traceparent: None,
        };
        let payload = serde_json::to_vec(event).map_err(|_| KafkaError::Canceled)?;
        let key = meta.aggregate_id.clone();
        producer.begin_transaction()?;
        let record = FutureRecord::to(&self.topic)
            .key(&key)
            .payload(&payload)
            .headers(kafka::to_headers(&meta));
        producer
            .send(record, TXN_TIMEOUT)
            .await
            .map_err(|(e, _)| e)?;
        let committing = producer.clone();
        blocking(move || committing.commit_transaction(TXN_TIMEOUT)).await
    }
}

/// librdkafka's transaction calls block the calling thread.
async fn blocking<F>(f: F) -> Result<(), KafkaError>
where
    F: FnOnce() -> Result<(), KafkaError> + Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or(Err(KafkaError::Canceled))
}
