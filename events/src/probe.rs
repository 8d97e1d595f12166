//! The pipeline probe: a synthetic event that travels the whole write-to-read
//! path (command service -> Kafka -> projector -> PostgreSQL -> query API), so
//! operators and tests can check the pipes and measure end-to-end latency
//! without touching business data.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "type")]
pub enum ProbeEvent {
    ProbeRecorded {
        probe_id: Uuid,
        sent_at: DateTime<Utc>,
    },
}

impl ProbeEvent {
    pub const SCHEMA_VERSION: u16 = 1;

    pub fn event_type(&self) -> &'static str {
        match self {
            ProbeEvent::ProbeRecorded { .. } => "ProbeRecorded",
        }
    }
}
