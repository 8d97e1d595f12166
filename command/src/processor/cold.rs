//! The on-disk half of a partition's state: every aggregate of the
//! partition and the deduplication outcomes of the window, in an embedded
//! key-value file (redb), so memory holds only the hot aggregates.
//!
//! The file is a cache, never the record: it is created empty when a lane is
//! assigned the partition, filled from the snapshots and the events topics,
//! written only with committed state, and deleted when the store is dropped
//! (a revoked partition or a failed session). Because of that it is never
//! synced to the disk: a crash loses nothing the log does not hold.

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};

use redb::backends::FileBackend;
use redb::{Database, ReadableTable, ReadableTableMetadata, StorageBackend, TableDefinition};
use uuid::Uuid;

const SLOTS: TableDefinition<&str, &[u8]> = TableDefinition::new("slots");
const OUTCOMES: TableDefinition<u128, &[u8]> = TableDefinition::new("outcomes");
/// Outcomes by the time they were decided (ms), oldest first, to expire them.
const EXPIRY: TableDefinition<(i64, u128), ()> = TableDefinition::new("outcome_expiry");

/// redb's page cache per file; the OS page cache does the rest.
const CACHE_BYTES: usize = 1 << 20;
/// Most expired outcomes removed per commit, so a commit stays short.
const EXPIRE_PER_COMMIT: usize = 10_000;

/// A failure of the local store (boxed: redb's error is large).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ColdError(Box<redb::Error>);

impl<E: Into<redb::Error>> From<E> for ColdError {
    fn from(error: E) -> ColdError {
        ColdError(Box::new(error.into()))
    }
}

/// One partition's cold state.
pub struct ColdStore {
    db: Database,
    path: PathBuf,
}

impl std::fmt::Debug for ColdStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ColdStore")
            .field("path", &self.path)
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

impl ColdStore {
    /// Creates an empty store at `path`, replacing whatever was there.
    pub fn create(path: &Path) -> Result<ColdStore, ColdError> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
            .map_err(redb::Error::Io)?;
        let backend = Unsynced(FileBackend::new(file)?);
        let db = Database::builder()
            .set_cache_size(CACHE_BYTES)
            .create_with_backend(backend)?;
        let txn = db.begin_write()?;
        txn.open_table(SLOTS)?;
        txn.open_table(OUTCOMES)?;
        txn.open_table(EXPIRY)?;
        txn.commit()?;
        Ok(ColdStore {
            db,
            path: path.to_owned(),
        })
    }

    /// The stored state of one aggregate, as JSON.
    pub fn slot(&self, id: &str) -> Result<Option<Vec<u8>>, ColdError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(SLOTS)?;
        Ok(table.get(id)?.map(|v| v.value().to_vec()))
    }

    /// The recorded reply of a command, as JSON.
    pub fn outcome(&self, command_id: Uuid) -> Result<Option<Vec<u8>>, ColdError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(OUTCOMES)?;
        Ok(table.get(command_id.as_u128())?.map(|v| v.value().to_vec()))
    }

    /// Writes committed state in one transaction and expires old outcomes.
    pub fn write(&self, write: ColdWrite) -> Result<(), ColdError> {
        let txn = self.db.begin_write()?;
        {
            let mut slots = txn.open_table(SLOTS)?;
            for (id, state) in &write.slots {
                slots.insert(id.as_str(), state.as_slice())?;
            }
            let mut outcomes = txn.open_table(OUTCOMES)?;
            let mut expiry = txn.open_table(EXPIRY)?;
            for (id, at, reply) in &write.outcomes {
                if outcomes.insert(id.as_u128(), reply.as_slice())?.is_none() {
                    expiry.insert((*at, id.as_u128()), ())?;
                }
            }
            let over = (expiry.len()? as usize).saturating_sub(write.outcome_capacity);
            let mut expired = Vec::new();
            for entry in expiry.iter()?.take(EXPIRE_PER_COMMIT) {
                let (at, id) = entry?.0.value();
                if at >= write.expire_before_ms && expired.len() >= over {
                    break;
                }
                expired.push((at, id));
            }
            for (at, id) in expired {
                expiry.remove((at, id))?;
                outcomes.remove(id)?;
            }
        }
        txn.commit()?;
        Ok(())
    }
}

impl Drop for ColdStore {
    fn drop(&mut self) {
        drop(std::fs::remove_file(&self.path));
    }
}

/// A file backend that never syncs: the store is rebuilt from the log
/// whenever it could have been lost, so durability would only cost time.
#[derive(Debug)]
struct Unsynced(FileBackend);

impl StorageBackend for Unsynced {
    fn len(&self) -> Result<u64, std::io::Error> {
        self.0.len()
    }

    fn read(&self, offset: u64, len: usize) -> Result<Vec<u8>, std::io::Error> {
        self.0.read(offset, len)
    }

    fn set_len(&self, len: u64) -> Result<(), std::io::Error> {
        self.0.set_len(len)
    }

    fn sync_data(&self, _eventual: bool) -> Result<(), std::io::Error> {
        Ok(())
    }

    fn write(&self, offset: u64, data: &[u8]) -> Result<(), std::io::Error> {
        self.0.write(offset, data)
    }
}
