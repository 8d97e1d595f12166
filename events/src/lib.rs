//! The wire contract of the commerce core, and the runtime every service shares.
//!
//! Everything that crosses a process boundary is defined here once, so the
//! command processors, sagas, projectors and tools cannot disagree about it:
//!
//! - [`args`]: flags several services share (where the read models live)
//!   and reading a flag group from the environment alone.
//! - [`asyncapi`]: the event catalog as an AsyncAPI 3.0 document.
//! - [`envelope`]: the event envelope ([`EventMeta`], [`Envelope`]) and
//!   [`AggregateType`], which names the streams and topics.
//! - [`domain`]: the commands, events and rejections of each aggregate as
//!   closed enums, plus the value types (ids, money).
//! - [`auth`]: bearer tokens (JWT) turned into a [`command::Principal`], and
//!   minting development tokens; shared by both HTTP APIs.
//! - [`command`]: the command envelope, the replies, and [`command::DomainCommand`]
//!   (every aggregate's commands in one enum).
//! - [`consistency`]: the consistency token a command answer carries and a
//!   read may present (read-your-writes).
//! - [`http`]: serving HTTP with timeouts, connection, in-flight and
//!   per-caller rate limits, and the optional ops listener.
//! - [`kafka`]: topic names, client settings, CloudEvents headers.
//! - [`message`]: the [`message::EventPayload`] and [`message::Rejection`] traits
//!   every event family and rejection implements, and upcasting on read.
//! - [`pg`]: PostgreSQL pools as the services open them.
//! - [`probe`]: the synthetic pipeline-probe event.
//! - [`record`]: a consumed Kafka record detached from its consumer, and
//!   the batch, retry and offset-hint pieces every consumer loop shares.
//! - [`telemetry`]: logs and OpenTelemetry traces, and the W3C trace context
//!   carried in HTTP and Kafka headers.
//! - [`service`]: shutdown, metrics, health and problem+json, the
//!   plumbing of every binary.

pub mod args;
pub mod asyncapi;
pub mod auth;
pub mod command;
pub mod consistency;
pub mod domain;
pub mod envelope;
pub mod http;
pub mod kafka;
pub mod message;
pub mod pg;
pub mod probe;
pub mod record;
pub mod service;
pub mod telemetry;

pub use envelope::{AggregateType, Envelope, EventMeta, new_id};
pub use kafka::{KafkaArgs, KafkaConfig};
