//! The `probes` view: pipeline probes as the projector saw them.

use chrono::{DateTime, Utc};
use events::AggregateType;
use events::probe::ProbeEvent;
use sqlx::{Postgres, Transaction};
use uuid::Uuid;

use crate::record::Record;

pub const PROJECTION: &str = "probes";

/// A probe record read once: the probe and when the broker appended it.
pub type Decoded = (ProbeEvent, Option<DateTime<Utc>>);

/// Applies a batch of decoded probe records.
pub async fn apply(
    tx: &mut Transaction<'_, Postgres>,
    probes: &[Decoded],
) -> Result<(), sqlx::Error> {
    let mut ids: Vec<Uuid> = Vec::with_capacity(probes.len());
    let mut sent: Vec<DateTime<Utc>> = Vec::with_capacity(probes.len());
    let mut committed: Vec<DateTime<Utc>> = Vec::with_capacity(probes.len());
    for (ProbeEvent::ProbeRecorded { probe_id, sent_at }, appended_at) in probes {
        ids.push(*probe_id);
        sent.push(*sent_at);
        committed.push(appended_at.unwrap_or(*sent_at));
    }
    sqlx::query(
        "INSERT INTO probes (probe_id, sent_at, committed_at)
         SELECT * FROM UNNEST($1::uuid[], $2::timestamptz[], $3::timestamptz[])
         ON CONFLICT (probe_id) DO NOTHING",
    )
    .bind(&ids)
    .bind(&sent)
    .bind(&committed)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Decodes one probe record.
pub fn decode_one(record: &Record) -> Result<Decoded, String> {
    crate::views::decode::<ProbeEvent>(record, AggregateType::Probe)
        .map(|(_, event)| (event, record.appended_at))
}

/// A probe as stored in the view.
#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct ProbeRow {
    pub probe_id: Uuid,
    pub sent_at: DateTime<Utc>,
    pub committed_at: DateTime<Utc>,
    pub projected_at: DateTime<Utc>,
}

pub async fn find(pool: &sqlx::PgPool, probe_id: Uuid) -> Result<Option<ProbeRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT probe_id, sent_at, committed_at, projected_at FROM probes WHERE probe_id = $1",
    )
    .bind(probe_id)
    .fetch_optional(pool)
    .await
}
