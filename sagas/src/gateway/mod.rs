//! The provider gateway: turns the payment and shipment requests on the event
//! topics into calls to the payment provider and the carrier, and their
//! answers into `Record*` commands for the aggregates.
//!
//! It is at-least-once: a batch's offsets are committed after its commands
//! are acknowledged, and a command's id is derived from the event that asked
//! for it, so a redelivered request yields the same command, which the
//! processor deduplicates. Transient provider failures are retried with
//! backoff; a capture that still fails is recorded as failed (the saga retries
//! it later), other calls are left to the saga's deadlines.
//!
//! - `provider`: the traits a payment provider and a carrier implement.
//! - [`sandbox`]: the deterministic sandbox behind them.

pub mod provider;
pub mod sandbox;

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use events::command::{CommandEnvelope, DomainCommand, Principal, Role};
use events::domain::{OrderId, PaymentCommand, PaymentEvent, ShipmentCommand, ShipmentEvent};
use events::message::EventPayload;
use events::record::{self, Record};
use events::{AggregateType, EventMeta, KafkaConfig};
use futures::future::join_all;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use provider::{Authorization, Booking, Capture, Carrier, PaymentProvider, PaymentRef, Transient};

const MAX_BATCH: usize = 500;
/// Calls per request before a transient failure counts as an answer.
const CALL_ATTEMPTS: u32 = 5;
const NAMESPACE: Uuid = Uuid::from_u128(0x2b8e_41f7_0c6d_4a95_9e13_d7a2_c5f0_8b64);

/// The provider and carrier the gateway calls, and where it sends answers.
pub struct Gateway<P, C> {
    pub provider: P,
    pub carrier: C,
    pub pool: PgPool,
    pub kafka: KafkaConfig,
    /// First backoff after a transient failure; doubles per attempt.
    pub backoff: Duration,
}

/// An answer to send: the `Record*` command for the requesting aggregate.
struct Answer {
    stream: AggregateType,
    order_id: OrderId,
    cause: EventMeta,
    command: DomainCommand,
}

pub async fn run<P: PaymentProvider, C: Carrier>(
    gateway: Arc<Gateway<P, C>>,
    group_id: String,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let kafka = &gateway.kafka;
    let consumer: StreamConsumer = kafka.consumer(&group_id).create()?;
    let payments = kafka.events_topic(AggregateType::Payment);
    let shipments = kafka.events_topic(AggregateType::Shipment);
    consumer.subscribe(&[&payments, &shipments])?;
    let producer: FutureProducer = kafka.producer().create()?;
    loop {
        let batch = tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            batch = record::next_batch(&consumer, MAX_BATCH) => batch,
        };
        let records = match batch {
            Ok(records) => records,
            Err(e) => {
                tracing::warn!(error = %e, "gateway consume failed");
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        let answers = join_all(records.iter().map(|r| gateway.handle(r))).await;
        let answers: Vec<Answer> = answers.into_iter().flatten().collect();
        let mut backoff = Duration::from_millis(50);
        while let Err(e) = send(&producer, kafka, &answers).await {
            tracing::warn!(error = %e, "sending provider answers failed, retrying");
            tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                _ = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
        record::commit_hint(&consumer, &records);
    }
}

async fn send(
    producer: &FutureProducer,
    kafka: &KafkaConfig,
    answers: &[Answer],
) -> Result<(), rdkafka::error::KafkaError> {
    let envelopes: Vec<(String, CommandEnvelope)> = answers
        .iter()
        .map(|a| (kafka.commands_topic(a.stream), envelope(a)))
        .collect();
    let payloads: Vec<Vec<u8>> = envelopes
        .iter()
        .map(|(_, e)| serde_json::to_vec(e).unwrap_or_default())
        .collect();
    let sends = envelopes
        .iter()
        .zip(&payloads)
        .map(|((topic, e), payload)| {
            let record = FutureRecord::to(topic)
                .key(e.aggregate_id.as_str())
                .payload(payload);
            producer.send(record, Duration::from_secs(10))
        });
    for sent in join_all(sends).await {
        sent.map_err(|(e, _)| e)?;
    }
    Ok(())
}

/// The command for `answer`, with an id derived from the event that asked.
fn envelope(answer: &Answer) -> CommandEnvelope {
    let cause = &answer.cause;
    let command_id = Uuid::new_v5(&NAMESPACE, cause.event_id.as_bytes());
    let subject = match answer.stream {
        AggregateType::Shipment => "carrier-gateway",
        _ => "payment-gateway",
    };
    let aggregate_id = answer.order_id.to_string();
    CommandEnvelope {
        command_id,
        fingerprint: CommandEnvelope::fingerprint_of(&aggregate_id, None, &answer.command),
        aggregate_id,
        expected_version: None,
        issued_at: Utc::now(),
        correlation_id: cause.correlation_id,
        causation_id: cause.event_id,
        traceparent: cause.traceparent.clone(),
        issued_by: Principal {
            subject: subject.to_owned(),
            role: Role::System,
        },
        command: answer.command.clone(),
    }
}

impl<P: PaymentProvider, C: Carrier> Gateway<P, C> {
    /// The answer to one record, if it is a request that gets one.
    async fn handle(&self, record: &Record) -> Option<Answer> {
        let read = |record: &Record| -> Result<(EventMeta, Vec<u8>), String> {
            let meta = record.meta().map_err(|e| e.to_string())?;
            let payload = record.payload.clone().ok_or("record has no payload")?;
            Ok((meta, payload))
        };
        let (meta, payload) = match read(record) {
            Ok(read) => read,
            Err(error) => {
                // The saga worker dead-letters the same record.
                tracing::warn!(topic = %record.topic, offset = record.offset, %error,
                    "gateway skipped an unreadable record");
                return None;
            }
        };
        let order_id: OrderId = meta.aggregate_id.parse().ok()?;
        let answer = match meta.aggregate_type {
            AggregateType::Payment => {
                let event = PaymentEvent::decode(&meta, &payload).ok()?;
                let command = self.payment(order_id, event).await?;
                (AggregateType::Payment, DomainCommand::Payment(command))
            }
            AggregateType::Shipment => {
                let event = ShipmentEvent::decode(&meta, &payload).ok()?;
                let command = self.shipment(order_id, event).await?;
                (AggregateType::Shipment, DomainCommand::Shipment(command))
            }
            _ => return None,
        };
        Some(Answer {
            stream: answer.0,
            order_id,
            cause: meta,
            command: answer.1,
        })
    }

    async fn payment(&self, order_id: OrderId, event: PaymentEvent) -> Option<PaymentCommand> {
        match event {
            PaymentEvent::PaymentAuthorizationRequested { amount, token } => {
                self.remember(order_id, &token).await?;
                let payment = PaymentRef {
                    order_id,
                    token,
                    provider_ref: None,
                };
                match self
                    .retrying(|| self.provider.authorize(&payment, amount))
                    .await
                {
                    Ok(Authorization::Authorized { provider_ref }) => {
                        Some(PaymentCommand::RecordAuthorized { provider_ref })
                    }
                    Ok(Authorization::Declined { reason }) => {
                        Some(PaymentCommand::RecordDeclined { reason })
                    }
                    Ok(Authorization::NoAnswer) | Err(_) => None,
                }
            }
            PaymentEvent::PaymentCaptureRequested { amount } => {
                let payment = self.payment_ref(order_id).await?;
                match self
                    .retrying(|| self.provider.capture(&payment, amount))
                    .await
                {
                    Ok(Capture::Captured) => Some(PaymentCommand::RecordCaptured),
                    Ok(Capture::Failed { reason }) | Err(Transient(reason)) => {
                        Some(PaymentCommand::RecordCaptureFailed { reason })
                    }
                }
            }
            PaymentEvent::PaymentAuthorized { provider_ref, .. } => {
                // An authorization that arrives after the void was asked for
                // is released at once.
                let void_requested = self.record_authorized(order_id, &provider_ref).await?;
                if !void_requested {
                    return None;
                }
                let payment = self.payment_ref(order_id).await?;
                let voided = self.retrying(|| self.provider.void(&payment)).await;
                voided.ok().map(|()| PaymentCommand::RecordVoided)
            }
            PaymentEvent::PaymentVoidRequested => {
                self.record_void_requested(order_id).await?;
                let payment = self.payment_ref(order_id).await?;
                let voided = self.retrying(|| self.provider.void(&payment)).await;
                // Without an authorization there is nothing to record yet: the
                // payment stays void-pending until a late one shows up.
                let authorized = payment.provider_ref.is_some();
                voided
                    .ok()
                    .filter(|()| authorized)
                    .map(|()| PaymentCommand::RecordVoided)
            }
            PaymentEvent::PaymentRefundRequested { amount } => {
                let payment = self.payment_ref(order_id).await?;
                let refunded = self
                    .retrying(|| self.provider.refund(&payment, amount))
                    .await;
                refunded.ok().map(|()| PaymentCommand::RecordRefunded)
            }
            _ => None,
        }
    }

    async fn shipment(&self, order_id: OrderId, event: ShipmentEvent) -> Option<ShipmentCommand> {
        match event {
            ShipmentEvent::ShipmentRequested { address } => {
                match self
                    .retrying(|| self.carrier.schedule(order_id, &address))
                    .await
                {
                    Ok(Booking::Scheduled { tracking_ref }) => {
                        Some(ShipmentCommand::RecordScheduled { tracking_ref })
                    }
                    Ok(Booking::Refused { reason }) => {
                        Some(ShipmentCommand::RecordRefused { reason })
                    }
                    Err(_) => None,
                }
            }
            ShipmentEvent::ShipmentCancelled => {
                // Withdrawing the booking needs no answer on the log.
                if let Err(e) = self.retrying(|| self.carrier.cancel(order_id, None)).await {
                    tracing::warn!(%order_id, error = %e, "withdrawing a booking failed");
                }
                None
            }
            _ => None,
        }
    }

    /// Calls `call` until it answers, up to `CALL_ATTEMPTS` times with backoff.
    async fn retrying<T, F, Fut>(&self, call: F) -> Result<T, Transient>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<T, Transient>>,
    {
        let mut backoff = self.backoff;
        let mut attempt = 1;
        loop {
            match call().await {
                Err(e) if attempt < CALL_ATTEMPTS => {
                    tracing::debug!(error = %e, attempt, "provider call failed, retrying");
                    metrics::counter!("gateway_transient_failures_total").increment(1);
                    tokio::time::sleep(backoff).await;
                    backoff *= 2;
                    attempt += 1;
                }
                answered => return answered,
            }
        }
    }

    /// Keeps the payment token: captures, voids and refunds need it later.
    async fn remember(&self, order_id: OrderId, token: &str) -> Option<()> {
        let stored = sqlx::query(
            "INSERT INTO gateway_payments (order_id, token) VALUES ($1, $2)
             ON CONFLICT (order_id) DO NOTHING",
        )
        .bind(order_id.as_uuid())
        .bind(token)
        .execute(&self.pool)
        .await;
        self.database(stored.map(drop))
    }

    /// Stores the provider's reference; answers whether a void was already asked for.
    async fn record_authorized(&self, order_id: OrderId, provider_ref: &str) -> Option<bool> {
        let row: Result<Option<(bool,)>, _> = sqlx::query_as(
            "UPDATE gateway_payments SET provider_ref = $2 WHERE order_id = $1
             RETURNING void_requested",
        )
        .bind(order_id.as_uuid())
        .bind(provider_ref)
        .fetch_optional(&self.pool)
        .await;
        Some(self.database(row)?.is_some_and(|(void,)| void))
    }

    async fn record_void_requested(&self, order_id: OrderId) -> Option<()> {
        let stored =
            sqlx::query("UPDATE gateway_payments SET void_requested = true WHERE order_id = $1")
                .bind(order_id.as_uuid())
                .execute(&self.pool)
                .await;
        self.database(stored.map(drop))
    }

    async fn payment_ref(&self, order_id: OrderId) -> Option<PaymentRef> {
        let row: Result<Option<(String, Option<String>)>, _> =
            sqlx::query_as("SELECT token, provider_ref FROM gateway_payments WHERE order_id = $1")
                .bind(order_id.as_uuid())
                .fetch_optional(&self.pool)
                .await;
        let (token, provider_ref) = self.database(row)?.unwrap_or_default();
        Some(PaymentRef {
            order_id,
            token,
            provider_ref,
        })
    }

    fn database<T>(&self, result: Result<T, sqlx::Error>) -> Option<T> {
        result
            .map_err(|e| tracing::warn!(error = %e, "gateway database call failed"))
            .ok()
    }
}
