//! Architecture invariants that a test holds rather than prose, in the manner
//! of rust-analyzer's tidy checks. They read the sources, so they need no
//! stack:
//! - the pure domain (aggregates, the saga machine, the event types) names
//!   no runtime, database, broker, HTTP or cache crate;
//! - binaries are shims that parse flags and call a library's `run`;
//! - source files stay under 400 lines, except those listed below, which may
//!   not grow;
//! - every library starts with its module map (`//!` prose);
//! - the query API reaches the projector's crate only through its read
//!   facade, `projections::read`, which re-exports no writer.

use std::path::{Path, PathBuf};

/// Folders whose code must stay synchronous and free of I/O.
const DOMAIN: &[&str] = &[
    "command/src/aggregate",
    "sagas/src/machine",
    "events/src/domain",
];

/// Crates the domain may not name.
const ADAPTER_CRATES: &[&str] = &[
    "tokio", "sqlx", "rdkafka", "axum", "redis", "reqwest", "hyper",
];

/// Longest a `main.rs` or `src/bin/*.rs` may be.
const SHIM_LINES: usize = 70;

const FILE_LINES: usize = 400;

/// Files allowed past `FILE_LINES`, each with the length it may not exceed.
/// Shrink a file under the limit and its entry must go.
const LONG_FILES: &[(&str, usize)] = &[
    ("tests/src/lib.rs", 541),
    ("command/src/processor/mod.rs", 440),
    ("events/src/domain/tests/samples.rs", 414),
];

const CRATES: &[&str] = &[
    "events",
    "command",
    "sagas",
    "projections",
    "query-api",
    "tests",
    "bench",
];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Third-party code kept in the tree (a patched crate), not ours to hold
/// to these rules.
const VENDORED: &str = "events/vendor";

/// Every `.rs` file under `dir` but [`VENDORED`], as paths relative to the
/// repository root.
fn rust_files(dir: &str) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        for entry in entries {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                if path == root.join(VENDORED) {
                    continue;
                }
                walk(root, &path, out);
            } else if path.extension().is_some_and(|ext| ext == "rs") {
                let relative = path.strip_prefix(root).expect("under the root");
                out.push(relative.to_string_lossy().replace('\\', "/"));
            }
        }
    }
    let root = root();
    let mut files = Vec::new();
    walk(&root, &root.join(dir), &mut files);
    files.sort();
    files
}

fn read(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// `source` without its `//` comments (doc comments included).
fn code_of(source: &str) -> String {
    source
        .lines()
        .map(|line| line.split("//").next().unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n")
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// The adapter crates a source text names outside comments (`tokio::`,
/// `use sqlx;`, `rdkafka::{..}`).
fn adapter_crates_named(source: &str) -> Vec<&'static str> {
    let code = code_of(source);
    ADAPTER_CRATES
        .iter()
        .copied()
        .filter(|name| {
            code.match_indices(name).any(|(at, _)| {
                let before = code[..at].chars().next_back();
                let after = &code[at + name.len()..];
                before.is_none_or(|c| !is_ident(c))
                    && (after.starts_with("::") || after.starts_with(';'))
            })
        })
        .collect()
}

#[test]
fn the_domain_names_no_adapter_crate() {
    let offenders: Vec<String> = DOMAIN
        .iter()
        .flat_map(|dir| rust_files(dir))
        .filter_map(|file| {
            let named = adapter_crates_named(&read(&file));
            (!named.is_empty()).then(|| format!("{file}: {}", named.join(", ")))
        })
        .collect();
    assert!(
        offenders.is_empty(),
        "the pure domain names adapter crates:\n{}",
        offenders.join("\n")
    );
}

#[test]
fn the_import_check_sees_paths_and_ignores_comments_and_lookalikes() {
    assert_eq!(adapter_crates_named("use tokio::sync::Mutex;"), ["tokio"]);
    assert_eq!(adapter_crates_named("let x = sqlx::query(\"\");"), ["sqlx"]);
    assert_eq!(adapter_crates_named("extern crate redis;"), ["redis"]);
    assert!(adapter_crates_named("// tokio::spawn is not used here").is_empty());
    assert!(adapter_crates_named("use my_tokio::Thing; let redis_key = 1;").is_empty());
}

/// The paths into the `projections` crate a source text names outside
/// comments other than its read facade: `projections::views`, or
/// `projections::{` for a grouped import.
fn projections_paths_past_read(source: &str) -> Vec<String> {
    let code = code_of(source);
    code.match_indices("projections::")
        .filter(|(at, _)| code[..*at].chars().next_back().is_none_or(|c| !is_ident(c)))
        .filter_map(|(at, path)| {
            let rest = &code[at + path.len()..];
            let first: String = rest.chars().take_while(|c| is_ident(*c)).collect();
            match first.as_str() {
                "read" => None,
                "" => Some(format!("{path}{}", rest.chars().next().unwrap_or(' '))),
                _ => Some(format!("{path}{first}")),
            }
        })
        .collect()
}

#[test]
fn the_query_api_uses_only_the_read_side_of_projections() {
    let offenders: Vec<String> = rust_files("query-api/src")
        .into_iter()
        .filter_map(|file| {
            let paths = projections_paths_past_read(&read(&file));
            (!paths.is_empty()).then(|| format!("{file}: {}", paths.join(", ")))
        })
        .collect();
    assert!(
        offenders.is_empty(),
        "the query API reaches past `projections::read` (to writers it must not call); \
         re-export what it reads there instead:\n{}",
        offenders.join("\n")
    );
}

#[test]
fn the_facade_check_sees_other_paths_and_ignores_comments_and_lookalikes() {
    let past = projections_paths_past_read;
    assert_eq!(
        past("use projections::views::orders;"),
        ["projections::views"]
    );
    assert_eq!(
        past("projections::db::connect_lazy(url)"),
        ["projections::db"]
    );
    assert_eq!(past("use projections::{read, views};"), ["projections::{"]);
    assert!(past("use projections::read::{self, Cache};").is_empty());
    assert!(past("projections::read::orders::history(&pool)").is_empty());
    assert!(past("// projections::views holds the writers").is_empty());
    assert!(past("let url = my_projections::url(); self.projections_url").is_empty());
    assert_eq!(past("projections::reader::x"), ["projections::reader"]);
}

#[test]
fn binaries_are_shims() {
    let long: Vec<String> = CRATES
        .iter()
        .flat_map(|krate| rust_files(&format!("{krate}/src")))
        .filter(|file| file.ends_with("/src/main.rs") || file.contains("/src/bin/"))
        .filter_map(|file| {
            let lines = read(&file).lines().count();
            (lines > SHIM_LINES).then(|| format!("{file}: {lines} lines"))
        })
        .collect();
    assert!(
        long.is_empty(),
        "binaries longer than {SHIM_LINES} lines; move the logic into the library:\n{}",
        long.join("\n")
    );
}

#[test]
fn files_stay_short_and_long_ones_do_not_grow() {
    let mut problems = Vec::new();
    for file in CRATES.iter().flat_map(|krate| rust_files(krate)) {
        if file.contains("/target/") {
            continue;
        }
        let lines = read(&file).lines().count();
        match LONG_FILES.iter().find(|(name, _)| *name == file) {
            Some((_, ceiling)) if lines > *ceiling => {
                problems.push(format!(
                    "{file}: {lines} lines, grew past its {ceiling}; split it"
                ));
            }
            Some(_) if lines <= FILE_LINES => {
                problems.push(format!(
                    "{file}: {lines} lines now; remove it from LONG_FILES"
                ));
            }
            None if lines > FILE_LINES => {
                problems.push(format!(
                    "{file}: {lines} lines, over {FILE_LINES}; split it"
                ));
            }
            _ => {}
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn every_library_starts_with_its_module_map() {
    let bare: Vec<&str> = CRATES
        .iter()
        .copied()
        .filter(|krate| !read(&format!("{krate}/src/lib.rs")).starts_with("//!"))
        .collect();
    assert!(bare.is_empty(), "lib.rs without `//!` prose: {bare:?}");
}
