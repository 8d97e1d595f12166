//! Holding an aggregate back behind its poison event.
//!
//! When a record cannot be read, skipping it and applying the aggregate's
//! later events would make the view silently wrong (a payment captured whose
//! authorization was never seen, say). So once a record of a stream key is
//! dead-lettered, every later record of that key on that projection is
//! dead-lettered too ("held back"), in log order, until an operator resolves
//! the dead letters (replaying or skipping them removes them). Other
//! aggregates keep flowing.
//!
//! Which keys already have a dead letter is read with the positions
//! ([`crate::positions::claim`]); [`divert`] is the pure part.

use std::collections::HashSet;

use sqlx::{Postgres, Transaction};

use crate::dead_letters::DeadLetter;
use crate::record::Record;

/// `(projection, topic, key)` of every stream key held back.
pub type HeldKeys = HashSet<(String, String, String)>;

/// The stream keys of a batch, as three parallel arrays for a query.
#[derive(Debug, Default)]
pub struct Candidates {
    pub projections: Vec<&'static str>,
    pub topics: Vec<String>,
    pub keys: Vec<String>,
}

/// The distinct stream keys of `records` (each with its projection).
pub fn candidates(records: &[(&'static str, &Record)]) -> Candidates {
    let mut distinct: Vec<(&'static str, &str, &str)> = records
        .iter()
        .filter_map(|(p, r)| Some((*p, r.topic.as_str(), r.key.as_deref()?)))
        .collect();
    distinct.sort_unstable();
    distinct.dedup();
    let mut out = Candidates::default();
    for (projection, topic, key) in distinct {
        out.projections.push(projection);
        out.topics.push(topic.to_owned());
        out.keys.push(key.to_owned());
    }
    out
}

/// The candidates that have a dead letter now.
pub async fn held_keys(
    tx: &mut Transaction<'_, Postgres>,
    candidates: &Candidates,
) -> Result<HeldKeys, sqlx::Error> {
    let rows: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT DISTINCT d.projection, d.topic, d.record_key FROM dead_letters d
         JOIN UNNEST($1::text[], $2::text[], $3::text[]) AS k(projection, topic, record_key)
           USING (projection, topic, record_key)",
    )
    .bind(&candidates.projections)
    .bind(&candidates.topics)
    .bind(&candidates.keys)
    .fetch_all(&mut **tx)
    .await?;
    Ok(rows.into_iter().collect())
}

/// Decodes each record once and splits the batch into events to apply and
/// dead letters: unreadable records (per `decode`) and every record of a key
/// already held, which includes the keys of unreadable records earlier in
/// the batch.
pub fn divert<T>(
    projection: &'static str,
    records: &[&Record],
    held: &mut HeldKeys,
    mut decode: impl FnMut(&Record) -> Result<T, String>,
) -> (Vec<T>, Vec<DeadLetter>) {
    let mut pass = Vec::with_capacity(records.len());
    let mut dead = Vec::new();
    for record in records {
        let key = record.key.as_deref();
        let is_held = key.is_some_and(|k| {
            // Checked without allocating: held keys are rare.
            !held.is_empty()
                && held.contains(&(projection.to_owned(), record.topic.clone(), k.to_owned()))
        });
        if let (true, Some(key)) = (is_held, key) {
            let error = format!("held back behind an earlier dead letter of {key}");
            dead.push(DeadLetter::new(projection, record, error));
            continue;
        }
        match decode(record) {
            Ok(event) => pass.push(event),
            Err(error) => {
                if let Some(key) = key {
                    held.insert((projection.to_owned(), record.topic.clone(), key.to_owned()));
                }
                dead.push(DeadLetter::new(projection, record, error));
            }
        }
    }
    (pass, dead)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(offset: i64, key: &str) -> Record {
        Record {
            topic: "orders.events".into(),
            partition: 0,
            offset,
            key: Some(key.into()),
            headers: None,
            payload: Some(offset.to_string().into_bytes()),
            appended_at: None,
        }
    }

    #[test]
    fn a_poisoned_key_holds_back_its_later_records_only() {
        let records = [
            record(0, "a"),
            record(1, "b"),
            record(2, "a"),
            record(3, "c"),
        ];
        let refs: Vec<&Record> = records.iter().collect();
        let mut held = HeldKeys::from([("orders".into(), "orders.events".into(), "c".into())]);
        let (pass, dead) = divert("orders", &refs, &mut held, |r| match r.offset {
            1 => Err("bad".to_owned()),
            n => Ok(n),
        });
        assert_eq!(pass, vec![0, 2]);
        let offsets: Vec<i64> = dead.iter().map(|d| d.offset).collect();
        assert_eq!(offsets, vec![1, 3]);
        assert!(dead[1].error.starts_with("held back"));
        assert!(held.contains(&("orders".into(), "orders.events".into(), "b".into())));
    }
}
