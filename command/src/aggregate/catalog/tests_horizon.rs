//! The bounded memory of committed orders: duplicates inside the horizon
//! change nothing, a hot item's state stays small enough to snapshot, and
//! snapshots written before the horizon still read.

use events::domain::catalog::{CatalogCommand as C, CatalogEvent as E};

use super::tests::{created, order, usd};
use super::{COMMITTED_HORIZON, CatalogItem};
use crate::aggregate::Aggregate;
use crate::aggregate::testing::given;
use crate::processor::store::{MAX_SNAPSHOT_BYTES, Slot, Versioned};

/// The events of `orders` orders reserving and committing one unit each.
fn sold(orders: u128) -> Vec<E> {
    let mut events = vec![created(1_000_000)];
    for n in 1..=orders {
        events.push(E::StockReserved {
            order_id: order(n),
            quantity: 1,
            unit_price: usd(1999),
        });
        events.push(E::StockCommitted {
            order_id: order(n),
            quantity: 1,
        });
    }
    events
}

/// The snapshot record the processor would write for `item`.
fn snapshot_bytes(item: &CatalogItem) -> usize {
    let slot = Slot::Catalog(Versioned {
        state: item.clone(),
        version: 10_001,
    });
    slot.encode().expect("a catalog item encodes").len()
}

#[test]
fn a_hot_item_with_5000_committed_orders_still_fits_in_a_snapshot() {
    let item = CatalogItem::replay(&sold(5_000));
    assert_eq!(item.on_hand(), 1_000_000 - 5_000);
    assert_eq!(item.committed().len(), COMMITTED_HORIZON);
    let bytes = snapshot_bytes(&item);
    assert!(bytes < MAX_SNAPSHOT_BYTES, "{bytes} bytes");
    // The size no longer grows with the orders served.
    assert_eq!(bytes, snapshot_bytes(&CatalogItem::replay(&sold(200))));
    assert!(bytes < 4 * 1024, "{bytes} bytes");
}

#[test]
fn a_repeated_commit_inside_the_horizon_changes_nothing() {
    let oldest_kept = 5_000 - COMMITTED_HORIZON as u128 + 1;
    given(sold(5_000))
        .when(C::CommitStock {
            order_id: order(oldest_kept),
        })
        .then_no_events()
        .then_state(|item| assert_eq!(item.on_hand(), 1_000_000 - 5_000));
}

#[test]
fn a_late_reservation_inside_the_horizon_changes_nothing() {
    given(sold(5_000))
        .when(C::ReserveStock {
            order_id: order(5_000),
            quantity: 1,
        })
        .then_no_events()
        .then_state(|item| assert_eq!(item.reserved(), 0));
}

/// Past the horizon the item no longer knows the order: a late reservation
/// is granted (the order's saga releases it) and a repeated commit without
/// one is refused, never applied twice.
#[test]
fn past_the_horizon_a_late_reservation_is_granted_and_a_bare_commit_refused() {
    let forgotten = order(1);
    given(sold(5_000))
        .when(C::ReserveStock {
            order_id: forgotten,
            quantity: 1,
        })
        .then_events([E::StockReserved {
            order_id: forgotten,
            quantity: 1,
            unit_price: usd(1999),
        }]);
    let repeat = CatalogItem::replay(&sold(5_000)).decide(&C::CommitStock {
        order_id: forgotten,
    });
    assert!(repeat.is_err(), "{repeat:?}");
}

#[test]
fn a_snapshot_holding_every_committed_order_still_reads() {
    let old: Vec<String> = (1..=2_000_u128).map(|n| order(n).to_string()).collect();
    let json = serde_json::json!({
        "state": {
            "details": {"name": "Widget", "unit_price": usd(1999)},
            "on_hand": 7,
            "reserved": 0,
            "reservations": {},
            "committed": old,
        },
        "version": 4_001,
    });
    let bytes = serde_json::to_vec(&json).unwrap();
    let slot = Slot::decode(events::AggregateType::CatalogItem, &bytes)
        .expect("an old snapshot reads")
        .expect("a catalog slot");
    let Slot::Catalog(versioned) = slot else {
        panic!("not a catalog item");
    };
    let item = versioned.state;
    assert_eq!((item.on_hand(), versioned.version), (7, 4_001));
    assert_eq!(item.committed().len(), COMMITTED_HORIZON);
    assert!(item.is_committed(&order(2_000)));
    // Written back in the packed form, it reads the same.
    let again = Slot::Catalog(Versioned {
        state: item.clone(),
        version: 4_001,
    });
    let again = Slot::decode(events::AggregateType::CatalogItem, &again.encode().unwrap());
    let Ok(Some(Slot::Catalog(again))) = again else {
        panic!("the packed form does not read back");
    };
    assert_eq!(again.state, item);
}
