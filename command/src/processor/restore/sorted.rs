//! The sort a restore passes snapshots and replies through, so they reach
//! the store's disk half in key order ([`Keyed`]).

use std::cmp::Ordering;
use std::io::{Read, Write};
use std::path::Path;

use extsort::{ExternalSorter, Sortable};

use crate::processor::ProcessorError;

/// A record of the snapshots or replies partition being restored, to be
/// written to its store in key order. Read in offset order, their keys are
/// random ids, and each write of a batch of random ids rewrites a leaf of
/// the store's B-tree per id: a restore of 500,000 order snapshots and as
/// many replies per partition spent half its time in the file's reads and
/// writes (BENCHMARKS.md, "The command service over 1,000,000 orders, and
/// restores in key order"). Sorted by key and offset, so the last record
/// of a key is written last.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Keyed {
    pub key: Vec<u8>,
    pub offset: i64,
    pub value: Vec<u8>,
}

impl Keyed {
    pub fn error(
        &self,
        topic: &str,
        partition: i32,
        error: impl std::fmt::Display,
    ) -> ProcessorError {
        ProcessorError::Restore(format!(
            "{topic}/{partition} offset {}: {error}",
            self.offset
        ))
    }
}

impl Sortable for Keyed {
    fn encode<W: Write>(&self, writer: &mut W) -> std::io::Result<()> {
        writer.write_all(&self.offset.to_le_bytes())?;
        for bytes in [&self.key, &self.value] {
            writer.write_all(&(bytes.len() as u32).to_le_bytes())?;
            writer.write_all(bytes)?;
        }
        Ok(())
    }

    /// An end of the segment before the first byte is an `UnexpectedEof`,
    /// which is how the sorter tells that a segment is done.
    fn decode<R: Read>(reader: &mut R) -> std::io::Result<Keyed> {
        fn bytes<const N: usize>(reader: &mut impl Read) -> std::io::Result<[u8; N]> {
            let mut buffer = [0; N];
            reader.read_exact(&mut buffer)?;
            Ok(buffer)
        }
        fn field(reader: &mut impl Read) -> std::io::Result<Vec<u8>> {
            let mut buffer = vec![0; u32::from_le_bytes(bytes(reader)?) as usize];
            reader.read_exact(&mut buffer)?;
            Ok(buffer)
        }
        Ok(Keyed {
            offset: i64::from_le_bytes(bytes(reader)?),
            key: field(reader)?,
            value: field(reader)?,
        })
    }
}

/// Records kept in memory before a sorted run of them goes to disk.
pub(super) const SORT_RUN: usize = 10_000;

/// Sorts [`Keyed`] records of one partition in runs of [`SORT_RUN`], spilled
/// to a folder of its own in the instance's folder (which a new process
/// empties) and merged.
pub(super) struct Sorter {
    sorter: extsort::PushExternalSorter<Keyed, fn(&Keyed, &Keyed) -> Ordering>,
    dir: tempfile::TempDir,
    topic: String,
}

impl Sorter {
    pub fn new(folder: &Path, topic: &str) -> Result<Sorter, ProcessorError> {
        let dir = tempfile::Builder::new()
            .prefix("restore-")
            .tempdir_in(folder)
            .map_err(|e| ProcessorError::StateDir(folder.to_owned(), e))?;
        let sorter = ExternalSorter::new()
            .with_segment_size(SORT_RUN)
            .with_sort_dir(dir.path().to_owned())
            .pushed_by(Keyed::cmp as fn(&Keyed, &Keyed) -> Ordering);
        Ok(Sorter {
            sorter,
            dir,
            topic: topic.to_owned(),
        })
    }

    pub fn push(&mut self, record: Keyed) -> Result<(), String> {
        self.sorter.push(record).map_err(|e| e.to_string())
    }

    /// The records in order.
    pub fn sorted(self) -> Result<Sorted, ProcessorError> {
        let records = self.sorter.done().map_err(|e| sort_error(&self.topic, e))?;
        Ok(Sorted {
            records,
            _dir: self.dir,
            topic: self.topic,
        })
    }
}

/// A [`Sorter`]'s records in order; its folder goes when this is dropped,
/// after the runs' files are closed.
pub(super) struct Sorted {
    records: extsort::SortedIterator<Keyed, fn(&Keyed, &Keyed) -> Ordering>,
    _dir: tempfile::TempDir,
    topic: String,
}

impl Iterator for Sorted {
    type Item = Result<Keyed, ProcessorError>;

    fn next(&mut self) -> Option<Self::Item> {
        let next = self.records.next()?;
        Some(next.map_err(|e| sort_error(&self.topic, e)))
    }
}

fn sort_error(topic: &str, error: std::io::Error) -> ProcessorError {
    ProcessorError::Restore(format!("sorting {topic}: {error}"))
}

#[cfg(test)]
mod tests;
