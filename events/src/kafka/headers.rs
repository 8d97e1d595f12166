//! The CloudEvents headers (Kafka protocol binding, binary mode) that carry
//! an [`EventMeta`] beside the JSON payload, so off-the-shelf consumers can
//! read the topics.

use chrono::{DateTime, Utc};
use rdkafka::message::{Header, Headers, OwnedHeaders};
use uuid::Uuid;

use crate::envelope::{AggregateType, EventMeta};

const CE_SPECVERSION: &str = "ce_specversion";
const CE_ID: &str = "ce_id";
const CE_SOURCE: &str = "ce_source";
const CE_TYPE: &str = "ce_type";
const CE_SUBJECT: &str = "ce_subject";
const CE_TIME: &str = "ce_time";
const CE_SCHEMAVERSION: &str = "ce_schemaversion";
const CE_SEQUENCE: &str = "ce_sequence";
const CE_COMMANDID: &str = "ce_commandid";
const CE_CORRELATIONID: &str = "ce_correlationid";
const CE_CAUSATIONID: &str = "ce_causationid";
const CE_TRACEPARENT: &str = "ce_traceparent";
const CONTENT_TYPE: &str = "content-type";

/// Why a record's headers are not a valid envelope.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    #[error("header {0} is missing")]
    Missing(&'static str),
    #[error("header {0} is not valid")]
    Invalid(&'static str),
}

/// The CloudEvents (Kafka protocol binding, binary mode) headers of an event.
pub fn to_headers(meta: &EventMeta) -> OwnedHeaders {
    let source = format!("/commerce/{}", meta.aggregate_type);
    let fields: [(&str, String); 11] = [
        (CE_SPECVERSION, "1.0".to_owned()),
        (CE_ID, meta.event_id.to_string()),
        (CE_SOURCE, source),
        (CE_TYPE, meta.event_type.clone()),
        (CE_SUBJECT, meta.aggregate_id.clone()),
        (CE_TIME, meta.occurred_at.to_rfc3339()),
        (CE_SCHEMAVERSION, meta.schema_version.to_string()),
        (CE_SEQUENCE, meta.sequence.to_string()),
        (CE_COMMANDID, meta.command_id.to_string()),
        (CE_CORRELATIONID, meta.correlation_id.to_string()),
        (CE_CAUSATIONID, meta.causation_id.to_string()),
    ];
    let mut headers = OwnedHeaders::new_with_capacity(fields.len() + 2);
    for (key, value) in &fields {
        headers = headers.insert(Header {
            key,
            value: Some(value.as_bytes()),
        });
    }
    if let Some(traceparent) = &meta.traceparent {
        headers = headers.insert(Header {
            key: CE_TRACEPARENT,
            value: Some(traceparent.as_bytes()),
        });
    }
    headers = headers.insert(Header {
        key: CONTENT_TYPE,
        value: Some("application/json".as_bytes()),
    });
    // The W3C names too, which tracing tools look for on any record.
    crate::telemetry::kafka_headers(headers, meta.traceparent.as_deref())
}

/// The headers [`from_headers`] reads, in the order of [`Found`]'s slots.
const READ: [&str; 11] = [
    CE_ID,
    CE_SOURCE,
    CE_TYPE,
    CE_SUBJECT,
    CE_TIME,
    CE_SCHEMAVERSION,
    CE_SEQUENCE,
    CE_COMMANDID,
    CE_CORRELATIONID,
    CE_CAUSATIONID,
    CE_TRACEPARENT,
];

/// The value of each header of [`READ`], from its first occurrence (`None`
/// inside: present without a value).
struct Found<'h>([Option<Option<&'h [u8]>>; READ.len()]);

impl<'h> Found<'h> {
    /// One pass over the headers (a record carries about fifteen, and
    /// looking each name up on its own walked them eleven times).
    fn of<H: Headers>(headers: &'h H) -> Found<'h> {
        let mut found = Found([None; READ.len()]);
        for header in headers.iter() {
            if let Some(slot) = READ.iter().position(|name| *name == header.key) {
                found.0[slot].get_or_insert(header.value);
            }
        }
        found
    }

    fn get(&self, name: &'static str) -> Result<&'h str, HeaderError> {
        let slot = READ.iter().position(|n| *n == name);
        slot.and_then(|slot| self.0[slot].flatten())
            .ok_or(HeaderError::Missing(name))
            .and_then(|v| std::str::from_utf8(v).map_err(|_| HeaderError::Invalid(name)))
    }
}

/// Reads an [`EventMeta`] back from a record's headers.
pub fn from_headers<H: Headers>(headers: &H) -> Result<EventMeta, HeaderError> {
    let found = Found::of(headers);
    let get = |name: &'static str| found.get(name);
    fn parse<T: std::str::FromStr>(name: &'static str, value: &str) -> Result<T, HeaderError> {
        value.parse().map_err(|_| HeaderError::Invalid(name))
    }
    let source = get(CE_SOURCE)?;
    let aggregate_type = source
        .strip_prefix("/commerce/")
        .and_then(AggregateType::parse)
        .ok_or(HeaderError::Invalid(CE_SOURCE))?;
    let traceparent = match get(CE_TRACEPARENT) {
        Ok(value) => Some(value.to_owned()),
        Err(HeaderError::Missing(_)) => None,
        Err(e) => return Err(e),
    };
    Ok(EventMeta {
        event_id: parse::<Uuid>(CE_ID, get(CE_ID)?)?,
        event_type: get(CE_TYPE)?.to_owned(),
        schema_version: parse(CE_SCHEMAVERSION, get(CE_SCHEMAVERSION)?)?,
        aggregate_type,
        aggregate_id: get(CE_SUBJECT)?.to_owned(),
        sequence: parse(CE_SEQUENCE, get(CE_SEQUENCE)?)?,
        occurred_at: DateTime::parse_from_rfc3339(get(CE_TIME)?)
            .map_err(|_| HeaderError::Invalid(CE_TIME))?
            .with_timezone(&Utc),
        command_id: parse(CE_COMMANDID, get(CE_COMMANDID)?)?,
        correlation_id: parse(CE_CORRELATIONID, get(CE_CORRELATIONID)?)?,
        causation_id: parse(CE_CAUSATIONID, get(CE_CAUSATIONID)?)?,
        traceparent,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::new_id;

    fn meta() -> EventMeta {
        EventMeta {
            event_id: new_id(),
            event_type: "OrderPlaced".into(),
            schema_version: 1,
            aggregate_type: AggregateType::Order,
            aggregate_id: "0193-order".into(),
            sequence: 7,
            occurred_at: DateTime::parse_from_rfc3339("2026-11-22T10:00:00.123Z")
                .unwrap()
                .with_timezone(&Utc),
            command_id: new_id(),
            correlation_id: new_id(),
            causation_id: new_id(),
            traceparent: Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into()),
        }
    }

    #[test]
    fn headers_round_trip() {
        let meta = meta();
        assert_eq!(from_headers(&to_headers(&meta)), Ok(meta));
    }

    #[test]
    fn an_envelope_reads_back_from_copied_headers() {
        let meta = meta();
        let copied = crate::record::CopiedHeaders::of(&to_headers(&meta));
        assert_eq!(from_headers(&copied), Ok(meta));
    }

    #[test]
    fn traceparent_is_optional() {
        let meta = EventMeta {
            traceparent: None,
            ..meta()
        };
        assert_eq!(from_headers(&to_headers(&meta)), Ok(meta));
    }

    #[test]
    fn missing_and_invalid_headers_are_named() {
        let headers = OwnedHeaders::new().insert(Header {
            key: CE_SOURCE,
            value: Some("/commerce/orders".as_bytes()),
        });
        assert_eq!(from_headers(&headers), Err(HeaderError::Missing(CE_ID)));
        let headers = OwnedHeaders::new().insert(Header {
            key: CE_SOURCE,
            value: Some("/elsewhere".as_bytes()),
        });
        assert_eq!(from_headers(&headers), Err(HeaderError::Invalid(CE_SOURCE)));
    }
}
