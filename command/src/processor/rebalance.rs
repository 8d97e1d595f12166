//! The consumer context that records partition changes, so a session
//! handles them between its transactions.

use std::sync::Mutex;

use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, ConsumerContext, Rebalance};

/// Partitions gained or lost in one rebalance.
pub(super) struct PartitionChange {
    pub assigned: bool,
    pub partitions: Vec<(String, i32)>,
}

/// Partition changes seen by the consumer, handled between transactions.
#[derive(Default)]
pub(super) struct RebalanceLog {
    pub changes: Mutex<Vec<PartitionChange>>,
}

impl ClientContext for RebalanceLog {}

impl ConsumerContext for RebalanceLog {
    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        events::record::count_rebalance("command-processor", rebalance);
        let (assigned, list) = match rebalance {
            Rebalance::Assign(list) => (true, list),
            Rebalance::Revoke(list) => (false, list),
            Rebalance::Error(e) => {
                tracing::warn!(error = %e, "rebalance error");
                return;
            }
        };
        let partitions = list
            .elements()
            .iter()
            .map(|e| (e.topic().to_owned(), e.partition()))
            .collect();
        let mut changes = self.changes.lock().unwrap_or_else(|p| p.into_inner());
        changes.push(PartitionChange {
            assigned,
            partitions,
        });
    }
}
