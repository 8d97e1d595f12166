use super::*;

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
