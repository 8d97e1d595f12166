//! `tail`: prints a topic's records from the beginning, the end or a time,
//! up to the end of the log or (following) until interrupted.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use events::AggregateType;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::{Offset, TopicPartitionList};

use super::cli::TailArgs;
use super::history::{HEADER, describe};
use super::output::Output;
use super::reader::{Reader, Span};
use super::topics::{self, Extent};
use super::{Context, ReplayError};
use crate::record::Record;

/// Prints records until the end (`--no-follow`), `--max` or ctrl-c.
pub async fn tail(ctx: &Context, args: &TailArgs, out: Output) -> Result<u64, ReplayError> {
    let topic = match AggregateType::parse(&args.topic) {
        Some(stream) => ctx.kafka().events_topic(stream),
        None => args.topic.clone(),
    };
    ctx.check_kafka().await?;
    let extents = topics::extents(ctx.kafka(), std::slice::from_ref(&topic)).await?;
    let starts = starts(ctx, &extents, &args.from).await?;
    let max = args.max.unwrap_or(u64::MAX);
    out.header(HEADER);
    if args.no_follow {
        let spans: Vec<Span> = extents
            .iter()
            .map(|e| Span {
                topic: e.topic.clone(),
                partition: e.partition,
                start: starts[&e.partition],
                end: e.high,
            })
            .collect();
        let mut reader = Reader::open(ctx.kafka(), &spans)?;
        let mut printed = 0;
        while let Some(records) = reader.next_batch(1000).await? {
            for record in records {
                if printed >= max {
                    return Ok(printed);
                }
                print(&record, out);
                printed += 1;
            }
        }
        return Ok(printed);
    }
    follow(ctx, &topic, &starts, max, out).await
}

async fn starts(
    ctx: &Context,
    extents: &[Extent],
    from: &str,
) -> Result<HashMap<i32, i64>, ReplayError> {
    let offsets: Vec<i64> = match from {
        "beginning" => extents.iter().map(|e| e.low).collect(),
        "end" => extents.iter().map(|e| e.high).collect(),
        at => {
            let at: DateTime<Utc> = at
                .parse()
                .map_err(|_| ReplayError::BadStart(at.to_owned()))?;
            topics::offsets_at(ctx.kafka(), extents, at).await?
        }
    };
    Ok(extents.iter().map(|e| e.partition).zip(offsets).collect())
}

async fn follow(
    ctx: &Context,
    topic: &str,
    starts: &HashMap<i32, i64>,
    max: u64,
    out: Output,
) -> Result<u64, ReplayError> {
    let consumer: StreamConsumer = ctx.kafka().consumer("replay").create()?;
    let mut list = TopicPartitionList::new();
    for (partition, offset) in starts {
        list.add_partition_offset(topic, *partition, Offset::Offset(*offset))?;
    }
    consumer.assign(&list)?;
    let mut printed = 0;
    while printed < max {
        let message = tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            message = consumer.recv() => message?,
        };
        print(&Record::from_message(&message), out);
        printed += 1;
    }
    Ok(printed)
}

fn print(record: &Record, out: Output) {
    let (text, json) = describe(record);
    out.line(&text, &json);
}
