//! Records a projection could not apply. They are stored with their position
//! and error, and the projection moves on.

use crate::record::Record;

#[derive(Debug, Clone)]
pub struct DeadLetter {
    pub projection: &'static str,
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<String>,
    pub payload: Option<Vec<u8>>,
    pub error: String,
}

impl DeadLetter {
    pub fn new(projection: &'static str, record: &Record, error: String) -> DeadLetter {
        DeadLetter {
            projection,
            topic: record.topic.clone(),
            partition: record.partition,
            offset: record.offset,
            key: record.key.clone(),
            payload: record.payload.clone(),
            error,
        }
    }
}

/// Logs and counts dead letters about to be stored (with the positions, by
/// [`crate::positions::advance`]).
pub fn log(letters: &[DeadLetter]) {
    for letter in letters {
        tracing::warn!(
            projection = letter.projection,
            topic = %letter.topic,
            partition = letter.partition,
            offset = letter.offset,
            error = %letter.error,
            "dead-lettering a record"
        );
        metrics::counter!("projection_dead_letters_total", "projection" => letter.projection)
            .increment(1);
    }
}

/// A stored dead letter, for readers.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct StoredDeadLetter {
    pub id: i64,
    pub projection: String,
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub record_key: Option<String>,
    pub payload: Option<Vec<u8>>,
    pub error: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

/// Up to `limit` dead letters, newest first, older than `before` when given.
pub async fn page(
    pool: &sqlx::PgPool,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<StoredDeadLetter>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, projection, topic, partition, \"offset\", record_key, payload, error, created_at
         FROM dead_letters
         WHERE $1::bigint IS NULL OR id < $1
         ORDER BY id DESC
         LIMIT $2",
    )
    .bind(before)
    .bind(limit)
    .fetch_all(pool)
    .await
}
