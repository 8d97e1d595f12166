//! The on-disk half of a partition's state: every aggregate of the
//! partition and the deduplication outcomes of the window, in an embedded
//! key-value file (redb) of its own, so memory holds only the hot
//! aggregates.
//!
//! Outcomes are kept in decision order and found by command id through an
//! index in memory ([`index`], which says why).
//!
//! The files of an instance's partitions share a folder, whichever lane
//! holds them: every rebalance (an instance joining or leaving, lanes
//! rejoining after their sessions expired or in another number) deals the
//! instance's partitions out to its lanes afresh. A file is a cache, never
//! the record: it is written only with committed state, and every commit
//! also records where in the logs that state ends ([`Resume`]), so the next
//! session on this host (after a crash, a deploy or a rebalance) resumes
//! the partition from it and reads only the logs' tails. A file that
//! cannot be trusted (none, another layout, another boot, another topic of
//! the same name, or too far behind) is emptied and restored from the log.
//! It is never synced to the disk: a process that dies leaves its writes in
//! the kernel's page cache, and after a reboot, which may lose them,
//! [`Resume::boot`] no longer matches.

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use redb::backends::FileBackend;
use redb::{
    Database, DatabaseError, ReadableTable, ReadableTableMetadata, StorageBackend, TableDefinition,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use index::OutcomeIndex;
pub(super) use index::second_of;

type Slots<'a> = TableDefinition<'a, &'static str, &'static [u8]>;
/// Replies by (second decided, command id): oldest first.
type Outcomes<'a> = TableDefinition<'a, (u32, u128), &'static [u8]>;
/// Format 1's expiry index, deleted by name when tables are created
/// (deleting a table does not check its types).
type Expiry<'a> = TableDefinition<'a, (), ()>;
/// Each partition's [`Resume`], by its tables' name.
const RESUMES: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("resume");
/// The tables' layout: a session that finds another restores from the log.
const FORMAT: u32 = 2;
/// How a partition's file name ends; anything else in the folder is left
/// over from a killed process.
const EXTENSION: &str = "redb";
/// How long a file another lane of this process still has open is waited
/// for (it closes it before the group gives the partition away).
const LOCKED_FOR_AT_MOST: Duration = Duration::from_secs(10);

/// redb's page cache per partition; the OS page cache does the rest.
const CACHE_BYTES: usize = 2 << 20;
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

/// Creates the folder of an instance's partition files, or empties it of
/// whatever else a killed process left there (a restore's spilled runs).
/// Also removes the folders that builds before 2026-12-06 kept beside it,
/// one per lane (`<folder>-<lane>`), which nothing reads any more.
pub fn sweep(dir: &Path) -> Result<(), std::io::Error> {
    std::fs::create_dir_all(dir)?;
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path
            .extension()
            .is_none_or(|extension| extension != EXTENSION)
        {
            drop(std::fs::remove_dir_all(&path).or_else(|_| std::fs::remove_file(&path)));
        }
    }
    let (Some(parent), Some(name)) = (dir.parent(), dir.file_name().and_then(|n| n.to_str()))
    else {
        return Ok(());
    };
    for entry in std::fs::read_dir(parent)? {
        let entry = entry?;
        let lane = entry.file_name();
        let is_lane = lane
            .to_str()
            .and_then(|lane| lane.strip_prefix(name)?.strip_prefix('-'))
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
        if is_lane && entry.file_type()?.is_dir() {
            drop(std::fs::remove_dir_all(entry.path()));
        }
    }
    Ok(())
}

/// A partition's state file, kept across sessions.
pub struct StateFile {
    db: Database,
    path: PathBuf,
}

impl StateFile {
    /// Opens the file `name` in the instance's folder `dir`, created if
    /// missing. A file that does not open as a store is replaced by an
    /// empty one: it is only a cache.
    pub fn open(dir: &Path, name: &str) -> Result<Arc<StateFile>, std::io::Error> {
        let path = dir.join(format!("{name}.{EXTENSION}"));
        let started = Instant::now();
        let db = loop {
            match open_db(&path) {
                Ok(db) => break db,
                Err(DatabaseError::DatabaseAlreadyOpen)
                    if started.elapsed() < LOCKED_FOR_AT_MOST =>
                {
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(error) => {
                    tracing::warn!(path = %path.display(), %error, "a local state file does not open, starting an empty one");
                    // Unlinked, not truncated: a process that still has it
                    // open keeps its own copy.
                    std::fs::remove_file(&path)?;
                    break open_db(&path).map_err(std::io::Error::other)?;
                }
            }
        };
        // After a crash, redb first checks the whole file and rebuilds its
        // allocator state.
        let seconds = started.elapsed().as_secs_f64();
        tracing::debug!(path = %path.display(), seconds, "opened a local state file");
        metrics::histogram!("command_state_file_open_seconds").record(seconds);
        Ok(Arc::new(StateFile { db, path }))
    }
}

fn open_db(path: &Path) -> Result<Database, DatabaseError> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| DatabaseError::Storage(e.into()))?;
    let backend = Unsynced(FileBackend::new(file)?);
    Database::builder()
        .set_cache_size(CACHE_BYTES)
        .create_with_backend(backend)
}

/// Where a partition's tables end in the logs, written with every commit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resume {
    format: u32,
    /// The kernel boot the file was written under.
    boot: Option<String>,
    /// The events partition's first record (offset, timestamp in ms): a
    /// topic deleted and created again under the same name has another.
    pub origin: Option<(i64, i64)>,
    /// The snapshots checkpoint the store last wrote or read.
    pub checkpoint: Option<i64>,
    /// One past the last event the tables' state covers.
    pub events_end: i64,
    /// One past the last reply the outcomes hold.
    pub replies_end: Option<i64>,
}

impl Resume {
    pub fn new(
        origin: Option<(i64, i64)>,
        checkpoint: Option<i64>,
        events_end: i64,
        replies_end: Option<i64>,
    ) -> Resume {
        Resume {
            format: FORMAT,
            boot: boot_id(),
            origin,
            checkpoint,
            events_end,
            replies_end,
        }
    }

    /// Written by this layout since this host's boot (when the host tells
    /// its boot apart at all).
    fn current(&self) -> bool {
        self.format == FORMAT && self.boot.is_some() && self.boot == boot_id()
    }
}

fn boot_id() -> Option<String> {
    let id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    Some(id.trim().to_owned())
}

/// One partition's cold state: its tables in its file.
pub struct ColdStore {
    file: Arc<StateFile>,
    slots: String,
    outcomes: String,
    name: String,
    index: OutcomeIndex,
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
    /// Where the tables end once this is written (none while a restore
    /// from the log is still filling them).
    pub resume: Option<Resume>,
}

impl ColdStore {
    /// Empty tables named after `name` (e.g. `orders.events-3`) in the
    /// partition's file, replacing any of that name.
    pub fn create(file: &Arc<StateFile>, name: &str) -> Result<ColdStore, ColdError> {
        let store = ColdStore::named(file, name);
        let txn = store.file.db.begin_write()?;
        txn.delete_table(store.slots_table())?;
        txn.delete_table(store.outcomes_table())?;
        txn.delete_table(Expiry::new(&format!("{name}/outcome_expiry")))?;
        txn.open_table(RESUMES)?.remove(name)?;
        txn.open_table(store.slots_table())?;
        txn.open_table(store.outcomes_table())?;
        txn.commit()?;
        Ok(store)
    }

    /// The tables named after `name` as an earlier session left them, with
    /// where they end, if that session finished restoring them on this
    /// boot with this layout.
    pub fn reopen(
        file: &Arc<StateFile>,
        name: &str,
    ) -> Result<Option<(ColdStore, Resume)>, ColdError> {
        let txn = file.db.begin_read()?;
        let resume = match txn.open_table(RESUMES) {
            Ok(table) => table.get(name)?.map(|v| v.value().to_vec()),
            Err(redb::TableError::TableDoesNotExist(_)) => None,
            Err(e) => return Err(e.into()),
        };
        let resume = resume.and_then(|bytes| serde_json::from_slice::<Resume>(&bytes).ok());
        let Some(resume) = resume.filter(Resume::current) else {
            return Ok(None);
        };
        let mut store = ColdStore::named(file, name);
        for entry in txn.open_table(store.outcomes_table())?.iter()? {
            let (second, id) = entry?.0.value();
            store.index.insert(id, second);
        }
        Ok(Some((store, resume)))
    }

    fn named(file: &Arc<StateFile>, name: &str) -> ColdStore {
        ColdStore {
            file: file.clone(),
            slots: format!("{name}/slots"),
            outcomes: format!("{name}/outcomes"),
            name: name.to_owned(),
            index: OutcomeIndex::default(),
        }
    }

    fn slots_table(&self) -> Slots<'_> {
        TableDefinition::new(&self.slots)
    }

    fn outcomes_table(&self) -> Outcomes<'_> {
        TableDefinition::new(&self.outcomes)
    }

    /// The stored state of one aggregate, as JSON.
    pub fn slot(&self, id: &str) -> Result<Option<Vec<u8>>, ColdError> {
        let txn = self.file.db.begin_read()?;
        let table = txn.open_table(self.slots_table())?;
        Ok(table.get(id)?.map(|v| v.value().to_vec()))
    }

    /// The recorded reply of a command, as JSON. An id the index does not
    /// know (every new command) costs no read.
    pub fn outcome(&self, command_id: Uuid) -> Result<Option<Vec<u8>>, ColdError> {
        let id = command_id.as_u128();
        let Some(second) = self.index.get(id) else {
            return Ok(None);
        };
        let txn = self.file.db.begin_read()?;
        let table = txn.open_table(self.outcomes_table())?;
        Ok(table.get((second, id))?.map(|v| v.value().to_vec()))
    }

    /// Writes committed state in one transaction and expires old outcomes.
    /// An outcome already stored is replaced where it is. The index follows
    /// once the transaction has committed.
    pub fn write(&mut self, write: ColdWrite) -> Result<(), ColdError> {
        let txn = self.file.db.begin_write()?;
        let (mut added, mut expired) = (Vec::new(), Vec::new());
        {
            let mut slots = txn.open_table(self.slots_table())?;
            for (id, state) in &write.slots {
                slots.insert(id.as_str(), state.as_slice())?;
            }
            let mut outcomes = txn.open_table(self.outcomes_table())?;
            for (id, at, reply) in &write.outcomes {
                let id = id.as_u128();
                let stored = match self.index.get(id) {
                    Some(second) => outcomes.get((second, id))?.map(|_| second),
                    None => None,
                };
                let second = stored.unwrap_or_else(|| second_of(*at));
                outcomes.insert((second, id), reply.as_slice())?;
                if stored.is_none() {
                    added.push((id, second));
                }
            }
            let over = (outcomes.len()? as usize).saturating_sub(write.outcome_capacity);
            for entry in outcomes.iter()?.take(EXPIRE_PER_COMMIT) {
                let (second, id) = entry?.0.value();
                // Kept until the whole second is past the horizon.
                let young = (i64::from(second) + 1) * 1_000 > write.expire_before_ms;
                if young && expired.len() >= over {
                    break;
                }
                expired.push((second, id));
            }
            for &(second, id) in &expired {
                outcomes.remove((second, id))?;
            }
            if let Some(resume) = &write.resume {
                let value = serde_json::to_vec(resume).map_err(|e| redb::Error::Io(e.into()))?;
                txn.open_table(RESUMES)?
                    .insert(self.name.as_str(), value.as_slice())?;
            }
        }
        txn.commit()?;
        for (id, second) in added {
            self.index.insert(id, second);
        }
        for (second, id) in expired {
            self.index.remove(id, second);
        }
        Ok(())
    }
}

/// A file backend that never syncs: the store is rebuilt from the log
/// whenever it could have been lost (a reboot, [`Resume::boot`]), so
/// durability would only cost time.
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

mod index;
#[cfg(test)]
mod tests;
