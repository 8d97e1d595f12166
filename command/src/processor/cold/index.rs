//! The outcomes' index by command id. The outcomes table is keyed by
//! (second decided, command id), so writing an outcome appends to the
//! tree's right edge and expiring the oldest removes from its left edge.
//! Keyed by the random command id alone, as until 2026-12-07, each outcome
//! written and each expired rewrote a leaf somewhere in a tree far larger
//! than redb's cache: that was much of a lane's store phase, itself about a
//! quarter of the command service's CPU at 250 orders/s (BENCHMARKS.md,
//! "Outcomes in decision order"). The price is this index: an 8-byte slot
//! an outcome held (about 2.4 MB a partition at the capacity of 200,000,
//! as the map sizes its table), rebuilt from the table when a session
//! resumes it.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

/// Where each stored outcome is: its command id's second. Keyed by the
/// id's low 32 bits (random in every UUID version the ids use), not the
/// whole id, for a map a quarter the size; an id whose bits another
/// stored id has (a handful among 200,000) goes into `clashes`, keyed by
/// the whole id. Lookups stay exact: a hit is read under the whole id,
/// which the table's key includes, so a new id whose bits a stored one has
/// (one in 20,000 at the capacity) costs one read that finds nothing.
#[derive(Debug, Default)]
pub(super) struct OutcomeIndex {
    by_bits: HashMap<u32, u32>,
    clashes: HashMap<u128, u32>,
}

impl OutcomeIndex {
    /// The second a stored outcome may be under; a guess only when the
    /// id's bits are another's, which the read under the whole key settles.
    pub(super) fn get(&self, id: u128) -> Option<u32> {
        self.clashes
            .get(&id)
            .or_else(|| self.by_bits.get(&(id as u32)))
            .copied()
    }

    pub(super) fn insert(&mut self, id: u128, second: u32) {
        match self.by_bits.entry(id as u32) {
            Entry::Vacant(entry) => {
                entry.insert(second);
            }
            Entry::Occupied(_) => {
                self.clashes.insert(id, second);
            }
        }
    }

    pub(super) fn remove(&mut self, id: u128, second: u32) {
        if self.clashes.remove(&id).is_none() && self.by_bits.get(&(id as u32)) == Some(&second) {
            self.by_bits.remove(&(id as u32));
        }
    }
}

/// The second an outcome decided at `ms` is filed under (and a restore
/// sorts it by).
pub(in crate::processor) fn second_of(ms: i64) -> u32 {
    u32::try_from(ms.div_euclid(1_000).max(0)).unwrap_or(u32::MAX)
}
