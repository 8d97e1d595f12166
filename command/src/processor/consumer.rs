//! The lane's consumer of the commands topics: a static group member whose
//! context records partition changes, so a session handles them between
//! its transactions.

use std::sync::Mutex;
use std::time::Duration;

use rdkafka::Message;
use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaResult;
use rdkafka::message::OwnedMessage;

use super::ProcessorConfig;

/// The lane's consumer, not yet subscribed.
///
/// A static member (KIP-345) named like the lane's producer: a lane
/// restarted after a crash rejoins as itself and is handed its partitions
/// at once, where a new member would wait for the dead one's session to
/// expire (10 s). A closing static member does not leave the group, so the
/// partitions of a lane stopped for good pass to the other instances only
/// once its session expires.
///
/// Its rebalances are eager (every member gives up all its partitions and
/// the leader hands them all out again, in one round), not cooperative.
/// A cooperative rebalance moves a partition in two rounds: the first takes
/// it from its owner, who then rejoins to start the second, which gives it
/// to its new owner. An owner killed in between never rejoins, and its
/// restarted self is handed the unfinished assignment as a static member,
/// without a rebalance, so the partition stayed with no owner until the
/// group next changed (seen in `command_processor`'s rebalance test on a
/// busy machine). Round robin spreads the partitions evenly over the lanes,
/// which are ordered by their names.
pub(super) fn create(config: &ProcessorConfig) -> KafkaResult<BaseConsumer<RebalanceLog>> {
    config
        .kafka
        .consumer(&config.group_id)
        .set("group.instance.id", &config.transactional_id)
        .set("partition.assignment.strategy", "roundrobin")
        .create_with_context(RebalanceLog {
            lane: config.transactional_id.clone(),
            changes: Mutex::default(),
        })
}

/// Waits briefly for one command, then takes what else is buffered, up to
/// `max`. Fails when the consumer cannot go on (another live member joined
/// under the lane's name, which fences this one).
pub(super) fn poll_batch(
    consumer: &BaseConsumer<RebalanceLog>,
    max: usize,
) -> KafkaResult<Vec<OwnedMessage>> {
    let mut batch = Vec::new();
    let mut timeout = Duration::from_millis(100);
    while batch.len() < max {
        match consumer.poll(timeout) {
            None => break,
            Some(Ok(message)) => {
                crate::bus::record_age("command_poll_age_seconds", message.timestamp());
                batch.push(message.detach())
            }
            Some(Err(e)) if consumer.client().fatal_error().is_some() => return Err(e),
            Some(Err(e)) => {
                tracing::warn!(error = %e, "polling commands failed");
                break;
            }
        }
        timeout = Duration::ZERO;
    }
    Ok(batch)
}

/// Partitions gained or lost in one rebalance.
pub(super) struct PartitionChange {
    pub assigned: bool,
    pub partitions: Vec<(String, i32)>,
}

/// Partition changes seen by the consumer, handled between transactions.
pub(super) struct RebalanceLog {
    lane: String,
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
        let partitions: Vec<(String, i32)> = list
            .elements()
            .iter()
            .map(|e| (e.topic().to_owned(), e.partition()))
            .collect();
        tracing::info!(lane = %self.lane, assigned, ?partitions, "partitions changed");
        let mut changes = self.changes.lock().unwrap_or_else(|p| p.into_inner());
        changes.push(PartitionChange {
            assigned,
            partitions,
        });
    }
}
