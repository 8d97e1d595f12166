//! Holding an aggregate back behind its poison event.
//!
//! When a record cannot be read, skipping it and applying the aggregate's
//! later events would make the view silently wrong (a payment captured whose
//! authorization was never seen, say). So once a record of a stream key is
//! dead-lettered, every later record of that key on that projection is
//! dead-lettered too ("held back"), in log order, until an operator resolves
//! the dead letters (replaying or skipping them removes them). Other
//! aggregates keep flowing.

use std::collections::HashSet;

use sqlx::{Postgres, Transaction};

use crate::dead_letters::DeadLetter;
use crate::record::Record;

/// Splits records into those to apply and those to dead-letter: unreadable
/// ones (per `readable`) and every later record of a key already held.
pub async fn divert(
    tx: &mut Transaction<'_, Postgres>,
    projection: &'static str,
    records: &[Record],
    readable: impl Fn(&Record) -> Result<(), String>,
) -> Result<(Vec<Record>, Vec<DeadLetter>), sqlx::Error> {
    let mut held = blocked_keys(tx, projection, records).await?;
    let mut pass = Vec::with_capacity(records.len());
    let mut dead = Vec::new();
    for record in records {
        let key = record
            .key
            .as_ref()
            .map(|k| (record.topic.clone(), k.clone()));
        if let Some(key) = key.as_ref().filter(|k| held.contains(*k)) {
            let error = format!("held back behind an earlier dead letter of {}", key.1);
            dead.push(DeadLetter::new(projection, record, error));
        } else if let Err(error) = readable(record) {
            held.extend(key);
            dead.push(DeadLetter::new(projection, record, error));
        } else {
            pass.push(record.clone());
        }
    }
    Ok((pass, dead))
}

/// The keys of the batch that already have a dead letter on this projection.
async fn blocked_keys(
    tx: &mut Transaction<'_, Postgres>,
    projection: &str,
    records: &[Record],
) -> Result<HashSet<(String, String)>, sqlx::Error> {
    let (topics, keys): (Vec<String>, Vec<String>) = records
        .iter()
        .filter_map(|r| Some((r.topic.clone(), r.key.clone()?)))
        .collect::<HashSet<_>>()
        .into_iter()
        .unzip();
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT DISTINCT topic, record_key FROM dead_letters
         WHERE projection = $1
           AND (topic, record_key) IN (SELECT * FROM UNNEST($2::text[], $3::text[]))",
    )
    .bind(projection)
    .bind(&topics)
    .bind(&keys)
    .fetch_all(&mut **tx)
    .await?;
    Ok(rows.into_iter().collect())
}
