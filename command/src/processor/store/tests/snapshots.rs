//! Snapshots of a partition store: what they cover, and when they are due.

use chrono::Utc;
use events::domain::{CatalogCommand, Currency, Money};

use super::{SnapshotPlan, create, envelope, handle, reserve, store};

#[test]
fn a_snapshot_and_the_events_after_it_restore_the_state() {
    let mut live = store();
    let mut log = Vec::new();
    for command in [
        envelope(create()),
        envelope(reserve(4)),
        envelope(reserve(1)),
    ] {
        log.extend(handle(&mut live, &command).events);
    }
    // The snapshot was taken after the second event; the log has three.
    let mut at_two = store();
    for (offset, event) in (0..).zip(&log[..2]) {
        at_two
            .restore_event(offset, &event.meta, &event.payload)
            .unwrap();
    }
    let snapshot = at_two.snapshots(SnapshotPlan::all(0)).unwrap();
    assert_eq!(snapshot.len(), 1);
    let mut restored = store();
    restored
        .restore_snapshot(&snapshot[0].0, &snapshot[0].1)
        .unwrap();
    restored.commit().unwrap();
    let folded: Vec<bool> = (0..)
        .zip(&log)
        .map(|(offset, e)| restored.restore_event(offset, &e.meta, &e.payload).unwrap())
        .collect();
    assert_eq!(
        folded,
        [false, false, true],
        "only the event after the snapshot is folded"
    );
    let next = restored.handle(&envelope(reserve(1)), Utc::now()).unwrap();
    assert_eq!(next.events[0].meta.sequence, 4);
    // Six of ten are reserved, so five more are too many.
    let too_many = restored.handle(&envelope(reserve(5)), Utc::now()).unwrap();
    assert_eq!(
        too_many.events[0].meta.event_type,
        "StockReservationRejected"
    );
}

#[test]
fn a_state_too_large_to_snapshot_holds_the_checkpoint_back() {
    let mut store = store();
    let big = envelope(CatalogCommand::CreateItem {
        name: "Bolt".into(),
        unit_price: Money::new(5, Currency::new("USD").unwrap()),
        initial_stock: 10_000,
    });
    handle(&mut store, &big);
    assert_eq!(store.snapshots(SnapshotPlan::all(0)).unwrap().len(), 1);
    for _ in 0..2_000 {
        store.handle(&envelope(reserve(1)), Utc::now()).unwrap();
    }
    assert!(store.snapshots(SnapshotPlan::all(0)).unwrap().is_empty());
    assert!(!store.fully_snapshotted());
    store.commit().unwrap();
    // Its state is still on disk and served from there.
    let next = store.handle(&envelope(reserve(1)), Utc::now()).unwrap();
    assert_eq!(next.events[0].meta.sequence, 2_002);
}

#[test]
fn a_change_is_snapshotted_once_it_is_due_and_holds_the_checkpoint_until_then() {
    let mut store = store();
    store.handle(&envelope(create()), Utc::now()).unwrap();
    let early = SnapshotPlan {
        first_offset: 100,
        due_before: 100 - 10_000,
        most: usize::MAX,
    };
    assert!(store.snapshots(early).unwrap().is_empty(), "not due yet");
    assert_eq!(store.covered_before(100), 100, "its events start at 100");
    store.commit().unwrap();
    assert!(!store.fully_snapshotted());

    // Another aggregate changes much later; the first one is now due and is
    // read back from the committed state.
    let later = SnapshotPlan {
        first_offset: 20_000,
        due_before: 20_000 - 10_000,
        most: usize::MAX,
    };
    let records = store.snapshots(later).unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].0, "SKU-1");
    assert_eq!(store.covered_before(20_000), 20_000);
    assert!(store.fully_snapshotted());
}
