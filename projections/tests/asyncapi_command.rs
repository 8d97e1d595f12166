//! `replay asyncapi` prints exactly the committed `events/asyncapi.json`, so
//! the command the README gives regenerates it.

use std::process::Command;

#[test]
fn replay_asyncapi_prints_the_committed_document() {
    let out = Command::new(env!("CARGO_BIN_EXE_replay"))
        .arg("asyncapi")
        .output()
        .expect("running replay asyncapi");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json on stdout");
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../events/asyncapi.json");
    let committed: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("events/asyncapi.json"))
            .expect("the committed document is json");
    assert!(
        printed == committed,
        "replay asyncapi and events/asyncapi.json differ"
    );
    assert_eq!(printed["asyncapi"], "3.0.0");
}
