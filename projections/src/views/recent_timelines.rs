//! The timelines of the order documents a live projector built lately, so
//! a batch that touches the same orders again need not read them back.
//!
//! A live batch builds the whole document of every order it touches, and a
//! document carries the order's whole timeline. Read back from PostgreSQL,
//! that was the views database's largest statement under load: each batch
//! re-read every entry its orders had so far, most of them written a batch
//! or two before (BENCHMARKS.md, "Timelines remembered").
//!
//! A remembered timeline is used only when the rows the batch loaded have
//! exactly the versions it was built at. Rows and timeline entries commit
//! together, every event that moves a row's version adds its entry, and an
//! event's entry is a function of the event; so equal versions mean the
//! stored timeline is the remembered one, whoever wrote in between (another
//! instance, a dead-letter retry) and whether or not the batch that built
//! it committed (if it did not, the rows are behind it). A document shows
//! a stream's entries only up to its row's version, so entries of a stream
//! whose row was never created (no version moves) are hidden either way.

use std::collections::HashMap;
use std::sync::Arc;

use quick_cache::sync::Cache;
use uuid::Uuid;

use super::order_timeline::TimelineEntry;
use crate::documents::OrderDocument;

/// The versions of an order's rows (order, payment, shipment; 0 without a
/// row), in the order of [`OrderDocument::versions`].
pub type Versions = [i64; 3];

/// How many orders' timelines a projector remembers (about 3.5 KB each
/// once complete): those of the orders whose sagas are under way, at the
/// rates this machine takes and beyond (two seconds of orders at 1,000 a
/// second). Orders that stay in flight longer are read back as before.
pub const CAPACITY: usize = 2_048;

/// Recently built timelines by order id.
pub struct RecentTimelines {
    cache: Cache<Uuid, Arc<Remembered>>,
}

struct Remembered {
    versions: Versions,
    entries: Vec<TimelineEntry>,
}

impl RecentTimelines {
    pub fn new(capacity: usize) -> RecentTimelines {
        RecentTimelines {
            cache: Cache::new(capacity),
        }
    }

    /// Splits `orders` into the stored timelines remembered at the versions
    /// given and the ids whose timelines must be read.
    pub fn recall(
        &self,
        orders: HashMap<Uuid, Versions>,
    ) -> (HashMap<Uuid, Vec<TimelineEntry>>, Vec<Uuid>) {
        let (mut known, mut unknown) = (HashMap::new(), Vec::new());
        for (id, versions) in orders {
            match self.cache.get(&id) {
                Some(remembered) if remembered.versions == versions => {
                    known.insert(id, remembered.entries.clone());
                }
                _ => unknown.push(id),
            }
        }
        metrics::counter!("projection_timelines_total", "from" => "memory")
            .increment(known.len() as u64);
        metrics::counter!("projection_timelines_total", "from" => "database")
            .increment(unknown.len() as u64);
        (known, unknown)
    }

    /// Remembers the documents' timelines at their rows' versions.
    pub fn remember(&self, documents: &[OrderDocument]) {
        for document in documents {
            let remembered = Remembered {
                versions: document.versions().map(|(_, version)| version),
                entries: document.timeline.clone(),
            };
            self.cache.insert(document.order_id, Arc::new(remembered));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::views::order_timeline::Detail;

    fn document(order_id: Uuid, versions: Versions) -> OrderDocument {
        let mut document =
            OrderDocument::from(crate::documents::tests::order(order_id, versions[0]));
        (document.payment_version, document.shipment_version) = (versions[1], versions[2]);
        document.timeline = vec![TimelineEntry {
            order_id,
            source: "orders".into(),
            sequence: versions[0],
            event_type: "OrderPlaced".into(),
            occurred_at: chrono::Utc::now(),
            detail: Detail::from(&serde_json::json!({})),
        }];
        document
    }

    #[test]
    fn a_timeline_is_recalled_only_at_the_versions_it_was_built_at() {
        let recent = RecentTimelines::new(16);
        let (a, b, c) = (Uuid::from_u128(1), Uuid::from_u128(2), Uuid::from_u128(3));
        recent.remember(&[document(a, [2, 1, 0]), document(b, [1, 0, 0])]);
        let asked = HashMap::from([(a, [2, 1, 0]), (b, [1, 1, 0]), (c, [1, 0, 0])]);
        let (known, mut unknown) = recent.recall(asked);
        unknown.sort();
        assert_eq!(known.keys().collect::<Vec<_>>(), vec![&a]);
        assert_eq!(known[&a][0].sequence, 2);
        assert_eq!(unknown, vec![b, c], "moved on since, or never built");
    }

    #[test]
    fn the_latest_build_replaces_the_earlier() {
        let recent = RecentTimelines::new(16);
        let a = Uuid::from_u128(1);
        recent.remember(&[document(a, [1, 0, 0])]);
        recent.remember(&[document(a, [3, 0, 0])]);
        assert_eq!(recent.recall(HashMap::from([(a, [1, 0, 0])])).0.len(), 0);
        assert_eq!(recent.recall(HashMap::from([(a, [3, 0, 0])])).0.len(), 1);
    }
}
