//! Topics keep the partition count they were created with. A service whose
//! configured count differs (the default changed since the topics were
//! created, say) still hears every partition.

use events::KafkaConfig;
use events::command::Outcome;
use tests::TestEnv;
use tests::processor::{bus, create, envelope, send};

#[tokio::test]
async fn the_command_api_hears_replies_from_partitions_beyond_its_configured_count() {
    let env = TestEnv::new();
    let older = KafkaConfig {
        partitions: env.kafka.partitions * 2,
        ..env.kafka.clone()
    };
    older.ensure_topics(&older.all_topics()).await.unwrap();
    let snapshots = command::processor::snapshot::topics(&older);
    older.ensure_compacted_topics(&snapshots).await.unwrap();
    let _command = env.spawn_command().await;
    let bus = bus(&env).await;

    // Enough SKUs that their keys reach every one of the topics' partitions.
    for i in 0..16 {
        let reply = send(&bus, envelope(&format!("WIDE-{i}"), create(1))).await;
        assert!(
            matches!(reply.outcome, Outcome::Accepted { version: 1, .. }),
            "{reply:?}"
        );
    }
}
