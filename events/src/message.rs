//! What every event payload and every rejection can do, so adapters (the
//! command processor, projectors, the saga, the replay tools) handle the four
//! aggregates with one generic code path.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::command::RejectionKind;
use crate::domain::{
    CatalogEvent, CatalogRejection, OrderEvent, OrderRejection, PaymentEvent, PaymentRejection,
    SagaEvent, SagaRejection, ShipmentEvent, ShipmentRejection,
};
use crate::envelope::EventMeta;
use crate::probe::ProbeEvent;

/// Why a record could not be read as an event.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("{event_type} has schema version {version}, newer than this build knows ({known})")]
    FromTheFuture {
        event_type: String,
        version: u16,
        known: u16,
    },
    #[error("no upcaster for {event_type} version {version}")]
    NoUpcaster { event_type: String, version: u16 },
    #[error("the payload of {event_type} is not valid: {source}")]
    Payload {
        event_type: String,
        source: serde_json::Error,
    },
    #[error("the payload is a {actual}, but the headers say {expected}")]
    TypeMismatch { expected: String, actual: String },
}

/// Why a value could not be written as JSON.
#[derive(Debug, thiserror::Error)]
#[error("{what} cannot be encoded as json: {source}")]
pub struct EncodeError {
    pub what: &'static str,
    #[source]
    pub source: serde_json::Error,
}

/// The JSON bytes of `value`: the one way to encode a record's payload, an
/// outbox row or a stored reply. Our message types are plain data with
/// string keys, so this fails only on a bug (a map with non-string keys, a
/// failing hand-written `Serialize`); the caller then refuses to publish or
/// store anything rather than write an empty record that every reader
/// would have to dead-letter.
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, EncodeError> {
    serde_json::to_vec(value).map_err(|source| EncodeError {
        what: std::any::type_name::<T>(),
        source,
    })
}

/// The JSON text of a value whose encoding cannot fail: plain data with
/// derived `Serialize` (or one writing a string, as `Currency` does) and no
/// map with non-string keys, such as a `serde_json::Value`, a command or an
/// event payload (the wire-format tests in `domain` encode every variant).
/// A failure is therefore a bug in the type, and this panics naming it,
/// where `to_vec(..).unwrap_or_default()` hashed, stored or published an
/// empty text as if it were the value. Whatever can fail goes through
/// [`encode`] and its error instead.
pub fn encode_plain<T: Serialize + ?Sized>(value: &T) -> String {
    cannot_fail::<T, _>(serde_json::to_string(value))
}

/// The JSON value of a value whose encoding cannot fail (see
/// [`encode_plain`], which this is the tree form of).
pub fn value_plain<T: Serialize + ?Sized>(value: &T) -> serde_json::Value {
    cannot_fail::<T, _>(serde_json::to_value(value))
}

/// The encoding of a `T`, or a panic naming `T` (see [`encode_plain`]).
fn cannot_fail<T: ?Sized, R>(encoded: Result<R, serde_json::Error>) -> R {
    encoded.unwrap_or_else(|source| {
        panic!(
            "{}",
            EncodeError {
                what: std::any::type_name::<T>(),
                source,
            }
        )
    })
}

/// An event payload type: one closed enum per aggregate.
pub trait EventPayload:
    Serialize + DeserializeOwned + Clone + std::fmt::Debug + Send + 'static
{
    /// The schema version this build writes.
    const SCHEMA_VERSION: u16;

    /// The variant name, which is also the CloudEvents `type`.
    fn event_type(&self) -> &'static str;

    /// Rewrites a payload of an older schema version one step up (from
    /// `version` to `version + 1`). Old events are upcast when read, never
    /// rewritten in the log. Only saga events have an older version.
    fn upcast_step(
        event_type: &str,
        version: u16,
        payload: serde_json::Value,
    ) -> Result<serde_json::Value, DecodeError> {
        let _ = payload;
        Err(DecodeError::NoUpcaster {
            event_type: event_type.to_owned(),
            version,
        })
    }

    /// Reads a payload written under `meta`, upcasting it to the current version.
    fn decode(meta: &EventMeta, payload: &[u8]) -> Result<Self, DecodeError> {
        let invalid = |source| DecodeError::Payload {
            event_type: meta.event_type.clone(),
            source,
        };
        let version = meta.schema_version;
        if version > Self::SCHEMA_VERSION {
            return Err(DecodeError::FromTheFuture {
                event_type: meta.event_type.clone(),
                version,
                known: Self::SCHEMA_VERSION,
            });
        }
        let event: Self = if version == Self::SCHEMA_VERSION {
            serde_json::from_slice(payload).map_err(invalid)?
        } else {
            let mut value: serde_json::Value = serde_json::from_slice(payload).map_err(invalid)?;
            for from in version..Self::SCHEMA_VERSION {
                value = Self::upcast_step(&meta.event_type, from, value)?;
            }
            serde_json::from_value(value).map_err(invalid)?
        };
        if event.event_type() != meta.event_type {
            return Err(DecodeError::TypeMismatch {
                expected: meta.event_type.clone(),
                actual: event.event_type().to_owned(),
            });
        }
        Ok(event)
    }
}

/// A domain rejection: why a command changed nothing.
pub trait Rejection: std::error::Error + Send + 'static {
    /// Stable snake_case code, the suffix of the problem+json `type`.
    fn code(&self) -> &'static str;
    fn kind(&self) -> RejectionKind;
}

macro_rules! event_payload {
    ($($event:ty),*) => {$(
        impl EventPayload for $event {
            const SCHEMA_VERSION: u16 = <$event>::SCHEMA_VERSION;
            fn event_type(&self) -> &'static str {
                <$event>::event_type(self)
            }
        }
    )*};
}

event_payload!(
    CatalogEvent,
    OrderEvent,
    PaymentEvent,
    ShipmentEvent,
    ProbeEvent
);

impl EventPayload for SagaEvent {
    const SCHEMA_VERSION: u16 = SagaEvent::SCHEMA_VERSION;

    fn event_type(&self) -> &'static str {
        SagaEvent::event_type(self)
    }

    /// Version 1 carried the saga's whole step history, which is a change
    /// from position 0: the payload reads as it is (`history_from` defaults to 0).
    fn upcast_step(
        event_type: &str,
        version: u16,
        payload: serde_json::Value,
    ) -> Result<serde_json::Value, DecodeError> {
        match version {
            1 => Ok(payload),
            _ => Err(DecodeError::NoUpcaster {
                event_type: event_type.to_owned(),
                version,
            }),
        }
    }
}

macro_rules! rejection {
    ($($rejection:ty),*) => {$(
        impl Rejection for $rejection {
            fn code(&self) -> &'static str {
                <$rejection>::code(self)
            }
            fn kind(&self) -> RejectionKind {
                if self.is_not_found() {
                    RejectionKind::NotFound
                } else if self.is_conflict() {
                    RejectionKind::Conflict
                } else {
                    RejectionKind::Invalid
                }
            }
        }
    )*};
}

rejection!(
    CatalogRejection,
    OrderRejection,
    PaymentRejection,
    ShipmentRejection,
    SagaRejection
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::{AggregateType, new_id};
    use serde::Deserialize;

    /// A payload whose version 1 named the field `qty`; version 2 says `quantity`.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(tag = "type")]
    enum Sample {
        Counted { quantity: u32 },
    }

    impl EventPayload for Sample {
        const SCHEMA_VERSION: u16 = 2;
        fn event_type(&self) -> &'static str {
            "Counted"
        }
        fn upcast_step(
            event_type: &str,
            version: u16,
            mut payload: serde_json::Value,
        ) -> Result<serde_json::Value, DecodeError> {
            match (event_type, version) {
                ("Counted", 1) => {
                    let qty = payload["qty"].take();
                    payload["quantity"] = qty;
                    Ok(payload)
                }
                _ => Err(DecodeError::NoUpcaster {
                    event_type: event_type.to_owned(),
                    version,
                }),
            }
        }
    }

    fn meta(version: u16) -> EventMeta {
        let id = new_id();
        EventMeta {
            event_id: id,
            event_type: "Counted".into(),
            schema_version: version,
            aggregate_type: AggregateType::Probe,
            aggregate_id: "x".into(),
            sequence: 1,
            occurred_at: chrono::Utc::now(),
            command_id: id,
            correlation_id: id,
            causation_id: id,
            traceparent: None,
        }
    }

    #[test]
    fn encoding_fails_loudly_and_names_the_type() {
        assert_eq!(super::encode(&[1, 2]).unwrap(), b"[1,2]");
        // JSON object keys must be strings: a map keyed by pairs cannot be written.
        let bad: std::collections::BTreeMap<(u8, u8), u8> = [((1, 2), 3)].into();
        let error = super::encode(&bad).unwrap_err();
        assert!(error.to_string().contains("BTreeMap"), "{error}");
    }

    #[test]
    fn old_versions_are_upcast_on_read() {
        let old = br#"{"type":"Counted","qty":3}"#;
        assert_eq!(
            Sample::decode(&meta(1), old).unwrap(),
            Sample::Counted { quantity: 3 }
        );
        let current = br#"{"type":"Counted","quantity":4}"#;
        assert_eq!(
            Sample::decode(&meta(2), current).unwrap(),
            Sample::Counted { quantity: 4 }
        );
    }

    #[test]
    fn newer_versions_and_garbage_are_refused() {
        let current = br#"{"type":"Counted","quantity":4}"#;
        assert!(matches!(
            Sample::decode(&meta(3), current),
            Err(DecodeError::FromTheFuture { .. })
        ));
        assert!(matches!(
            Sample::decode(&meta(0), current),
            Err(DecodeError::NoUpcaster { .. })
        ));
        assert!(matches!(
            Sample::decode(&meta(2), b"{"),
            Err(DecodeError::Payload { .. })
        ));
    }

    #[test]
    fn headers_and_payload_must_agree_on_the_type() {
        let mut m = meta(2);
        m.event_type = "Other".into();
        let current = br#"{"type":"Counted","quantity":4}"#;
        assert!(matches!(
            Sample::decode(&m, current),
            Err(DecodeError::TypeMismatch { .. })
        ));
    }

    #[test]
    fn a_saga_event_of_version_1_reads_as_its_whole_history_from_position_0() {
        let v1 = br#"{"type":"SagaStepStarted","progress":{"customer_id":"c-1",
            "status":"running","step":"capturing_payment","attempt":1,"deadline":null,
            "last_error":null,"history":[
              {"step":"reserving_stock","started_at":"2026-01-01T00:00:00Z","attempts":1,"outcome":"succeeded"},
              {"step":"capturing_payment","started_at":"2026-01-01T00:00:01Z","attempts":1,"outcome":null}]}}"#;
        let mut m = meta(1);
        m.event_type = "SagaStepStarted".into();
        let event = SagaEvent::decode(&m, v1).unwrap();
        let progress = event.progress();
        assert_eq!((progress.history_from, progress.history.len()), (0, 2));
        m.schema_version = 0;
        assert!(matches!(
            SagaEvent::decode(&m, v1),
            Err(DecodeError::NoUpcaster { .. })
        ));
    }
}
