use uuid::Uuid;

use super::{Keyed, SORT_RUN, Sorter};

/// More records than three runs, so the sorter spills runs to disk and
/// merges them: they come back ordered by key and offset (a key read twice
/// comes back at its later offset last), bytes intact, and the
/// runs' folder goes with the iterator.
#[test]
fn records_come_back_in_key_order_from_spilled_runs() {
    let dir = std::env::temp_dir().join(format!("restore-test-{}", Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut sorter = Sorter::new(&dir, "topic").unwrap();
    let mut pushed = Vec::new();
    for offset in 0..(3 * SORT_RUN as i64 + 7) {
        let key = match offset % 10 {
            0 => format!("again-{}", offset % 3),
            _ => Uuid::new_v4().to_string(),
        };
        let record = Keyed {
            key: key.into_bytes(),
            offset,
            value: offset.to_le_bytes().repeat(offset as usize % 5),
        };
        pushed.push(record.clone());
        sorter.push(record).unwrap();
    }
    let spilled = |dir: &std::path::Path| {
        std::fs::read_dir(dir)
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with("restore-")
            })
            .count()
    };
    assert_eq!(spilled(&dir), 1);
    let sorted: Vec<Keyed> = sorter.sorted().unwrap().map(Result::unwrap).collect();
    pushed.sort();
    assert_eq!(sorted, pushed);
    assert_eq!(spilled(&dir), 0);
    std::fs::remove_dir_all(&dir).unwrap();
}
