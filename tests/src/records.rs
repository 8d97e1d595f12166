//! Records written straight to the event topics, with the envelope headers
//! the command processors and the saga worker put on theirs, for the tests
//! in which the projector is what is under test: out-of-order, duplicate
//! and undecodable records that the writers would never produce.

use std::time::Duration;

use events::domain::{Currency, CustomerId, OrderEvent, OrderLine, Sku};
use events::message::EventPayload;
use events::{AggregateType, EventMeta, kafka, new_id};
use rdkafka::producer::{FutureProducer, FutureRecord};
use uuid::Uuid;

use crate::TestEnv;

/// The metadata a writer puts on `event`, the `sequence`th of
/// `aggregate_id`'s `stream`, stamped `occurred_at`, with fresh ids.
pub fn meta<E: EventPayload>(
    event: &E,
    stream: AggregateType,
    aggregate_id: &str,
    sequence: u64,
    occurred_at: chrono::DateTime<chrono::Utc>,
) -> EventMeta {
    let id = new_id();
    EventMeta {
        event_id: id,
        event_type: event.event_type().into(),
        schema_version: E::SCHEMA_VERSION,
        aggregate_type: stream,
        aggregate_id: aggregate_id.into(),
        sequence,
        occurred_at,
        command_id: id,
        correlation_id: id,
        causation_id: id,
        traceparent: None,
    }
}

/// Appends `event` as the `sequence`th of `aggregate`'s `stream`; answers
/// the partition and offset it landed at.
pub async fn append<E: EventPayload>(
    producer: &FutureProducer,
    env: &TestEnv,
    stream: AggregateType,
    aggregate: Uuid,
    sequence: u64,
    event: &E,
) -> (i32, i64) {
    let now = chrono::Utc::now();
    append_at(producer, env, (stream, aggregate, sequence), event, now).await
}

/// [`append`] with the event and its record stamped `at` (the topics keep
/// the producer's time), as if it had been written then.
pub async fn append_at<E: EventPayload>(
    producer: &FutureProducer,
    env: &TestEnv,
    (stream, aggregate, sequence): (AggregateType, Uuid, u64),
    event: &E,
    at: chrono::DateTime<chrono::Utc>,
) -> (i32, i64) {
    let meta = meta(event, stream, &aggregate.to_string(), sequence, at);
    let payload = serde_json::to_vec(event).unwrap();
    let key = aggregate.to_string();
    let topic = env.kafka.events_topic(stream);
    let record = FutureRecord::to(&topic)
        .key(&key)
        .payload(&payload)
        .timestamp(at.timestamp_millis())
        .headers(kafka::to_headers(&meta));
    let delivery = producer.send(record, Duration::from_secs(5)).await.unwrap();
    (delivery.partition, delivery.offset)
}

/// Writes a record under `key` to the orders topic that no projection can
/// decode: no envelope headers, and a payload that is not JSON.
pub async fn poison(producer: &FutureProducer, env: &TestEnv, key: &str) {
    let topic = env.kafka.events_topic(AggregateType::Order);
    let poison = FutureRecord::<str, [u8]>::to(&topic)
        .key(key)
        .payload(b"{not json");
    producer.send(poison, Duration::from_secs(5)).await.unwrap();
}

/// `customer`'s order of one `SKU-1`, as placed.
pub fn placed(customer: &str) -> OrderEvent {
    OrderEvent::OrderPlaced {
        customer_id: CustomerId::new(customer).unwrap(),
        currency: Currency::new("USD").unwrap(),
        lines: vec![OrderLine {
            sku: Sku::new("SKU-1").unwrap(),
            quantity: 1,
        }],
        shipping_address: crate::processor::address(),
        payment_token: "tok_ok".into(),
    }
}
