//! Filling a [`PartitionStore`] when its partition is assigned: from the
//! tables an earlier session on this host left ([`PartitionStore::reopen`])
//! and the logs' tails after them, or into empty tables from the
//! snapshots, the events after their checkpoint and the replies of the
//! deduplication window (`processor::restore` reads the topics).

use std::sync::Arc;

use events::command::Reply;
use events::{AggregateType, EventMeta};

use super::super::cold::{ColdStore, Resume, StateFile};
use super::super::decide::restore_into;
use super::super::txn::Delivered;
use super::{Limits, PartitionStore, Slot, StoreError};

/// Changes held in memory before they are written to disk during a restore.
const RESTORE_FLUSH_EVERY: usize = 10_000;

impl PartitionStore {
    /// The tables `name` as an earlier session on this host left them, when
    /// it finished restoring them; [`resume`](Self::resume) says where they
    /// end, so the caller reads the logs after that, or opens empty tables
    /// instead.
    pub fn reopen(
        aggregate: AggregateType,
        limits: Limits,
        file: &Arc<StateFile>,
        name: &str,
    ) -> Result<Option<PartitionStore>, StoreError> {
        let Some((cold, resume)) = ColdStore::reopen(file, name)? else {
            return Ok(None);
        };
        let mut store = PartitionStore::over(aggregate, limits, cold);
        store.checkpoint = resume.checkpoint;
        store.resumed = true;
        store.resume = Some(resume);
        Ok(Some(store))
    }

    /// Where the tables end in the logs, once known.
    pub fn resume(&self) -> Option<&Resume> {
        self.resume.as_ref()
    }

    /// Whether the tables came from an earlier session.
    pub fn resumed(&self) -> bool {
        self.resumed
    }

    /// One past the last reply the outcomes hold, when known.
    pub fn replies_end(&self) -> Option<i64> {
        self.resume.as_ref()?.replies_end
    }

    /// Loads one aggregate's snapshot (restore).
    pub fn restore_snapshot(&mut self, id: &str, state: &[u8]) -> Result<(), StoreError> {
        Slot::decode(self.aggregate, state).map_err(|error| StoreError::Corrupt {
            id: id.to_owned(),
            error,
        })?;
        self.staged.push((id.to_owned(), state.to_vec()));
        if self.staged.len() >= RESTORE_FLUSH_EVERY {
            self.commit()?;
        }
        Ok(())
    }

    /// Folds one committed event into its aggregate unless the aggregate's
    /// snapshot already covers it; answers whether it was folded (restore).
    pub fn restore_event(
        &mut self,
        offset: i64,
        meta: &EventMeta,
        payload: &[u8],
    ) -> Result<bool, StoreError> {
        self.restored_end = self.restored_end.max(Some(offset + 1));
        let id = meta.aggregate_id.as_str();
        let Some((mut slot, origin)) = self.take(id)? else {
            return Ok(false);
        };
        if meta.sequence <= slot.version() {
            self.put_back(id, slot, origin, false);
            // Resumed tables hold committed state, not snapshots: their
            // aggregates changed since the checkpoint may lack one.
            if self.resumed {
                self.pend(id);
            }
            return Ok(false);
        }
        let folded = match &mut slot {
            Slot::Catalog(v) => restore_into(v, meta, payload),
            Slot::Order(v) => restore_into(v, meta, payload),
            Slot::Payment(v) => restore_into(v, meta, payload),
            Slot::Shipment(v) => restore_into(v, meta, payload),
        };
        self.put_back(id, slot, origin, true);
        folded?;
        self.pend(id);
        if self.dirty.len() >= RESTORE_FLUSH_EVERY {
            self.commit()?;
        }
        Ok(true)
    }

    /// Remembers a committed reply, so a duplicate of its command is answered alike.
    pub fn restore_reply(&mut self, reply: Reply) -> Result<(), StoreError> {
        self.outcomes.insert(reply.command_id, reply);
        if self.outcomes.len() >= RESTORE_FLUSH_EVERY {
            self.commit()?;
        }
        Ok(())
    }

    /// The snapshots topic's checkpoint: events before this offset are
    /// covered by the snapshots.
    pub fn set_checkpoint(&mut self, events_offset: i64) {
        self.checkpoint = Some(events_offset);
    }

    pub fn checkpoint(&self) -> Option<i64> {
        self.checkpoint
    }

    /// Where this store's history ends as far as it knows without having
    /// written any: past the last event the restore read, else its
    /// checkpoint.
    pub fn restored_end(&self) -> i64 {
        self.restored_end.or(self.checkpoint).unwrap_or(0)
    }

    /// Ends a restore: from the next commit on, the tables record where
    /// they end (the events and replies read, the first record's identity).
    pub fn restored(&mut self, origin: Option<(i64, i64)>, replies_end: Option<i64>) {
        let previous = self.resume.as_ref();
        let events_end = previous
            .map(|r| r.events_end)
            .max(Some(self.restored_end()));
        let replies_end = previous.and_then(|r| r.replies_end).max(replies_end);
        self.resume = Some(Resume::new(
            origin,
            self.checkpoint,
            events_end.unwrap_or(0),
            replies_end,
        ));
    }

    /// Records where the partition's events and replies end after a
    /// transaction committed (its delivery reports), for the next commit.
    /// A partition that was empty when restored gets its first record here:
    /// this session's first event.
    pub fn advance(&mut self, events: Option<Delivered>, replies_end: Option<i64>) {
        let Some(resume) = &mut self.resume else {
            return;
        };
        if let Some(events) = events {
            if resume.origin.is_none() && resume.events_end == 0 {
                resume.origin = Some(events.first);
            }
            resume.events_end = resume.events_end.max(events.end);
        }
        resume.replies_end = resume.replies_end.max(replies_end);
    }

    /// Marks an aggregate changed at or after the checkpoint the restore
    /// started from as possibly lacking a snapshot.
    fn pend(&mut self, id: &str) {
        let since = self.checkpoint.unwrap_or(0);
        if !self.pending.contains_key(id) {
            self.pending.insert(id.to_owned(), since);
        }
    }
}
