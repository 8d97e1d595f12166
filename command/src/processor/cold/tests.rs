//! The instance folder's sweep, and the outcomes' index.

use redb::TableHandle;

use super::*;

#[test]
fn sweep_keeps_the_partition_files_and_removes_leftovers_and_old_lane_folders() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("shop-processor");
    for folder in [
        "shop-processor/restore-x1",
        "shop-processor-0",
        "shop-processor-1",
    ] {
        std::fs::create_dir_all(root.path().join(folder)).unwrap();
    }
    // Other instances' folders, and a file named like a lane's.
    for folder in [
        "shop-processor-0-processor",
        "shop-processor-x",
        "other-processor-0",
    ] {
        std::fs::create_dir_all(root.path().join(folder)).unwrap();
    }
    std::fs::write(root.path().join("shop-processor-2"), b"").unwrap();
    std::fs::write(dir.join("t.orders.events-0.redb"), b"").unwrap();
    std::fs::write(dir.join("stray"), b"").unwrap();

    sweep(&dir).unwrap();

    let names = |dir: &Path| -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    };
    assert_eq!(names(&dir), ["t.orders.events-0.redb"]);
    assert_eq!(
        names(root.path()),
        [
            "other-processor-0",
            "shop-processor",
            "shop-processor-0-processor",
            "shop-processor-2",
            "shop-processor-x"
        ]
    );
}

fn outcome(id: u128, at_ms: i64, reply: &str) -> (Uuid, i64, Vec<u8>) {
    (Uuid::from_u128(id), at_ms, reply.as_bytes().to_vec())
}

fn write(store: &mut ColdStore, outcomes: Vec<(Uuid, i64, Vec<u8>)>, capacity: usize) {
    store
        .write(ColdWrite {
            outcomes,
            outcome_capacity: capacity,
            resume: Some(Resume::new(None, None, 0, None)),
            ..ColdWrite::default()
        })
        .unwrap();
}

fn read(store: &ColdStore, id: u128) -> Option<String> {
    let bytes = store.outcome(Uuid::from_u128(id)).unwrap()?;
    Some(String::from_utf8(bytes).unwrap())
}

#[test]
fn outcomes_are_found_by_id_also_when_their_low_bits_clash_and_after_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let file = StateFile::open(dir.path(), "p").unwrap();
    let mut store = ColdStore::create(&file, "t").unwrap();
    // Two ids with the same low 32 bits, decided in the same second, and a
    // third with other bits.
    let (a, b, c) = (1 << 32 | 7, 2 << 64 | 7, 9);
    write(
        &mut store,
        vec![outcome(a, 5_000, "a"), outcome(b, 5_500, "b")],
        10,
    );
    write(&mut store, vec![outcome(c, 6_000, "c")], 10);
    assert_eq!(read(&store, a).as_deref(), Some("a"));
    assert_eq!(read(&store, b).as_deref(), Some("b"));
    assert_eq!(read(&store, c).as_deref(), Some("c"));
    assert_eq!(read(&store, 3 << 96 | 7), None, "same bits, never stored");
    assert_eq!(read(&store, 8), None);

    // Written again: replaced where it is, not stored twice.
    write(&mut store, vec![outcome(b, 9_000, "b2")], 10);
    assert_eq!(read(&store, b).as_deref(), Some("b2"));

    // A session that resumes the tables finds the same outcomes.
    drop(store);
    let (mut store, _) = ColdStore::reopen(&file, "t").unwrap().expect("resumable");
    assert_eq!(read(&store, a).as_deref(), Some("a"));
    assert_eq!(read(&store, b).as_deref(), Some("b2"));

    // Over a capacity of two, the oldest goes: a and b share a second, and
    // (second, id) puts a first. Then the clash is gone and b still found.
    write(&mut store, Vec::new(), 2);
    assert_eq!(read(&store, a), None);
    assert_eq!(read(&store, b).as_deref(), Some("b2"));
    assert_eq!(read(&store, c).as_deref(), Some("c"));
}

#[test]
fn outcomes_expire_once_their_whole_second_is_past_the_horizon() {
    let dir = tempfile::tempdir().unwrap();
    let file = StateFile::open(dir.path(), "p").unwrap();
    let mut store = ColdStore::create(&file, "t").unwrap();
    write(
        &mut store,
        vec![outcome(1, 1_000, "old"), outcome(2, 2_500, "edge")],
        10,
    );
    let expire = |store: &mut ColdStore, before_ms| {
        store
            .write(ColdWrite {
                expire_before_ms: before_ms,
                outcome_capacity: 10,
                ..ColdWrite::default()
            })
            .unwrap();
    };
    expire(&mut store, 2_999);
    assert_eq!(read(&store, 1), None);
    assert_eq!(
        read(&store, 2).as_deref(),
        Some("edge"),
        "its second is not over"
    );
    expire(&mut store, 3_000);
    assert_eq!(read(&store, 2), None);
}

#[test]
fn tables_of_the_first_layout_are_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let file = StateFile::open(dir.path(), "p").unwrap();
    let txn = file.db.begin_write().unwrap();
    {
        let by_id: TableDefinition<u128, &[u8]> = TableDefinition::new("t/outcomes");
        txn.open_table(by_id)
            .unwrap()
            .insert(1, b"old".as_slice())
            .unwrap();
        let expiry: TableDefinition<(i64, u128), ()> = TableDefinition::new("t/outcome_expiry");
        txn.open_table(expiry).unwrap().insert((5, 1), ()).unwrap();
    }
    txn.commit().unwrap();

    let mut store = ColdStore::create(&file, "t").unwrap();
    write(&mut store, vec![outcome(2, 1_000, "new")], 10);
    assert_eq!(read(&store, 2).as_deref(), Some("new"));
    assert_eq!(read(&store, 1), None);
    let txn = file.db.begin_read().unwrap();
    let names: Vec<String> = txn
        .list_tables()
        .unwrap()
        .map(|t| t.name().to_owned())
        .collect();
    assert!(!names.iter().any(|n| n == "t/outcome_expiry"), "{names:?}");
}
