use std::path::{Path, PathBuf};
use std::process::Command;

use super::*;

fn committed_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("asyncapi.json")
}

#[test]
fn the_committed_document_matches_the_types() {
    let committed = std::fs::read_to_string(committed_path()).expect("events/asyncapi.json");
    let committed: Value = serde_json::from_str(&committed).expect("events/asyncapi.json is json");
    assert!(
        committed == document(),
        "events/asyncapi.json is out of date with the event and command types; regenerate it: \
         cargo run -p projections --bin replay -- asyncapi > events/asyncapi.json"
    );
}

#[test]
fn every_event_type_is_a_message_with_its_schema_and_version() {
    let doc = document();
    let samples = [
        ("OrderPlaced", "orders.events", 1),
        ("PaymentCaptured", "payments.events", 1),
        ("ShipmentScheduled", "shipments.events", 1),
        ("ShipmentReleased", "shipments.events", 1),
        ("StockReserved", "catalog.events", 1),
        ("SagaNeedsAttention", "sagas.events", 2),
        ("ProbeRecorded", "probes.events", 1),
    ];
    for (name, topic, version) in samples {
        let message = &doc["components"]["messages"][name];
        assert_eq!(message["x-schema-version"], version, "{name}");
        assert_eq!(message["headers"]["properties"]["ce_type"]["const"], name);
        let schema = &doc["components"]["schemas"][name];
        assert_eq!(
            schema["properties"]["type"]["const"], name,
            "{name}: {schema}"
        );
        let channel = topic.replace(".events", "Events");
        assert_eq!(doc["channels"][&channel]["address"], topic);
        assert!(
            doc["channels"][&channel]["messages"][name].is_object(),
            "{name}"
        );
    }
    // A field of a payload is in its schema, with its type.
    let placed = &doc["components"]["schemas"]["OrderPlaced"]["properties"];
    assert_eq!(placed["lines"]["type"], "array");
    let currency = &doc["components"]["schemas"]["Currency"];
    assert!(currency["enum"].as_array().unwrap().contains(&json!("KRW")));
}

#[test]
fn commands_and_replies_are_keyed_like_their_events() {
    let doc = document();
    for stream in ["orders", "payments", "shipments", "catalog", "sagas"] {
        for kind in ["Commands", "Replies", "Events"] {
            let channel = &doc["channels"][format!("{stream}{kind}")];
            assert_eq!(channel["x-partitioner"], "murmur2_random", "{stream}{kind}");
            assert_eq!(
                channel["bindings"]["kafka"]["partitions"],
                crate::kafka::PARTITIONS
            );
        }
    }
    assert!(doc["channels"]["probesCommands"].is_null());
    let order = &doc["components"]["messages"]["OrderCommandEnvelope"];
    assert_eq!(order["bindings"]["kafka"]["key"]["format"], "uuid");
}

/// Where `scripts/tools` installs the parser.
fn parser_dir() -> PathBuf {
    match std::env::var_os("ASYNCAPI_PARSER_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => {
            let home = std::env::var_os("HOME").unwrap_or_default();
            Path::new(&home).join(".cache/commerce-core/tools/asyncapi-parser-3.6.6")
        }
    }
}

#[test]
fn the_asyncapi_parser_finds_the_document_valid() {
    let dir = parser_dir();
    assert!(
        dir.join("node_modules/@asyncapi/parser").is_dir(),
        "@asyncapi/parser is not installed in {}; run scripts/tools (scripts/test does)",
        dir.display()
    );
    let file = std::env::temp_dir().join(format!("asyncapi-{}.json", std::process::id()));
    std::fs::write(&file, render()).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/asyncapi-check.js");
    let out = Command::new("node")
        .arg(&script)
        .arg(&file)
        .env("NODE_PATH", dir.join("node_modules"))
        .output()
        .expect("running node");
    let _ = std::fs::remove_file(&file);
    let report = String::from_utf8_lossy(&out.stdout);
    let errors = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the parser refused the document:\n{report}\n{errors}"
    );
    assert!(report.contains("valid AsyncAPI 3.0.0"), "{report}");
}
