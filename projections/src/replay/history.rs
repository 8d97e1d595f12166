//! `history`: one aggregate's events in log order with their envelopes.
//! Only the partition the aggregate's key lives in is read.

use events::AggregateType;
use rdkafka::message::Headers;
use serde_json::{Value, json};

use super::output::Output;
use super::progress::Progress;
use super::reader::{Reader, Span};
use super::topics;
use super::{Context, ReplayError};
use crate::record::Record;

/// Prints the events of `id` on the `stream` stream; answers how many.
pub async fn history(
    ctx: &Context,
    stream: &str,
    id: &str,
    out: Output,
) -> Result<u64, ReplayError> {
    let stream =
        AggregateType::parse(stream).ok_or_else(|| ReplayError::UnknownStream(stream.into()))?;
    ctx.check_kafka().await?;
    let topic = ctx.kafka().events_topic(stream);
    let extents = topics::extents(ctx.kafka(), std::slice::from_ref(&topic)).await?;
    let partition = topics::partition_of(id.as_bytes(), extents.len() as i32);
    let spans: Vec<Span> = extents
        .iter()
        .filter(|e| e.partition == partition)
        .map(|e| Span {
            topic: e.topic.clone(),
            partition: e.partition,
            start: e.low,
            end: e.high,
        })
        .collect();
    let total = spans.iter().map(Span::len).sum();
    let progress = Progress::new("scanning", total, out.progress());
    let mut reader = Reader::open(ctx.kafka(), &spans)?;
    let mut found = Vec::new();
    while let Some(records) = reader.next_batch(10_000).await? {
        progress.inc(records.len());
        found.extend(records.into_iter().filter(|r| r.key.as_deref() == Some(id)));
    }
    progress.finish();
    if !found.is_empty() {
        out.header(HEADER);
    }
    for record in &found {
        let (text, json) = describe(record);
        out.line(&text, &json);
    }
    Ok(found.len() as u64)
}

/// The table header of [`describe`]'s lines (never printed as JSON).
pub const HEADER: &str = "PARTITION:OFFSET  SEQ  OCCURRED_AT                    EVENT_TYPE (vN)  \
                          EVENT_ID  COMMAND_ID  CORRELATION_ID  CAUSATION_ID  PAYLOAD";

/// A record as one table line and as one JSON object.
pub fn describe(record: &Record) -> (String, Value) {
    let payload = record.payload.as_deref().unwrap_or_default();
    let payload: Value = serde_json::from_slice(payload)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(payload).into_owned()));
    let appended = record.appended_at.map(|t| t.to_rfc3339());
    match record.meta() {
        Ok(meta) => {
            let text = format!(
                "{}:{}  {}  {}  {} (v{})  {}  {}  {}  {}  {}",
                record.partition,
                record.offset,
                meta.sequence,
                meta.occurred_at.to_rfc3339(),
                meta.event_type,
                meta.schema_version,
                meta.event_id,
                meta.command_id,
                meta.correlation_id,
                meta.causation_id,
                payload
            );
            let json = json!({
                "topic": record.topic, "partition": record.partition, "offset": record.offset,
                "appended_at": appended, "key": record.key, "meta": meta, "payload": payload,
            });
            (text, json)
        }
        Err(e) => {
            let text = format!(
                "{}:{}  (no envelope: {e})  key={}  {}",
                record.partition,
                record.offset,
                record.key.as_deref().unwrap_or("-"),
                payload
            );
            let json = json!({
                "topic": record.topic, "partition": record.partition, "offset": record.offset,
                "appended_at": appended, "key": record.key, "meta": null,
                "meta_error": e.to_string(), "payload": payload,
            });
            (text, json)
        }
    }
}

/// A record's headers as a JSON object of strings.
pub fn headers(record: &Record) -> Value {
    let mut map = serde_json::Map::new();
    if let Some(headers) = &record.headers {
        for header in headers.iter() {
            let value = header
                .value
                .map(|v| String::from_utf8_lossy(v).into_owned());
            map.insert(
                header.key.to_owned(),
                value.map_or(Value::Null, Value::String),
            );
        }
    }
    Value::Object(map)
}
