//! `export` and `import`: moving events between clusters as JSON lines.
//!
//! A line is one record: its stream, partition, offset, append time, key,
//! CloudEvents headers and JSON payload. Export reads every event topic up
//! to where it ended when the export began. Import appends the lines in
//! file order with an idempotent producer, keeping each record's key,
//! headers and append time; the target partition is where the target's
//! partitioner puts the key, so each aggregate's events stay in order.
//! Import only writes into empty event topics: it is for a new cluster or
//! topic prefix, never for appending behind a command processor.

use std::collections::HashSet;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};
use events::AggregateType;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::history::headers;
use super::output::Output;
use super::progress::Progress;
use super::reader::{Reader, Span};
use super::topics;
use super::{Context, ReplayError};

#[derive(Debug, Serialize, Deserialize)]
struct Line {
    stream: String,
    partition: i32,
    offset: i64,
    timestamp: Option<DateTime<Utc>>,
    key: Option<String>,
    headers: serde_json::Map<String, Value>,
    payload: Value,
}

fn file_error(path: &Path) -> impl Fn(std::io::Error) -> ReplayError + '_ {
    move |source| ReplayError::File {
        path: path.display().to_string(),
        source,
    }
}

/// Writes the event streams (all, or `streams`) to `path`; answers how many records.
pub async fn export(
    ctx: &Context,
    path: &Path,
    streams: &[String],
    out: Output,
) -> Result<u64, ReplayError> {
    let chosen = chosen_streams(streams)?;
    ctx.check_kafka().await?;
    let names: Vec<String> = chosen
        .iter()
        .map(|s| ctx.kafka().events_topic(*s))
        .collect();
    let extents = topics::extents(ctx.kafka(), &names).await?;
    let spans: Vec<Span> = extents
        .iter()
        .map(|e| Span {
            topic: e.topic.clone(),
            partition: e.partition,
            start: e.low,
            end: e.high,
        })
        .collect();
    let total = spans.iter().map(Span::len).sum();
    let progress = Progress::new("export", total, out.progress());
    let file = create_private(path).map_err(file_error(path))?;
    let mut writer = BufWriter::new(file);
    let mut reader = Reader::open(ctx.kafka(), &spans)?;
    let mut written = 0;
    while let Some(records) = reader.next_batch(10_000).await? {
        for record in &records {
            let stream = record.topic.strip_prefix(&ctx.kafka().topic_prefix);
            let stream = stream
                .and_then(|s| s.strip_suffix(".events"))
                .unwrap_or_default();
            let payload = record.payload.as_deref().unwrap_or_default();
            let line = Line {
                stream: stream.to_owned(),
                partition: record.partition,
                offset: record.offset,
                timestamp: record.appended_at,
                key: record.key.clone(),
                headers: match headers(record) {
                    Value::Object(map) => map,
                    _ => serde_json::Map::new(),
                },
                payload: serde_json::from_slice(payload).unwrap_or(Value::Null),
            };
            serde_json::to_writer(&mut writer, &line).map_err(|e| file_error(path)(e.into()))?;
            writer.write_all(b"\n").map_err(file_error(path))?;
        }
        written += records.len() as u64;
        progress.inc(records.len());
    }
    writer.flush().map_err(file_error(path))?;
    progress.finish();
    Ok(written)
}

fn chosen_streams(streams: &[String]) -> Result<Vec<AggregateType>, ReplayError> {
    if streams.is_empty() {
        return Ok(AggregateType::ALL.to_vec());
    }
    streams
        .iter()
        .map(|s| AggregateType::parse(s).ok_or_else(|| ReplayError::UnknownStream(s.clone())))
        .collect()
}

/// Appends the records of `path` to the (empty) event topics; answers how many.
pub async fn import(ctx: &Context, path: &Path, out: Output) -> Result<u64, ReplayError> {
    ctx.check_kafka().await?;
    let (streams, total) = scan(path)?;
    let topics: Vec<String> = streams
        .iter()
        .map(|s| ctx.kafka().events_topic(*s))
        .collect();
    ctx.kafka().ensure_topics(&topics).await?;
    for extent in topics::extents(ctx.kafka(), &topics).await? {
        if extent.high > extent.low {
            return Err(ReplayError::TopicNotEmpty(extent.topic));
        }
    }
    let producer: FutureProducer = ctx.kafka().producer().create()?;
    let progress = Progress::new("import", total, out.progress());
    let file = std::fs::File::open(path).map_err(file_error(path))?;
    let mut pending: Vec<(String, DeliveryFuture)> = Vec::new();
    let mut sent = 0;
    for (n, text) in BufReader::new(file).lines().enumerate() {
        let text = text.map_err(file_error(path))?;
        let line = parse_line(path, n + 1, &text)?;
        let topic = ctx
            .kafka()
            .events_topic(stream_of(path, n + 1, &line.stream)?);
        let payload = events::message::encode(&line.payload)?;
        let mut record = FutureRecord::to(&topic)
            .payload(&payload)
            .headers(owned_headers(&line.headers));
        if let Some(key) = &line.key {
            record = record.key(key);
        }
        if let Some(at) = line.timestamp {
            record = record.timestamp(at.timestamp_millis());
        }
        let delivery =
            producer
                .send_result(record)
                .map_err(|(source, _)| ReplayError::Produce {
                    topic: topic.clone(),
                    source,
                })?;
        pending.push((topic, delivery));
        if pending.len() >= 10_000 {
            sent += settle(&mut pending).await?;
            progress.inc(10_000);
        }
    }
    let rest = settle(&mut pending).await?;
    progress.finish();
    Ok(sent + rest)
}

/// Waits for the deliveries in flight; any failure fails the import.
async fn settle(pending: &mut Vec<(String, DeliveryFuture)>) -> Result<u64, ReplayError> {
    let count = pending.len() as u64;
    for (topic, delivery) in pending.drain(..) {
        let outcome = tokio::time::timeout(Duration::from_secs(60), delivery).await;
        match outcome {
            Ok(Ok(Ok(_))) => {}
            Ok(Ok(Err((source, _)))) => return Err(ReplayError::Produce { topic, source }),
            _ => {
                return Err(ReplayError::Produce {
                    topic,
                    source: rdkafka::error::KafkaError::Canceled,
                });
            }
        }
    }
    Ok(count)
}

/// The streams a file names and how many lines it has, before anything is written.
fn scan(path: &Path) -> Result<(HashSet<AggregateType>, u64), ReplayError> {
    let file = std::fs::File::open(path).map_err(file_error(path))?;
    let mut streams = HashSet::new();
    let mut lines = 0;
    for (n, text) in BufReader::new(file).lines().enumerate() {
        let text = text.map_err(file_error(path))?;
        let line = parse_line(path, n + 1, &text)?;
        streams.insert(stream_of(path, n + 1, &line.stream)?);
        lines += 1;
    }
    Ok((streams, lines))
}

fn parse_line(path: &Path, number: usize, text: &str) -> Result<Line, ReplayError> {
    serde_json::from_str(text).map_err(|e| ReplayError::BadLine {
        path: path.display().to_string(),
        line: number,
        reason: e.to_string(),
    })
}

fn stream_of(path: &Path, number: usize, name: &str) -> Result<AggregateType, ReplayError> {
    AggregateType::parse(name).ok_or_else(|| ReplayError::BadLine {
        path: path.display().to_string(),
        line: number,
        reason: format!("unknown stream {name:?}"),
    })
}

fn owned_headers(map: &serde_json::Map<String, Value>) -> OwnedHeaders {
    let mut headers = OwnedHeaders::new_with_capacity(map.len());
    for (key, value) in map {
        let value = value.as_str();
        headers = headers.insert(Header {
            key,
            value: value.map(str::as_bytes),
        });
    }
    headers
}

/// Creates (or truncates) `path` readable and writable by its owner only:
/// an export holds every customer's orders and addresses. An existing file
/// is narrowed to 0600 as well.
fn create_private(path: &std::path::Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        options.mode(0o600);
        let file = options.open(path)?;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        Ok(file)
    }
    #[cfg(not(unix))]
    options.open(path)
}
