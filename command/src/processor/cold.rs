//! The on-disk half of a partition's state: every aggregate of the
//! partition and the deduplication outcomes of the window, in an embedded
//! key-value file (redb), so memory holds only the hot aggregates.
//!
//! Each lane has one [`StateFile`] (a redb database costs about a megabyte
//! of memory whatever it holds, so not one per partition), and each of its
//! partitions three tables in it. The file is a cache, never the record: it
//! is created empty when a lane's session starts and deleted when the
//! session ends; a partition's tables are created empty on assignment,
//! filled from the snapshots and the events topics, written only with
//! committed state, and dropped on revocation. Because of that it is never
//! synced to the disk: a crash loses nothing the log does not hold.

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use redb::backends::FileBackend;
use redb::{Database, ReadableTable, ReadableTableMetadata, StorageBackend, TableDefinition};
use uuid::Uuid;

type Slots<'a> = TableDefinition<'a, &'static str, &'static [u8]>;
type Outcomes<'a> = TableDefinition<'a, u128, &'static [u8]>;
/// Outcomes by the time they were decided (ms), oldest first, to expire them.
type Expiry<'a> = TableDefinition<'a, (i64, u128), ()>;

/// redb's page cache per lane; the OS page cache does the rest.
const CACHE_BYTES: usize = 4 << 20;
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

/// A lane's state file, deleted when the last of its stores is dropped.
pub struct StateFile {
    db: Database,
    path: PathBuf,
}

impl StateFile {
    /// Creates an empty file at `path`, replacing whatever was there.
    pub fn create(path: &Path) -> Result<Arc<StateFile>, ColdError> {
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
        Ok(Arc::new(StateFile {
            db,
            path: path.to_owned(),
        }))
    }

    /// The lane's folder, which holds the file.
    pub fn dir(&self) -> &Path {
        self.path.parent().unwrap_or(Path::new("."))
    }
}

impl Drop for StateFile {
    fn drop(&mut self) {
        drop(std::fs::remove_file(&self.path));
    }
}

/// One partition's cold state: its tables in the lane's file.
pub struct ColdStore {
    file: Arc<StateFile>,
    slots: String,
    outcomes: String,
    expiry: String,
}

impl std::fmt::Debug for ColdStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ColdStore")
            .field("path", &self.file.path)
            .field("slots", &self.slots)
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
    /// Empty tables named after `name` (e.g. `orders-3`) in the lane's file.
    pub fn create(file: &Arc<StateFile>, name: &str) -> Result<ColdStore, ColdError> {
        let store = ColdStore {
            file: file.clone(),
            slots: format!("{name}/slots"),
            outcomes: format!("{name}/outcomes"),
            expiry: format!("{name}/outcome_expiry"),
        };
        store.drop_tables()?;
        let txn = store.file.db.begin_write()?;
        txn.open_table(store.slots_table())?;
        txn.open_table(store.outcomes_table())?;
        txn.open_table(store.expiry_table())?;
        txn.commit()?;
        Ok(store)
    }

    fn slots_table(&self) -> Slots<'_> {
        TableDefinition::new(&self.slots)
    }

    fn outcomes_table(&self) -> Outcomes<'_> {
        TableDefinition::new(&self.outcomes)
    }

    fn expiry_table(&self) -> Expiry<'_> {
        TableDefinition::new(&self.expiry)
    }

    fn drop_tables(&self) -> Result<(), ColdError> {
        let txn = self.file.db.begin_write()?;
        txn.delete_table(self.slots_table())?;
        txn.delete_table(self.outcomes_table())?;
        txn.delete_table(self.expiry_table())?;
        txn.commit()?;
        Ok(())
    }

    /// The stored state of one aggregate, as JSON.
    pub fn slot(&self, id: &str) -> Result<Option<Vec<u8>>, ColdError> {
        let txn = self.file.db.begin_read()?;
        let table = txn.open_table(self.slots_table())?;
        Ok(table.get(id)?.map(|v| v.value().to_vec()))
    }

    /// The recorded reply of a command, as JSON.
    pub fn outcome(&self, command_id: Uuid) -> Result<Option<Vec<u8>>, ColdError> {
        let txn = self.file.db.begin_read()?;
        let table = txn.open_table(self.outcomes_table())?;
        Ok(table.get(command_id.as_u128())?.map(|v| v.value().to_vec()))
    }

    /// Writes committed state in one transaction and expires old outcomes.
    pub fn write(&self, write: ColdWrite) -> Result<(), ColdError> {
        let txn = self.file.db.begin_write()?;
        {
            let mut slots = txn.open_table(self.slots_table())?;
            for (id, state) in &write.slots {
                slots.insert(id.as_str(), state.as_slice())?;
            }
            let mut outcomes = txn.open_table(self.outcomes_table())?;
            let mut expiry = txn.open_table(self.expiry_table())?;
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
    /// A revoked partition's tables go; in a failed session the whole file
    /// goes anyway, so an error here only costs disk space until then.
    fn drop(&mut self) {
        if let Err(error) = self.drop_tables() {
            tracing::warn!(%error, table = %self.slots, "dropping a partition's local state failed");
        }
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
