//! The provider gateway: turns the payment and shipment requests on the event
//! topics into calls to the payment provider and the carrier, and their
//! answers into `Record*` commands for the aggregates.
//!
//! A batch of requests is read in one PostgreSQL transaction (`plan`: what
//! each request needs, judged against the stored payments), then its calls
//! run concurrently, bounded by `MAX_CALLS`, while the next batches are
//! already read: a slow or silent provider call holds its own batch's offset
//! commit back, never the calls behind it, so the gateway's own queue does
//! not count against the provider's deadlines.
//!
//! It is at-least-once: offsets are committed in batch order, each after its
//! batch's commands are acknowledged, and a command's id is derived from the
//! event that asked for it, so a redelivered request yields the same
//! command, which the processor deduplicates. Transient provider failures are
//! retried with backoff (each call carries its attempt number, so the
//! sandbox answers the same after a restart); a capture that still fails is
//! recorded as failed (the saga retries it later), other calls are left to
//! the saga's deadlines.
//!
//! - `plan`: a batch's requests and the calls they need.
//! - `provider`: the traits a payment provider and a carrier implement.
//! - [`sandbox`]: the deterministic sandbox behind them.

mod plan;
pub mod provider;
pub mod sandbox;

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use events::command::{CommandEnvelope, DomainCommand, Principal, Role};
use events::domain::{OrderId, PaymentCommand, ShipmentCommand};
use events::record::{self, Record};
use events::{AggregateType, EventMeta, KafkaConfig, telemetry};
use futures::StreamExt;
use futures::future::join_all;
use futures::stream::FuturesOrdered;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::OwnedHeaders;
use rdkafka::producer::{FutureProducer, FutureRecord};
use sqlx::PgPool;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use uuid::Uuid;

use plan::{Call, Request};
use provider::{Authorization, Booking, Capture, Carrier, PaymentProvider, Transient};

const MAX_BATCH: usize = 500;
/// Batches read ahead while earlier ones still wait for their calls.
const MAX_BATCHES_IN_FLIGHT: usize = 16;
/// Provider and carrier calls in flight at once.
const MAX_CALLS: usize = 512;
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
    calls: Semaphore,
}

impl<P: PaymentProvider, C: Carrier> Gateway<P, C> {
    pub fn new(provider: P, carrier: C, pool: PgPool, kafka: KafkaConfig) -> Self {
        Gateway {
            provider,
            carrier,
            pool,
            kafka,
            backoff: Duration::from_millis(20),
            calls: Semaphore::new(MAX_CALLS),
        }
    }
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
    let consumer: StreamConsumer = kafka.hinting_consumer(&group_id).create()?;
    let payments = kafka.events_topic(AggregateType::Payment);
    let shipments = kafka.events_topic(AggregateType::Shipment);
    consumer.subscribe(&[&payments, &shipments])?;
    let producer: FutureProducer = kafka.producer().create()?;
    let mut in_flight: FuturesOrdered<tokio::task::JoinHandle<Option<Vec<Record>>>> =
        FuturesOrdered::new();
    loop {
        let room = in_flight.len() < MAX_BATCHES_IN_FLIGHT;
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            Some(answered) = in_flight.next() => {
                if let Ok(Some(records)) = answered {
                    record::commit_hint(&consumer, &records);
                }
            }
            batch = record::next_batch_or_wait(&consumer, MAX_BATCH, &shutdown), if room => {
                let Some(records) = batch else {
                    return Ok(());
                };
                let pool = &gateway.pool;
                let planned = record::retry_until(&shutdown, "reading a gateway batch", || {
                    plan::plan(pool, &records)
                });
                let Some(requests) = planned.await else {
                    return Ok(());
                };
                let (gateway, producer) = (gateway.clone(), producer.clone());
                let shutdown = shutdown.clone();
                in_flight.push_back(tokio::spawn(async move {
                    let answers = gateway.answer_all(requests).await;
                    sent(&producer, &gateway.kafka, &answers, &shutdown)
                        .await
                        .then_some(records)
                }));
            }
        }
    }
}

/// Sends the answers until the broker acknowledged them; false on shutdown.
async fn sent(
    producer: &FutureProducer,
    kafka: &KafkaConfig,
    answers: &[Answer],
    shutdown: &CancellationToken,
) -> bool {
    record::retry_until(shutdown, "sending provider answers", || {
        send(producer, kafka, answers)
    })
    .await
    .is_some()
}

async fn send(
    producer: &FutureProducer,
    kafka: &KafkaConfig,
    answers: &[Answer],
) -> Result<(), rdkafka::error::KafkaError> {
    // An answer that cannot be encoded is left out, loudly, rather than sent
    // as an empty record: the saga's deadline asks for the call again.
    let encoded: Vec<(String, CommandEnvelope, Vec<u8>)> = answers
        .iter()
        .filter_map(|a| {
            let envelope = envelope(a);
            match events::message::encode(&envelope) {
                Ok(payload) => Some((kafka.commands_topic(a.stream), envelope, payload)),
                Err(error) => {
                    tracing::error!(order_id = %a.order_id, %error, "gateway answer not sent");
                    None
                }
            }
        })
        .collect();
    let sends = encoded.iter().map(|(topic, e, payload)| {
        let headers = telemetry::kafka_headers(OwnedHeaders::new(), e.traceparent.as_deref());
        let record = FutureRecord::to(topic)
            .key(e.aggregate_id.as_str())
            .payload(payload)
            .headers(headers);
        producer.send(record, Duration::from_secs(10))
    });
    for sent in join_all(sends).await {
        sent.map_err(|(e, _)| e)?;
    }
    Ok(())
}

/// The span of one provider or carrier call, a child of the event that asked.
fn call_span(request: &Request) -> tracing::Span {
    let span = tracing::info_span!(
        target: telemetry::TARGET,
        "gateway call",
        otel.name = %format_args!("gateway {}", request.call.name()),
        otel.kind = "client",
        order.id = %request.order_id,
    );
    telemetry::continue_from(&span, request.cause.traceparent.as_deref(), None);
    span
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
    /// Makes the batch's calls concurrently; answers what they need sent.
    async fn answer_all(&self, requests: Vec<Request>) -> Vec<Answer> {
        let answers = join_all(requests.into_iter().map(|request| async move {
            let _permit = self.calls.acquire().await.ok()?;
            let span = call_span(&request);
            let (stream, command) = self
                .call(request.order_id, request.call)
                .instrument(span.clone())
                .await?;
            let mut cause = request.cause;
            // The answer's command continues the trace from this call.
            cause.traceparent =
                span.in_scope(|| telemetry::current_traceparent(cause.traceparent.as_ref()));
            Some(Answer {
                stream,
                order_id: request.order_id,
                cause,
                command,
            })
        }));
        answers.await.into_iter().flatten().collect()
    }

    /// Makes one call; answers the command that records its outcome.
    async fn call(&self, order_id: OrderId, call: Call) -> Option<(AggregateType, DomainCommand)> {
        let payment = |command| Some((AggregateType::Payment, DomainCommand::Payment(command)));
        let shipment = |command| Some((AggregateType::Shipment, DomainCommand::Shipment(command)));
        match call {
            Call::Authorize { payment: p, amount } => {
                let authorized = self
                    .retrying(|attempt| {
                        let p = p.at(attempt);
                        async move { self.provider.authorize(&p, amount).await }
                    })
                    .await;
                match authorized {
                    Ok(Authorization::Authorized { provider_ref }) => {
                        payment(PaymentCommand::RecordAuthorized { provider_ref })
                    }
                    Ok(Authorization::Declined { reason }) => {
                        payment(PaymentCommand::RecordDeclined { reason })
                    }
                    Ok(Authorization::NoAnswer) | Err(_) => None,
                }
            }
            Call::Capture { payment: p, amount } => {
                let captured = self
                    .retrying(|attempt| {
                        let p = p.at(attempt);
                        async move { self.provider.capture(&p, amount).await }
                    })
                    .await;
                match captured {
                    Ok(Capture::Captured) => payment(PaymentCommand::RecordCaptured),
                    Ok(Capture::Failed { reason }) | Err(Transient(reason)) => {
                        payment(PaymentCommand::RecordCaptureFailed { reason })
                    }
                    Ok(Capture::NoAnswer) => None,
                }
            }
            Call::Void { payment: p, record } => {
                let voided = self
                    .retrying(|attempt| {
                        let p = p.at(attempt);
                        async move { self.provider.void(&p).await }
                    })
                    .await;
                if voided.is_ok() && record {
                    payment(PaymentCommand::RecordVoided)
                } else {
                    None
                }
            }
            Call::Refund { payment: p, amount } => {
                let refunded = self
                    .retrying(|attempt| {
                        let p = p.at(attempt);
                        async move { self.provider.refund(&p, amount).await }
                    })
                    .await;
                refunded
                    .ok()
                    .and_then(|()| payment(PaymentCommand::RecordRefunded))
            }
            Call::Schedule { order_id, address } => {
                let booked = self
                    .retrying(|_| self.carrier.schedule(order_id, &address))
                    .await;
                match booked {
                    Ok(Booking::Scheduled { tracking_ref }) => {
                        shipment(ShipmentCommand::RecordScheduled {
                            tracking_ref,
                            carrier: Some(self.carrier.id().to_owned()),
                        })
                    }
                    Ok(Booking::Refused { reason }) => {
                        shipment(ShipmentCommand::RecordRefused { reason })
                    }
                    Err(_) => None,
                }
            }
            Call::Withdraw { order_id: booked } => {
                // Withdrawing the booking needs no answer on the log.
                let withdrawn = self.retrying(|_| self.carrier.cancel(booked, None)).await;
                if let Err(e) = withdrawn {
                    tracing::warn!(%order_id, error = %e, "withdrawing a booking failed");
                }
                None
            }
        }
    }

    /// Calls `call` with attempts 1, 2, ... until it answers, up to
    /// `CALL_ATTEMPTS` times with backoff.
    async fn retrying<T, F, Fut>(&self, call: F) -> Result<T, Transient>
    where
        F: Fn(u32) -> Fut,
        Fut: std::future::Future<Output = Result<T, Transient>>,
    {
        let mut backoff = self.backoff;
        let mut attempt = 1;
        loop {
            match call(attempt).await {
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
}
