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

#[test]
fn only_events_are_kept_forever() {
    let config = KafkaConfig::new("127.0.0.1:1");
    assert_eq!(
        retention_ms(&config.events_topic(AggregateType::Order)),
        "-1"
    );
    assert_eq!(
        retention_ms(&config.events_topic(AggregateType::Saga)),
        "-1"
    );
    assert_eq!(
        retention_ms(&config.commands_topic(AggregateType::Order)),
        "604800000"
    );
    assert_eq!(
        retention_ms(&config.replies_topic(AggregateType::Saga)),
        "604800000"
    );
}

#[test]
fn topics_carry_the_prefix() {
    let config = KafkaConfig {
        topic_prefix: "t1.".into(),
        ..KafkaConfig::new("127.0.0.1:1")
    };
    assert_eq!(
        config.events_topic(AggregateType::Order),
        "t1.orders.events"
    );
    assert_eq!(
        config.commands_topic(AggregateType::CatalogItem),
        "t1.catalog.commands"
    );
}
