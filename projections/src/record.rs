//! A consumed Kafka record, detached from the consumer so a batch can be
//! retried against PostgreSQL without fetching it again.

use chrono::{DateTime, Utc};
use events::EventMeta;
use events::kafka::{self, HeaderError};
use rdkafka::Message;
use rdkafka::message::{BorrowedMessage, OwnedHeaders};

#[derive(Debug, Clone)]
pub struct Record {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<String>,
    pub headers: Option<OwnedHeaders>,
    pub payload: Option<Vec<u8>>,
    /// When the broker appended the record.
    pub appended_at: Option<DateTime<Utc>>,
}

impl Record {
    pub fn from_message(message: &BorrowedMessage<'_>) -> Record {
        Record {
            topic: message.topic().to_owned(),
            partition: message.partition(),
            offset: message.offset(),
            key: message
                .key()
                .map(|k| String::from_utf8_lossy(k).into_owned()),
            headers: message.headers().map(|h| h.detach()),
            payload: message.payload().map(<[u8]>::to_vec),
            appended_at: message
                .timestamp()
                .to_millis()
                .and_then(DateTime::from_timestamp_millis),
        }
    }

    /// The envelope metadata from the record's CloudEvents headers.
    pub fn meta(&self) -> Result<EventMeta, HeaderError> {
        match &self.headers {
            Some(headers) => kafka::from_headers(headers),
            None => Err(HeaderError::Missing("ce_id")),
        }
    }
}
