//! The instance folder's sweep.

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
