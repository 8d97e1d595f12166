//! A consumed Kafka record (defined in `events`, shared with the saga worker).

pub use events::record::Record;
