//! The event catalog as an AsyncAPI 3.0 document, generated from the types
//! in this crate: every topic (channel) with its key and partitioning, every
//! message with its CloudEvents headers, its JSON Schema and its schema
//! version.
//!
//! The payload schemas come from the serde types themselves (`schemars`
//! reads the same `#[serde]` attributes the wire format obeys), so a changed
//! event changes the document; `events/asyncapi.json` is the committed copy,
//! written by `replay asyncapi`, and a test fails when the two differ. The
//! query API serves the same document at `GET /asyncapi.json`.
//!
//! Channel addresses are the topic names without the deployment's optional
//! topic prefix (`TOPIC_PREFIX`).

use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, SchemaGenerator};
use serde_json::{Map, Value, json};

use crate::command::{CommandEnvelope, Reply};
use crate::domain::{CatalogCommand, OrderCommand, PaymentCommand, SagaCommand, ShipmentCommand};
use crate::domain::{CatalogEvent, OrderEvent, PaymentEvent, SagaEvent, ShipmentEvent};
use crate::envelope::AggregateType;
use crate::kafka::KafkaConfig;
use crate::message::EventPayload;
use crate::probe::ProbeEvent;

/// Version of the Kafka bindings the document uses.
const KAFKA_BINDING: &str = "0.5.0";
const SCHEMAS: &str = "#/components/schemas/";

/// The whole AsyncAPI document.
pub fn document() -> Value {
    let mut generator = SchemaGenerator::new(SchemaSettings::draft07().with(|s| {
        s.definitions_path = "/components/schemas".into();
        s.meta_schema = None;
    }));
    let mut doc = Catalog::default();
    for stream in AggregateType::ALL {
        let (events, version) = event_schema(stream, &mut generator);
        doc.events(stream, &events, version);
        if let Some(command) = command_schema(stream, &mut generator) {
            doc.commands(stream, &command);
        }
    }
    generator.subschema_for::<CommandEnvelope>();
    generator.subschema_for::<Reply>();
    let mut schemas = generator.take_definitions(true);
    // Each event variant gets a schema of its own, so a message names it.
    for (name, schema) in std::mem::take(&mut doc.variants) {
        schemas.insert(name, schema);
    }
    json!({
        "asyncapi": "3.0.0",
        "info": {
            "title": "commerce-core events and commands",
            "version": env!("CARGO_PKG_VERSION"),
            "description": DESCRIPTION,
        },
        "defaultContentType": "application/json",
        "servers": {
            "local": {
                "host": "127.0.0.1:19092",
                "protocol": "kafka",
                "description": "The local stack of scripts/stack (a single KRaft node).",
            }
        },
        "channels": doc.channels,
        "operations": doc.operations,
        "components": {
            "schemas": schemas,
            "messages": doc.messages,
        },
    })
}

/// The document as the committed file holds it: pretty JSON and a newline.
pub fn render() -> String {
    // A `Value` always serializes (its keys are strings); the unit test that
    // compares the committed copy would catch an empty one.
    let mut text = serde_json::to_string_pretty(&document()).unwrap_or_default();
    text.push('\n');
    text
}

const DESCRIPTION: &str = "Every change in the commerce core is a domain event on Kafka. \
Each stream has a `<stream>.events` topic; the aggregates and the saga also take commands on \
`<stream>.commands` and answer on `<stream>.replies`. The three topics of a stream are \
co-partitioned: the record key is the aggregate id (payments and shipments are keyed by their \
order id) and producers use the murmur2 partitioner (librdkafka's `murmur2_random`, Java's \
default), so every Kafka client agrees where a key lives. Event topics are kept forever; \
commands and replies for a week. An event's metadata travels in CloudEvents headers (Kafka \
protocol binding, binary mode) and its value is the JSON payload alone; `ce_schemaversion` \
is the payload's schema version (older versions are upcast when read, never rewritten). \
Events are read with isolation.level=read_committed: they are written in Kafka transactions. \
Channel addresses are the topic names without the deployment's optional topic prefix \
(TOPIC_PREFIX).";

/// The JSON Schema of `stream`'s events and the schema version it writes.
fn event_schema(stream: AggregateType, generator: &mut SchemaGenerator) -> (Value, u16) {
    fn of<E: EventPayload + JsonSchema>(g: &mut SchemaGenerator) -> (Value, u16) {
        g.subschema_for::<E>();
        let schema = g.definitions().get(E::schema_name().as_ref()).cloned();
        (schema.unwrap_or_default(), E::SCHEMA_VERSION)
    }
    match stream {
        AggregateType::CatalogItem => of::<CatalogEvent>(generator),
        AggregateType::Order => of::<OrderEvent>(generator),
        AggregateType::Payment => of::<PaymentEvent>(generator),
        AggregateType::Shipment => of::<ShipmentEvent>(generator),
        AggregateType::Saga => of::<SagaEvent>(generator),
        AggregateType::Probe => of::<ProbeEvent>(generator),
    }
}

/// The schema name and `aggregate` tag of the commands `stream` takes.
fn command_schema(
    stream: AggregateType,
    generator: &mut SchemaGenerator,
) -> Option<(String, &'static str)> {
    fn of<C: JsonSchema>(
        g: &mut SchemaGenerator,
        tag: &'static str,
    ) -> Option<(String, &'static str)> {
        g.subschema_for::<C>();
        Some((C::schema_name().into_owned(), tag))
    }
    // The tags are `DomainCommand`'s variant names in snake case.
    match stream {
        AggregateType::CatalogItem => of::<CatalogCommand>(generator, "catalog_item"),
        AggregateType::Order => of::<OrderCommand>(generator, "order"),
        AggregateType::Payment => of::<PaymentCommand>(generator, "payment"),
        AggregateType::Shipment => of::<ShipmentCommand>(generator, "shipment"),
        AggregateType::Saga => of::<SagaCommand>(generator, "saga"),
        AggregateType::Probe => None,
    }
}

/// The channels, operations and messages collected so far.
#[derive(Default)]
struct Catalog {
    channels: Map<String, Value>,
    operations: Map<String, Value>,
    messages: Map<String, Value>,
    variants: Vec<(String, Value)>,
}

impl Catalog {
    /// The events topic of `stream`: one message per event type.
    fn events(&mut self, stream: AggregateType, schema: &Value, version: u16) {
        let channel = channel_id(stream, "Events");
        let mut refs = Map::new();
        for variant in variants(schema) {
            let Some(name) = variant["properties"]["type"]["const"].as_str() else {
                continue;
            };
            let name = name.to_owned();
            self.messages
                .insert(name.clone(), event_message(stream, &name, version));
            refs.insert(
                name.clone(),
                json!({ "$ref": format!("#/components/messages/{name}") }),
            );
            let mut variant = variant.clone();
            variant["title"] = json!(name);
            self.variants.push((name, variant));
        }
        let writer = match stream {
            AggregateType::Saga => "the saga worker (through its outbox)",
            AggregateType::Probe => "the command service's probe endpoint",
            _ => "the command processor holding the matching commands partition (its only writer)",
        };
        self.channel(stream, "events", &channel, refs, writer, "send");
    }

    /// The commands and replies topics of `stream`.
    fn commands(&mut self, stream: AggregateType, (schema, tag): &(String, &'static str)) {
        let command = format!("{schema}Envelope");
        self.messages.insert(
            command.clone(),
            json!({
                "name": command,
                "title": format!("a {} command", stream.as_str()),
                "summary": "A command with the metadata the processor needs to decide, deduplicate and trace it.",
                "contentType": "application/json",
                "payload": {
                    "allOf": [
                        { "$ref": format!("{SCHEMAS}CommandEnvelope") },
                        {
                            "type": "object",
                            "properties": { "command": {
                                "type": "object",
                                "properties": {
                                    "aggregate": { "const": tag },
                                    "command": { "$ref": format!("{SCHEMAS}{schema}") },
                                },
                            }},
                        },
                    ]
                },
                "bindings": { "kafka": key_binding(stream) },
            }),
        );
        let refs = Map::from_iter([(
            command.clone(),
            json!({ "$ref": format!("#/components/messages/{command}") }),
        )]);
        let channel = channel_id(stream, "Commands");
        let reader = "the command processors (group command-processors), or the saga worker for sagas.commands";
        self.channel(stream, "commands", &channel, refs, reader, "receive");
        let reply = format!("{}Reply", channel_id(stream, ""));
        self.messages.insert(
            reply.clone(),
            json!({
                "name": reply,
                "title": format!("the answer to a {} command", stream.as_str()),
                "summary": "Written in the same transaction as the command's events, so a reply is visible exactly when its events are.",
                "contentType": "application/json",
                "payload": { "$ref": format!("{SCHEMAS}Reply") },
                "bindings": { "kafka": key_binding(stream) },
            }),
        );
        let refs = Map::from_iter([(
            reply.clone(),
            json!({ "$ref": format!("#/components/messages/{reply}") }),
        )]);
        let channel = channel_id(stream, "Replies");
        self.channel(
            stream,
            "replies",
            &channel,
            refs,
            "the command processors",
            "send",
        );
    }

    fn channel(
        &mut self,
        stream: AggregateType,
        kind: &str,
        id: &str,
        messages: Map<String, Value>,
        who: &str,
        action: &str,
    ) {
        let topic = topic(stream, kind);
        let retention: i64 = if kind == "events" { -1 } else { 604_800_000 };
        let operation_messages: Vec<Value> = messages
            .keys()
            .map(|name| json!({ "$ref": format!("#/channels/{id}/messages/{name}") }))
            .collect();
        self.channels.insert(
            id.to_owned(),
            json!({
                "address": topic,
                "title": topic,
                "description": format!(
                    "{kind} of the {stream} stream; key: {}; partitioned by murmur2 of the key, \
                     co-partitioned with the stream's other topics",
                    key_description(stream)
                ),
                "messages": messages,
                "bindings": { "kafka": {
                    "topic": topic,
                    "partitions": KafkaConfig::new("").partitions,
                    "topicConfiguration": { "retention.ms": retention },
                    "bindingVersion": KAFKA_BINDING,
                }},
                "x-partitioner": "murmur2_random",
            }),
        );
        let verb = if action == "send" { "send" } else { "receive" };
        self.operations.insert(
            format!("{verb}{}", capitalize(id)),
            json!({
                "action": action,
                "channel": { "$ref": format!("#/channels/{id}") },
                "summary": format!("{} {} {topic}", capitalize(who), if action == "send" { "writes" } else { "reads" }),
                "messages": operation_messages,
            }),
        );
    }
}

/// The message of one event type: CloudEvents headers with its type and
/// schema version fixed, the payload schema, the key.
fn event_message(stream: AggregateType, name: &str, version: u16) -> Value {
    let uuid = json!({ "type": "string", "format": "uuid" });
    json!({
        "name": name,
        "title": name,
        "summary": format!("{name}, schema version {version}, on the {stream} stream"),
        "contentType": "application/json",
        "headers": {
            "type": "object",
            "description": "CloudEvents 1.0 attributes, Kafka protocol binding (binary mode)",
            "required": ["ce_specversion", "ce_id", "ce_source", "ce_type", "ce_subject",
                         "ce_time", "ce_schemaversion", "ce_sequence", "ce_commandid",
                         "ce_correlationid", "ce_causationid", "content-type"],
            "properties": {
                "ce_specversion": { "const": "1.0" },
                "ce_id": { "description": "event id (UUIDv7)", "type": "string", "format": "uuid" },
                "ce_source": { "const": format!("/commerce/{stream}") },
                "ce_type": { "const": name },
                "ce_subject": { "description": format!("aggregate id: {}", key_description(stream)), "type": "string" },
                "ce_time": { "description": "when the event occurred (RFC 3339)", "type": "string", "format": "date-time" },
                "ce_schemaversion": { "description": "schema version of the payload", "const": version.to_string() },
                "ce_sequence": { "description": "1-based position in the aggregate's stream", "type": "string", "pattern": "^[1-9][0-9]*$" },
                "ce_commandid": uuid,
                "ce_correlationid": uuid,
                "ce_causationid": uuid,
                "ce_traceparent": { "description": "W3C trace context, when traced", "type": "string" },
                "content-type": { "const": "application/json" },
            },
        },
        "correlationId": { "location": "$message.header#/ce_correlationid" },
        "payload": { "$ref": format!("{SCHEMAS}{name}") },
        "bindings": { "kafka": key_binding(stream) },
        "x-schema-version": version,
    })
}

fn key_binding(stream: AggregateType) -> Value {
    let key = match stream {
        AggregateType::CatalogItem => json!({ "type": "string", "description": "the SKU" }),
        AggregateType::Probe => {
            json!({ "type": "string", "format": "uuid", "description": "the probe id" })
        }
        _ => json!({ "type": "string", "format": "uuid", "description": "the order id" }),
    };
    json!({ "key": key, "bindingVersion": KAFKA_BINDING })
}

fn key_description(stream: AggregateType) -> &'static str {
    match stream {
        AggregateType::CatalogItem => "the SKU",
        AggregateType::Order => "the order id",
        AggregateType::Payment | AggregateType::Shipment => "the order id it belongs to",
        AggregateType::Saga => "the order id of the saga",
        AggregateType::Probe => "the probe id",
    }
}

/// The alternatives of an internally tagged enum's schema.
fn variants(schema: &Value) -> impl Iterator<Item = &Value> {
    ["oneOf", "anyOf"]
        .into_iter()
        .filter_map(|k| schema.get(k).and_then(Value::as_array))
        .flatten()
}

fn topic(stream: AggregateType, kind: &str) -> String {
    format!("{}.{kind}", stream.as_str())
}

/// `ordersEvents`, `catalogCommands`: a channel id from its topic.
fn channel_id(stream: AggregateType, kind: &str) -> String {
    format!("{}{kind}", stream.as_str())
}

fn capitalize(text: &str) -> String {
    let mut chars = text.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests;
