//! The on-disk half of a partition's state: every aggregate of the
//! partition and the deduplication outcomes of the window, in an embedded
//! log-structured key-value store (fjall), so memory holds only the hot
//! aggregates.
//!
//! Each lane has one [`StateFile`]: a keyspace with one table (one
//! memtable, one block cache, one flush and one compaction thread), in
//! which each of the lane's partitions keeps its keys under a prefix of its
//! own. The store is a cache, never the record: it is created empty when a
//! lane's session starts and deleted when the session ends; a partition's
//! keys start empty on assignment (a new prefix), are filled from the
//! snapshots and the events topics, written only with committed state, and
//! removed on revocation. Because of that its journal is never synced to
//! the disk: a crash loses nothing the log does not hold.
//!
//! Why a log-structured store: every command leaves an outcome keyed by its
//! random id. In a B-tree (redb, before) each such insert copied and
//! rewrote a 4 KiB leaf of a tree far larger than its page cache, which
//! made the write after each Kafka commit a third of a lane's cycle; here an
//! insert is an append to a memtable, merged into sorted files in the
//! background.

use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use fjall::compaction::{Leveled, Strategy as CompactionStrategy};
use fjall::{Config, Keyspace, PartitionCreateOptions, PartitionHandle};
use uuid::Uuid;

/// The block cache per lane; the OS page cache does the rest.
const CACHE_BYTES: u64 = 2 << 20;
/// The lane's memtable, before it is flushed to a sorted file. One table
/// per lane rather than per partition: each memtable costs about twice
/// what it counts, and smaller ones (256 KiB) left so many sorted files
/// waiting to be merged that fjall stalled the writes.
const MEMTABLE_BYTES: u32 = 2 << 20;
/// fjall stalls a write for 100 ms once 90 % of this many bytes of
/// memtables are held (and for 500 ms at 90 % of the journal), so both sit
/// far above what the flushes of the memtable let gather: the memtable
/// bounds the memory, these only guard against a flush that cannot keep up.
const WRITE_BUFFER_BYTES: u64 = 64 << 20;
const JOURNAL_BYTES: u64 = 256 << 20;
/// Sorted files written by compaction: a compaction holds a file's key
/// hashes in memory while it writes the file, so smaller files bound that.
const FILE_BYTES: u32 = 8 << 20;
/// Most expired outcomes removed per commit, so a commit stays short.
const EXPIRE_PER_COMMIT: usize = 10_000;

/// A failure of the local store (boxed: fjall's error is large).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ColdError(Box<fjall::Error>);

impl<E: Into<fjall::Error>> From<E> for ColdError {
    fn from(error: E) -> ColdError {
        ColdError(Box::new(error.into()))
    }
}

/// A lane's state store, deleted when the last of its partitions' stores
/// is dropped.
pub struct StateFile {
    keyspace: Keyspace,
    table: PartitionHandle,
    path: PathBuf,
    /// Stores opened so far: each opening's keys get a prefix of their own.
    opened: AtomicU64,
}

impl StateFile {
    /// Creates an empty store in the folder `path`, replacing whatever was
    /// there.
    pub fn create(path: &Path) -> Result<Arc<StateFile>, ColdError> {
        match std::fs::remove_dir_all(path) {
            Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
                return Err(fjall::Error::Io(error).into());
            }
            _ => {}
        }
        let keyspace = Config::new(path)
            .cache_size(CACHE_BYTES)
            .max_write_buffer_size(WRITE_BUFFER_BYTES)
            .max_journaling_size(JOURNAL_BYTES)
            .manual_journal_persist(true)
            .fsync_ms(None)
            .flush_workers(1)
            .compaction_workers(1)
            .temporary(true)
            .open()?;
        let options = PartitionCreateOptions::default()
            .manual_journal_persist(true)
            .max_memtable_size(MEMTABLE_BYTES)
            .compaction_strategy(CompactionStrategy::Leveled(Leveled {
                target_size: FILE_BYTES,
                ..Leveled::default()
            }));
        let table = keyspace.open_partition("state", options)?;
        Ok(Arc::new(StateFile {
            keyspace,
            table,
            path: path.to_owned(),
            opened: AtomicU64::new(0),
        }))
    }
}

/// One partition's cold state: its keys in the lane's table, each the
/// store's prefix, then the kind of key, then the key itself.
pub struct ColdStore {
    file: Arc<StateFile>,
    name: String,
    prefix: [u8; 8],
    /// Outcomes held (a count in memory: the store's own is a scan).
    remembered: usize,
    /// The newest expiry key removed: the scan for the next ones starts
    /// after it, not over the removals not yet compacted away.
    expired_through: Option<[u8; EXPIRY_KEY_BYTES]>,
}

impl std::fmt::Debug for ColdStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ColdStore")
            .field("path", &self.file.path)
            .field("name", &self.name)
            .finish()
    }
}

/// What one commit writes.
#[derive(Default)]
pub struct ColdWrite {
    pub slots: Vec<(String, Vec<u8>)>,
    /// Command id, decided at (ms), the reply as JSON.
    pub outcomes: Vec<(Uuid, i64, Vec<u8>)>,
    /// Outcomes decided before this (ms) are forgotten.
    pub expire_before_ms: i64,
    /// Most outcomes kept; the oldest go first.
    pub outcome_capacity: usize,
}

/// An aggregate's state, by its id.
const SLOT: u8 = b's';
/// A command's reply, by its id.
const OUTCOME: u8 = b'o';
/// An outcome by the time it was decided (ms, ordered as bytes) then its
/// command id, oldest first, to expire them.
const EXPIRY: u8 = b'e';
const EXPIRY_KEY_BYTES: usize = 8 + 1 + 8 + 16;
/// Where the time and the command id start in an expiry key.
const EXPIRY_AT: usize = 9;
const EXPIRY_ID: usize = 17;

fn expiry_at(key: &[u8]) -> i64 {
    let at: [u8; 8] = key[EXPIRY_AT..EXPIRY_ID].try_into().unwrap_or_default();
    (u64::from_be_bytes(at) ^ (1 << 63)) as i64
}

impl ColdStore {
    /// An empty store for the partition `name` (e.g. `orders-3`) in the
    /// lane's table.
    pub fn create(file: &Arc<StateFile>, name: &str) -> Result<ColdStore, ColdError> {
        let opening = file.opened.fetch_add(1, Ordering::Relaxed);
        Ok(ColdStore {
            file: file.clone(),
            name: name.to_owned(),
            prefix: opening.to_be_bytes(),
            remembered: 0,
            expired_through: None,
        })
    }

    fn key(&self, kind: u8, parts: &[&[u8]]) -> Vec<u8> {
        let len = parts.iter().map(|part| part.len()).sum::<usize>();
        let mut key = Vec::with_capacity(self.prefix.len() + 1 + len);
        key.extend_from_slice(&self.prefix);
        key.push(kind);
        for part in parts {
            key.extend_from_slice(part);
        }
        key
    }

    fn outcome_key(&self, command_id: &[u8]) -> Vec<u8> {
        self.key(OUTCOME, &[command_id])
    }

    fn expiry_key(&self, at_ms: i64, command_id: Uuid) -> Vec<u8> {
        let at = ((at_ms as u64) ^ (1 << 63)).to_be_bytes();
        self.key(EXPIRY, &[&at, command_id.as_bytes()])
    }

    /// The stored state of one aggregate, as JSON.
    pub fn slot(&self, id: &str) -> Result<Option<Vec<u8>>, ColdError> {
        let key = self.key(SLOT, &[id.as_bytes()]);
        Ok(self.file.table.get(key)?.map(|v| v.to_vec()))
    }

    /// The recorded reply of a command, as JSON.
    pub fn outcome(&self, command_id: Uuid) -> Result<Option<Vec<u8>>, ColdError> {
        let key = self.outcome_key(command_id.as_bytes());
        Ok(self.file.table.get(key)?.map(|v| v.to_vec()))
    }

    /// Writes committed state in one batch, then expires old outcomes.
    pub fn write(&mut self, write: ColdWrite) -> Result<(), ColdError> {
        let table = &self.file.table;
        let mut batch = self.file.keyspace.batch();
        for (id, state) in write.slots {
            batch.insert(table, self.key(SLOT, &[id.as_bytes()]), state);
        }
        for (id, at, reply) in write.outcomes {
            let key = self.outcome_key(id.as_bytes());
            if !table.contains_key(&key)? {
                let expiry = self.expiry_key(at, id);
                if self
                    .expired_through
                    .is_some_and(|through| expiry.as_slice() < through.as_slice())
                {
                    // Older than what was expired (a restored reply from a
                    // clock behind this one's): the next scan starts over.
                    self.expired_through = None;
                }
                batch.insert(table, expiry, []);
                self.remembered += 1;
            }
            batch.insert(table, key, reply);
        }
        batch.commit()?;
        self.expire(write.expire_before_ms, write.outcome_capacity)
    }

    /// Forgets the outcomes decided before `before_ms` and the oldest past
    /// `capacity`.
    fn expire(&mut self, before_ms: i64, capacity: usize) -> Result<(), ColdError> {
        let over = self.remembered.saturating_sub(capacity);
        let from = match self.expired_through {
            Some(key) => Bound::Excluded(key.to_vec()),
            None => Bound::Included(self.key(EXPIRY, &[])),
        };
        let until = Bound::Excluded(self.key(EXPIRY + 1, &[]));
        let mut expired = Vec::new();
        for entry in self.file.table.range((from, until)).take(EXPIRE_PER_COMMIT) {
            let (key, _) = entry?;
            if expiry_at(&key) >= before_ms && expired.len() >= over {
                break;
            }
            expired.push(key);
        }
        let Some(last) = expired.last() else {
            return Ok(());
        };
        self.expired_through = last.as_ref().try_into().ok();
        let mut batch = self.file.keyspace.batch();
        for key in &expired {
            batch.remove(&self.file.table, self.outcome_key(&key[EXPIRY_ID..]));
            batch.remove(&self.file.table, key.as_ref());
        }
        batch.commit()?;
        self.remembered -= expired.len();
        Ok(())
    }

    /// Removes every key of this store, a batch at a time (the scan reads
    /// the table as it was when it started).
    fn clear(&self) -> Result<(), ColdError> {
        let mut batch = self.file.keyspace.batch();
        for entry in self.file.table.prefix(self.prefix) {
            batch.remove(&self.file.table, entry?.0);
            if batch.len() >= EXPIRE_PER_COMMIT {
                std::mem::replace(&mut batch, self.file.keyspace.batch()).commit()?;
            }
        }
        Ok(batch.commit()?)
    }
}

impl Drop for ColdStore {
    /// A revoked partition's keys go (no one reads them again: a new
    /// assignment opens a new prefix); in a failed session the whole store
    /// goes anyway, so an error here only costs disk space until then.
    fn drop(&mut self) {
        if let Err(error) = self.clear() {
            tracing::warn!(%error, table = %self.name, "dropping a partition's local state failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dropped_store_leaves_no_key_and_a_new_one_starts_empty() {
        let path = std::env::temp_dir().join(format!("cold-test-{}", Uuid::new_v4()));
        let file = StateFile::create(&path).unwrap();
        let mut first = ColdStore::create(&file, "orders-0").unwrap();
        let command = Uuid::new_v4();
        first
            .write(ColdWrite {
                slots: vec![("order-1".into(), b"{}".to_vec())],
                outcomes: vec![(command, 0, b"{}".to_vec())],
                expire_before_ms: i64::MIN,
                outcome_capacity: 10,
            })
            .unwrap();
        assert!(first.slot("order-1").unwrap().is_some());
        let second = ColdStore::create(&file, "orders-0").unwrap();
        assert!(second.slot("order-1").unwrap().is_none());
        assert!(second.outcome(command).unwrap().is_none());
        drop(first);
        assert!(file.table.is_empty().unwrap());
        drop(second);
        drop(file);
        assert!(!path.exists(), "the lane's store goes with its last user");
    }
}
