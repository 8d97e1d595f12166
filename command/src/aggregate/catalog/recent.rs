//! The bounded memory of an item's committed orders.
//!
//! A CatalogItem remembers the orders whose stock it committed, so that a
//! repeated CommitStock, or a ReserveStock retry that arrives after the
//! commit, is recognized and changes nothing. Remembering every order made a
//! hot SKU's state grow without bound: past about 1,500 orders it no longer
//! fit in a snapshot, the partition's checkpoint stopped advancing and every
//! restore folded the log from an old offset again. The item now keeps the
//! most recent [`HORIZON`] orders, in commit order, and forgets the oldest
//! when a new one comes. What arrives later than that is made safe by the
//! saga, not by this memory: its CommitStock retries reuse one command id
//! (the processor deduplicates them), and it releases any reservation that
//! reaches it after its line was committed or released.
//!
//! Stored compactly, as one base64 string of the orders' 16-byte ids, oldest
//! first (about 2.7 KB when full, against 4.9 KB as a list of UUID strings).
//! Snapshots from before the horizon hold a JSON list of every committed
//! order, sorted by id; they still read, keeping the last [`HORIZON`] of
//! that list (which ones is arbitrary, and harmless for the same reason).

use std::collections::VecDeque;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use events::domain::ids::OrderId;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use uuid::Uuid;

/// How many committed orders an item remembers. A duplicate inside the
/// horizon is answered from it; a retry comes seconds after the original
/// (the saga's deadlines are 30 s), so even a SKU committing dozens of
/// orders a second keeps most of them in view.
pub const HORIZON: usize = 128;

/// The most recent committed orders of one item, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecentCommits(VecDeque<OrderId>);

impl RecentCommits {
    pub fn contains(&self, order_id: &OrderId) -> bool {
        self.0.contains(order_id)
    }

    /// Remembers `order_id` as the newest commit, forgetting the oldest one
    /// once [`HORIZON`] are remembered. Deterministic, as `evolve` must be.
    pub fn remember(&mut self, order_id: OrderId) {
        if self.contains(&order_id) {
            return;
        }
        if self.0.len() >= HORIZON {
            self.0.pop_front();
        }
        self.0.push_back(order_id);
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Keeps the last [`HORIZON`] of `orders`, in their order.
    fn from_oldest_first(orders: impl IntoIterator<Item = OrderId>) -> Self {
        let mut recent = RecentCommits::default();
        for order_id in orders {
            recent.remember(order_id);
        }
        recent
    }
}

impl Serialize for RecentCommits {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let bytes: Vec<u8> = self
            .0
            .iter()
            .flat_map(|id| *id.as_uuid().as_bytes())
            .collect();
        serializer.serialize_str(&URL_SAFE_NO_PAD.encode(bytes))
    }
}

/// The stored forms: the packed string, or the list of snapshots written
/// before the horizon existed.
#[derive(Deserialize)]
#[serde(untagged)]
enum Stored {
    Packed(String),
    Listed(Vec<OrderId>),
}

impl<'de> Deserialize<'de> for RecentCommits {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let packed = match Stored::deserialize(deserializer)? {
            Stored::Listed(orders) => return Ok(Self::from_oldest_first(orders)),
            Stored::Packed(packed) => packed,
        };
        let bytes = URL_SAFE_NO_PAD
            .decode(packed.as_bytes())
            .map_err(serde::de::Error::custom)?;
        if bytes.len() % 16 != 0 {
            return Err(serde::de::Error::custom(
                "committed orders are not a whole number of 16-byte ids",
            ));
        }
        let ids = bytes.chunks_exact(16).map(|chunk| {
            let mut id = [0; 16];
            id.copy_from_slice(chunk);
            OrderId::from_uuid(Uuid::from_bytes(id))
        });
        Ok(Self::from_oldest_first(ids))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(n: u128) -> OrderId {
        OrderId::from_uuid(Uuid::from_u128(n))
    }

    #[test]
    fn the_oldest_order_is_forgotten_once_the_horizon_is_full() {
        let recent = RecentCommits::from_oldest_first((1..=HORIZON as u128 + 2).map(order));
        assert_eq!(recent.len(), HORIZON);
        assert!(!recent.contains(&order(1)));
        assert!(!recent.contains(&order(2)));
        assert!(recent.contains(&order(3)));
        assert!(recent.contains(&order(HORIZON as u128 + 2)));
    }

    #[test]
    fn remembering_an_order_twice_keeps_one_entry() {
        let mut recent = RecentCommits::default();
        recent.remember(order(1));
        recent.remember(order(1));
        assert_eq!(recent.len(), 1);
    }

    #[test]
    fn the_packed_form_round_trips_in_order() {
        let recent = RecentCommits::from_oldest_first((1..=5).map(order));
        let json = serde_json::to_string(&recent).unwrap();
        assert!(json.starts_with('"'), "one string: {json}");
        let read: RecentCommits = serde_json::from_str(&json).unwrap();
        assert_eq!(read, recent);
        assert_eq!(
            serde_json::to_string(&RecentCommits::default()).unwrap(),
            "\"\""
        );
    }

    #[test]
    fn a_full_set_from_an_old_snapshot_reads_as_its_last_orders() {
        let all: Vec<OrderId> = (1..=2_000).map(order).collect();
        let json = serde_json::to_string(&all).unwrap();
        let read: RecentCommits = serde_json::from_str(&json).unwrap();
        assert_eq!(read.len(), HORIZON);
        assert!(read.contains(&order(2_000)));
        assert!(!read.contains(&order(1)));
    }

    #[test]
    fn a_damaged_packed_form_is_refused() {
        let damaged = serde_json::from_str::<RecentCommits>("\"AAAA\"");
        assert!(damaged.is_err(), "3 bytes are no id");
        assert!(serde_json::from_str::<RecentCommits>("\"not base64!\"").is_err());
    }
}
