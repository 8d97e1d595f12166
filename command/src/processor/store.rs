//! The processor's state of one partition: a bounded set of hot aggregates
//! in memory, every aggregate and the recent outcomes by command id in the
//! partition's [`ColdStore`] on disk, and what the open transaction changed.
//!
//! [`PartitionStore::handle`] is the heart of the write side: it checks for
//! duplicates and stale versions, lets the aggregate decide, stamps the
//! events with their envelope, and returns what to publish. Its changes stay
//! in memory (`dirty`) until the processor's Kafka transaction commits; only
//! then does [`PartitionStore::commit`] write them to disk. A command naming
//! an aggregate that does not exist leaves nothing behind unless it creates it.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use events::command::{CommandEnvelope, RejectionKind, Reply, codes};
use events::message::DecodeError;
use events::{AggregateType, EventMeta};
use hashlink::LruCache;
use uuid::Uuid;

use super::cold::{ColdError, ColdStore, ColdWrite, Resume, StateFile};
use super::decide::{decide_slot, recorded_version, rejected, visible_to_issuer};
pub use super::slot::{Slot, Versioned};

/// Largest snapshot record written. A larger state (a catalog item that
/// remembers every order it ever committed grows without bound) is not
/// snapshotted: the checkpoint then stays where it is and a restore folds
/// that aggregate's events after it, which is slower but exact, instead of
/// every transaction rewriting a large state or exceeding Kafka's limit.
pub const MAX_SNAPSHOT_BYTES: usize = 64 * 1024;

/// The key of the snapshots topic's checkpoint record, never an aggregate id.
pub const CHECKPOINT_KEY: &str = "";

/// A serialized event ready to publish.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub meta: EventMeta,
    pub payload: Vec<u8>,
}

/// What a command produced: the events to append (possibly none) and the reply.
#[derive(Debug, Clone)]
pub struct Decision {
    pub events: Vec<NewEvent>,
    pub reply: Reply,
}

/// How much a partition's state may hold.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// How long a command id is remembered for deduplication.
    pub dedup_window: Duration,
    /// Most command ids remembered.
    pub dedup_capacity: usize,
    /// Most aggregates kept in memory; the rest are read from disk on use.
    pub hot_aggregates: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("local state store: {0}")]
    Cold(#[from] ColdError),
    #[error("stored state of {id} cannot be read: {error}")]
    Corrupt {
        id: String,
        error: serde_json::Error,
    },
    #[error("event cannot be decoded: {0}")]
    Event(#[from] DecodeError),
    #[error(transparent)]
    Encode(#[from] events::message::EncodeError),
}

/// Where [`PartitionStore::take`] found a slot, so it can be put back there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    Dirty,
    Hot,
    Cold,
    New,
}

/// One partition's aggregates and recent outcomes.
#[derive(Debug)]
pub struct PartitionStore {
    aggregate: AggregateType,
    limits: Limits,
    /// Aggregates changed since the last commit, kept out of the LRU so
    /// they cannot be evicted before they reach the disk.
    dirty: HashMap<String, Slot>,
    /// Recently used committed aggregates (each also on disk).
    hot: LruCache<String, Slot>,
    /// Outcomes decided since the last commit.
    outcomes: HashMap<Uuid, Reply>,
    /// Encoded states of `dirty` (and of restored snapshots) to write.
    staged: Vec<(String, Vec<u8>)>,
    /// Aggregates whose latest committed state the snapshots topic may
    /// lack, each with an events offset at or before its first event that
    /// no snapshot covers; the checkpoint never passes the lowest of them.
    pending: HashMap<String, i64>,
    /// Aggregates whose state exceeds [`MAX_SNAPSHOT_BYTES`] (they stay
    /// pending, so they hold the checkpoint back).
    oversized: HashSet<String>,
    /// The events offset of the last checkpoint this store wrote or read.
    checkpoint: Option<i64>,
    /// One past the last events offset the restore read.
    restored_end: Option<i64>,
    /// Resumed from the tables an earlier session left (`restoring`).
    resumed: bool,
    /// Where the tables end, written with every commit; none while a
    /// restore from the log is filling empty tables.
    resume: Option<Resume>,
    cold: ColdStore,
}

impl PartitionStore {
    /// An empty store whose disk half is the tables `name` in the lane's
    /// state file (replaced if present).
    pub fn open(
        aggregate: AggregateType,
        limits: Limits,
        file: &Arc<StateFile>,
        name: &str,
    ) -> Result<PartitionStore, StoreError> {
        let cold = ColdStore::create(file, name)?;
        Ok(PartitionStore::over(aggregate, limits, cold))
    }

    fn over(aggregate: AggregateType, limits: Limits, cold: ColdStore) -> PartitionStore {
        PartitionStore {
            aggregate,
            limits,
            dirty: HashMap::new(),
            hot: LruCache::new(limits.hot_aggregates.max(1)),
            outcomes: HashMap::new(),
            staged: Vec::new(),
            pending: HashMap::new(),
            oversized: HashSet::new(),
            checkpoint: None,
            restored_end: None,
            resumed: false,
            resume: None,
            cold,
        }
    }

    /// Aggregates held in memory.
    pub fn in_memory(&self) -> usize {
        self.dirty.len() + self.hot.len()
    }

    /// Writes what changed since the last commit to disk: called once the
    /// Kafka transaction that published it has committed.
    pub fn commit(&mut self) -> Result<(), StoreError> {
        self.stage()?;
        let window =
            chrono::Duration::from_std(self.limits.dedup_window).unwrap_or(chrono::Duration::MAX);
        let horizon = Utc::now()
            .checked_sub_signed(window)
            .unwrap_or(DateTime::<Utc>::MIN_UTC);
        let outcomes = self
            .outcomes
            .drain()
            .map(|(id, reply)| {
                let at = reply.processed_at.timestamp_millis();
                Ok((id, at, events::message::encode(&reply)?))
            })
            .collect::<Result<_, StoreError>>()?;
        self.cold.write(ColdWrite {
            slots: std::mem::take(&mut self.staged),
            outcomes,
            expire_before_ms: horizon.timestamp_millis(),
            outcome_capacity: self.limits.dedup_capacity,
            resume: self.resume.clone().map(|mut resume| {
                resume.checkpoint = self.checkpoint;
                resume
            }),
        })?;
        // A change not yet pending (committed without `snapshots` being
        // asked) has all its unsnapshotted events after the checkpoint.
        let since = self.checkpoint.unwrap_or(0);
        for (id, slot) in self.dirty.drain() {
            if !self.pending.contains_key(&id) {
                self.pending.insert(id.clone(), since);
            }
            self.hot.insert(id, slot);
        }
        Ok(())
    }

    /// Encodes the changed aggregates once, for the snapshots and the disk.
    /// Called after the batch's last decision: a slot staged once is not
    /// encoded again before the commit.
    fn stage(&mut self) -> Result<(), StoreError> {
        let staged: HashSet<&str> = self.staged.iter().map(|(id, _)| id.as_str()).collect();
        let fresh: Vec<(String, Vec<u8>)> = self
            .dirty
            .iter()
            .filter(|(id, _)| !staged.contains(id.as_str()))
            .map(|(id, slot)| Ok((id.clone(), slot.encode()?)))
            .collect::<Result<_, StoreError>>()?;
        self.staged.extend(fresh);
        Ok(())
    }

    /// Takes an aggregate out of the store for a decision, from wherever it
    /// is; an unknown id gets a fresh slot that is not stored yet.
    fn take(&mut self, id: &str) -> Result<Option<(Slot, Origin)>, StoreError> {
        if let Some(slot) = self.dirty.remove(id) {
            return Ok(Some((slot, Origin::Dirty)));
        }
        if let Some(slot) = self.hot.remove(id) {
            return Ok(Some((slot, Origin::Hot)));
        }
        if let Some(state) = self.cold.slot(id)? {
            let slot =
                Slot::decode(self.aggregate, &state).map_err(|error| StoreError::Corrupt {
                    id: id.to_owned(),
                    error,
                })?;
            return Ok(slot.map(|slot| (slot, Origin::Cold)));
        }
        Ok(Slot::new(self.aggregate).map(|slot| (slot, Origin::New)))
    }

    /// Puts a taken aggregate back: among the changes if it changed (or had
    /// uncommitted changes already), among the hot ones if it exists,
    /// nowhere if the command named an aggregate that does not exist.
    fn put_back(&mut self, id: &str, slot: Slot, origin: Origin, changed: bool) {
        if changed || origin == Origin::Dirty {
            self.dirty.insert(id.to_owned(), slot);
        } else if origin != Origin::New {
            self.hot.insert(id.to_owned(), slot);
        }
    }

    fn recorded(&self, command_id: Uuid) -> Result<Option<Reply>, StoreError> {
        if let Some(reply) = self.outcomes.get(&command_id) {
            return Ok(Some(reply.clone()));
        }
        let Some(bytes) = self.cold.outcome(command_id)? else {
            return Ok(None);
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|error| StoreError::Corrupt {
                id: command_id.to_string(),
                error,
            })
    }

    /// Decides one command against the current state and applies the result
    /// to it. The caller publishes the decision in a Kafka transaction and,
    /// if that fails, throws this store away and restores it from the log.
    pub fn handle(
        &mut self,
        envelope: &CommandEnvelope,
        now: DateTime<Utc>,
    ) -> Result<Decision, StoreError> {
        let aggregate = self.aggregate;
        let reply = |outcome| Reply {
            command_id: envelope.command_id,
            aggregate_type: aggregate,
            aggregate_id: envelope.aggregate_id.clone(),
            fingerprint: envelope.fingerprint.clone(),
            outcome,
            processed_at: now,
            issued_by: Some(envelope.issued_by.clone()),
        };
        if let Some(recorded) = self.recorded(envelope.command_id)? {
            let reply = if recorded.fingerprint == envelope.fingerprint {
                recorded
            } else {
                let version = recorded_version(&recorded.outcome);
                reply(rejected(
                    RejectionKind::Invalid,
                    codes::IDEMPOTENCY_KEY_REUSED,
                    "the idempotency key was already used for a different request".into(),
                    version,
                ))
            };
            return Ok(Decision {
                events: Vec::new(),
                reply,
            });
        }
        let id = envelope.aggregate_id.as_str();
        let taken = match id {
            CHECKPOINT_KEY => None,
            _ => self.take(id)?,
        };
        let Some((mut slot, origin)) = taken else {
            let message = match id {
                CHECKPOINT_KEY => "the command names no aggregate id".to_owned(),
                _ => format!("{aggregate} takes no commands"),
            };
            let outcome = rejected(RejectionKind::Invalid, codes::MALFORMED_COMMAND, message, 0);
            return Ok(Decision {
                events: Vec::new(),
                reply: reply(outcome),
            });
        };
        let version = slot.version();
        let (events, outcome) = match envelope.expected_version {
            _ if !visible_to_issuer(&slot, envelope) => (
                Vec::new(),
                rejected(
                    RejectionKind::NotFound,
                    "not_found",
                    "order not found".into(),
                    0,
                ),
            ),
            Some(expected) if expected != version => (
                Vec::new(),
                rejected(
                    RejectionKind::Conflict,
                    codes::VERSION_CONFLICT,
                    format!("expected version {expected}, but the current version is {version}"),
                    version,
                ),
            ),
            _ => decide_slot(&mut slot, aggregate, envelope, now),
        };
        let changed = slot.version() != version;
        self.put_back(id, slot, origin, changed);
        let reply = reply(outcome);
        self.outcomes.insert(reply.command_id, reply.clone());
        Ok(Decision { events, reply })
    }
}

mod pending;
mod restoring;
#[cfg(test)]
mod tests;

pub use pending::SnapshotPlan;
