//! What the refresher is handed: each committed batch's documents, and
//! the batches waiting together merged into the newest document of each key.

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Utc};

use uuid::Uuid;

use crate::documents::{ItemDocument, OrderDocument, Unbuilt, Unplaced};

/// The documents a committed batch changed, as it left them.
#[derive(Debug, Default)]
pub struct Fresh {
    pub items: Vec<ItemDocument>,
    pub orders: Vec<OrderDocument>,
    /// Orders the batch named without an order row: written as versions
    /// without a body.
    pub unplaced: Vec<Unplaced>,
    /// Orders whose documents the batch did not build (it was far
    /// behind): written as versions without a body.
    pub unbuilt: Vec<Unbuilt>,
    /// Keys of records the batch skipped as already applied: whoever applied
    /// them may have died before writing their documents, so these are
    /// written again from PostgreSQL.
    pub reload: Touched,
    /// The cache's generation when the batch began to read
    /// ([`Refresher::generation`]).
    pub generation: u64,
    /// When the batch's oldest record was appended to the log.
    pub oldest: Option<DateTime<Utc>>,
}

impl Fresh {
    /// Adds the documents of a batch over different keys (the other part of
    /// a batch applied in parts); the generation and age are set after.
    pub fn extend(&mut self, other: Fresh) {
        self.items.extend(other.items);
        self.orders.extend(other.orders);
        self.unplaced.extend(other.unplaced);
        self.unbuilt.extend(other.unbuilt);
        self.reload.merge(other.reload);
    }

    /// The keys of the documents (and of those to reload).
    pub fn touched(&self) -> Touched {
        let mut touched = Touched {
            items: self.items.iter().map(|i| i.sku.clone()).collect(),
            orders: self
                .orders
                .iter()
                .map(|o| o.order_id)
                .chain(self.unplaced.iter().map(|u| u.order_id))
                .chain(self.unbuilt.iter().map(|u| u.order_id))
                .collect(),
        };
        touched.merge(self.reload.clone());
        touched
    }
}

/// The keys of cached documents.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Touched {
    pub items: BTreeSet<String>,
    pub orders: BTreeSet<Uuid>,
}

impl Touched {
    pub fn len(&self) -> usize {
        self.items.len() + self.orders.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub(crate) fn merge(&mut self, other: Touched) {
        self.items.extend(other.items);
        self.orders.extend(other.orders);
    }
}

/// The newest document of each key among the batches taken together.
#[derive(Default)]
pub(super) struct Merged {
    pub(super) items: HashMap<String, ItemDocument>,
    pub(super) orders: HashMap<Uuid, OrderDocument>,
    pub(super) unplaced: HashMap<Uuid, Unplaced>,
    pub(super) unbuilt: HashMap<Uuid, Unbuilt>,
    pub(super) reload: Touched,
    /// The oldest generation of the batches.
    pub(super) generation: Option<u64>,
    /// When the oldest record of the batches was appended to the log.
    pub(super) oldest: Option<DateTime<Utc>>,
}

impl Merged {
    pub(super) fn add(&mut self, fresh: Fresh) {
        self.reload.merge(fresh.reload);
        self.oldest = self.oldest.into_iter().chain(fresh.oldest).min();
        self.generation = Some(
            self.generation
                .map_or(fresh.generation, |g| g.min(fresh.generation)),
        );
        for item in fresh.items {
            let newer = self
                .items
                .get(&item.sku)
                .is_none_or(|held| held.version <= item.version);
            if newer {
                self.items.insert(item.sku.clone(), item);
            }
        }
        for order in fresh.orders {
            let sum = |o: &OrderDocument| o.versions().iter().map(|(_, v)| v).sum::<i64>();
            let newer = self
                .orders
                .get(&order.order_id)
                .is_none_or(|held| sum(held) <= sum(&order));
            if newer {
                self.unbuilt.remove(&order.order_id);
                self.orders.insert(order.order_id, order);
            }
        }
        for unbuilt in fresh.unbuilt {
            // A later batch of this projector: at least as new in every
            // stream it loaded, so the earlier document need not be written.
            self.orders.remove(&unbuilt.order_id);
            self.unbuilt.insert(unbuilt.order_id, unbuilt);
        }
        for unplaced in fresh.unplaced {
            // One projector's versions only grow, so the later one covers the earlier.
            self.unplaced.insert(unplaced.order_id, unplaced);
        }
    }

    pub(super) fn touched(&self) -> Touched {
        Touched {
            items: self.items.keys().cloned().collect(),
            orders: self
                .orders
                .keys()
                .chain(self.unplaced.keys())
                .chain(self.unbuilt.keys())
                .copied()
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::documents;

    fn item(sku: &str, version: i64) -> ItemDocument {
        ItemDocument {
            sku: sku.into(),
            name: "Mug".into(),
            unit_price: documents::Price {
                minor: 100,
                currency: "USD".into(),
            },
            on_hand: version,
            reserved: 0,
            available: version,
            version,
            updated_at: Utc::now(),
        }
    }

    #[test]
    fn the_later_of_a_document_and_versions_alone_is_kept() {
        let (id, other) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let unbuilt = |order_id, version| Unbuilt {
            order_id,
            versions: [
                (events::AggregateType::Order, version),
                (events::AggregateType::Payment, 0),
                (events::AggregateType::Shipment, 0),
            ],
        };
        let mut merged = Merged::default();
        merged.add(Fresh {
            orders: vec![documents::tests::order(id, 2).into()],
            ..Fresh::default()
        });
        merged.add(Fresh {
            unbuilt: vec![unbuilt(id, 3), unbuilt(other, 1)],
            ..Fresh::default()
        });
        assert!(merged.orders.is_empty(), "the later versions cover it");
        assert_eq!(merged.unbuilt.len(), 2);
        merged.add(Fresh {
            orders: vec![documents::tests::order(id, 4).into()],
            ..Fresh::default()
        });
        assert_eq!(merged.orders[&id].version, 4);
        assert_eq!(merged.unbuilt.keys().collect::<Vec<_>>(), [&other]);
        assert_eq!(merged.touched().orders.len(), 2);
    }

    #[test]
    fn merging_batches_keeps_the_newest_document_of_each_key() {
        let mut merged = Merged::default();
        merged.add(Fresh {
            items: vec![item("A", 2), item("B", 1)],
            ..Fresh::default()
        });
        merged.add(Fresh {
            items: vec![item("A", 3), item("B", 0)],
            ..Fresh::default()
        });
        assert_eq!(merged.items["A"].version, 3);
        assert_eq!(merged.items["B"].version, 1);
        assert_eq!(merged.touched().items.len(), 2);
    }
}
