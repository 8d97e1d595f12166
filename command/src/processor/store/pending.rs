//! Which aggregates' snapshots a transaction carries, and the checkpoint
//! they allow (`processor::snapshot` says why snapshots lag).

use super::{MAX_SNAPSHOT_BYTES, PartitionStore, StoreError};

/// Which pending aggregates a transaction snapshots.
#[derive(Debug, Clone, Copy)]
pub struct SnapshotPlan {
    /// At or before the first events offset this transaction writes.
    pub first_offset: i64,
    /// Aggregates pending since before this offset are written.
    pub due_before: i64,
    /// Most snapshot records in one transaction.
    pub most: usize,
}

impl SnapshotPlan {
    /// Every pending aggregate (tests, and a store with nothing to defer).
    pub fn all(first_offset: i64) -> SnapshotPlan {
        SnapshotPlan {
            first_offset,
            due_before: i64::MAX,
            most: usize::MAX,
        }
    }
}

impl PartitionStore {
    /// The snapshot records the open transaction carries (see
    /// [`SnapshotPlan`]): the aggregates it changed become pending from
    /// `plan.first_offset`, and those pending since before
    /// `plan.due_before` are written, at most `plan.most` of them.
    pub fn snapshots(&mut self, plan: SnapshotPlan) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        self.stage()?;
        for id in self.dirty.keys() {
            if !self.pending.contains_key(id) {
                self.pending.insert(id.clone(), plan.first_offset);
            }
        }
        let due: Vec<String> = self
            .pending
            .iter()
            .filter(|(_, since)| **since < plan.due_before)
            .map(|(id, _)| id.clone())
            .take(plan.most)
            .collect();
        let mut records = Vec::with_capacity(due.len());
        for id in due {
            let Some(state) = self.latest(&id)? else {
                self.pending.remove(&id);
                continue;
            };
            if self.fits(&id, &state) {
                self.pending.remove(&id);
                records.push((id, state));
            }
        }
        Ok(records)
    }

    /// An events offset before which the snapshots (including the ones the
    /// open transaction carries) cover every event, given the end of the
    /// events written before this transaction.
    pub fn covered_before(&self, end: i64) -> i64 {
        self.pending.values().copied().min().unwrap_or(end).min(end)
    }

    /// The latest state of an aggregate, encoded: this transaction's, or
    /// the committed one.
    fn latest(&self, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        if let Some((_, state)) = self.staged.iter().find(|(staged, _)| staged == id) {
            return Ok(Some(state.clone()));
        }
        if let Some(slot) = self.hot.peek(id) {
            return Ok(Some(slot.encode()?));
        }
        Ok(self.cold.slot(id)?)
    }

    /// True when the snapshots topic holds every aggregate's latest state.
    pub fn fully_snapshotted(&self) -> bool {
        self.pending.is_empty()
    }

    /// Whether a state is small enough to snapshot; remembers the ones that
    /// are not until they shrink.
    fn fits(&mut self, id: &str, state: &[u8]) -> bool {
        if state.len() <= MAX_SNAPSHOT_BYTES {
            self.oversized.remove(id);
            return true;
        }
        if !self.oversized.contains(id) {
            tracing::warn!(aggregate = %self.aggregate, id, bytes = state.len(), "state too large to snapshot; restores fold its events instead");
            self.oversized.insert(id.to_owned());
        }
        false
    }
}
