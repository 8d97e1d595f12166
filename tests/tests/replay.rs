//! The replay CLI against the real stack: a rebuild swapped in during live
//! traffic, a rebuild killed halfway and run again, `verify` catching a
//! corrupted row, history, export/import, dead letters, and the one-line
//! errors with exit codes scripts can trust.

use std::process::Output;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use command::bus::KafkaBus;
use events::AggregateType;
use events::domain::{OrderEvent, OrderId};
use serde_json::Value;
use tests::views::{assert_views_equal_the_fold, expected_sales, traffic};
use tests::{TestEnv, eventually, log};

const SKUS: usize = 4;

fn sku(n: usize) -> String {
    format!("RP-{}", n % SKUS)
}

async fn create_items(bus: &KafkaBus) {
    traffic::create_items(bus, &(0..SKUS).map(sku).collect::<Vec<_>>()).await;
}

/// The `n`th order: one unit, ten customers.
async fn one_order(bus: &KafkaBus, n: usize) -> OrderId {
    traffic::one_order(bus, n, &format!("c{}", n % 10), &sku(n), 1).await
}

/// Sends orders `range` from `clients` concurrent clients.
async fn load(bus: &Arc<KafkaBus>, range: std::ops::Range<usize>, clients: usize) {
    let mut tasks = tokio::task::JoinSet::new();
    for client in 0..clients {
        let bus = bus.clone();
        let range = range.clone();
        tasks.spawn(async move {
            for n in range.skip(client).step_by(clients) {
                one_order(&bus, n).await;
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
}

async fn start(env: &TestEnv) -> Arc<KafkaBus> {
    env.spawn_command().await;
    env.spawn_projections().await;
    let bus = KafkaBus::start(env.kafka.clone(), env.shutdown.child_token())
        .await
        .unwrap();
    let bus = Arc::new(bus);
    create_items(&bus).await;
    bus
}

/// The replay CLI pointed at the test's slice of the stack (through the
/// environment variables its flags read, so a test can override one).
fn cli(env: &TestEnv, args: &[&str]) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_replay-cli"));
    command
        .args(args)
        .env("DATABASE_URL", &env.views_db_url)
        .env("REDIS_URL", &env.redis_url)
        .env("KAFKA_BROKERS", &env.kafka.brokers)
        .env("TOPIC_PREFIX", &env.kafka.topic_prefix)
        .env("KAFKA_PARTITIONS", env.kafka.partitions.to_string())
        .kill_on_drop(true);
    command
}

/// Runs the replay CLI to its end.
async fn replay(env: &TestEnv, args: &[&str]) -> Output {
    cli(env, args)
        .output()
        .await
        .expect("running the replay cli")
}

fn code(output: &Output) -> i32 {
    output.status.code().expect("an exit code")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The JSON lines the CLI printed.
fn json_lines(output: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
        .collect()
}

async fn schemas(pool: &sqlx::PgPool) -> Vec<String> {
    sqlx::query_as::<_, (String,)>(
        "SELECT nspname::text FROM pg_namespace WHERE nspname LIKE 'replay%' ORDER BY 1",
    )
    .fetch_all(pool)
    .await
    .unwrap()
    .into_iter()
    .map(|(s,)| s)
    .collect()
}

#[tokio::test]
async fn a_rebuild_swapped_in_during_live_traffic_misses_no_event() {
    let env = TestEnv::new();
    let bus = start(&env).await;
    load(&bus, 0..300, 10).await;
    let pool = projections::db::connect_lazy(&env.views_db_url).unwrap();

    // Traffic keeps flowing until every view set is rebuilt and swapped.
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicUsize::new(0));
    let mut traffic = tokio::task::JoinSet::new();
    for client in 0..4 {
        let (bus, stop, sent) = (bus.clone(), stop.clone(), sent.clone());
        traffic.spawn(async move {
            let mut n = 1000 + client;
            while !stop.load(Ordering::Relaxed) {
                one_order(&bus, n).await;
                sent.fetch_add(1, Ordering::Relaxed);
                n += 4;
            }
        });
    }
    let before = sent.load(Ordering::Relaxed);
    let output = replay(
        &env,
        &[
            "rebuild",
            "--all",
            "--swap",
            "--batch-size=200",
            "--output=json",
        ],
    )
    .await;
    let during = sent.load(Ordering::Relaxed) - before;
    stop.store(true, Ordering::Relaxed);
    while let Some(done) = traffic.join_next().await {
        done.unwrap();
    }
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let reports = json_lines(&output);
    assert_eq!(
        reports.len(),
        projections::ViewSet::ALL.len(),
        "{reports:?}"
    );
    assert!(reports.iter().all(|r| r["swapped"] == true), "{reports:?}");
    assert!(during > 0, "orders kept coming during the rebuild");
    // And after the swap: the live projector writes into the new tables,
    // from the shadow's positions.
    load(&bus, 5000..5100, 4).await;

    assert_views_equal_the_fold(&env, &pool).await;
    assert_eq!(
        schemas(&pool).await,
        Vec::<String>::new(),
        "no shadow is left"
    );
    let (dead,): (i64,) = sqlx::query_as("SELECT count(*) FROM dead_letters")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(dead, 0);
}

/// Sum of the shadow's positions of the orders view set, if it exists yet.
async fn shadow_progress(pool: &sqlx::PgPool) -> i64 {
    sqlx::query_as::<_, (Option<i64>,)>(
        "SELECT sum(next_offset)::bigint FROM replay_orders.projection_positions",
    )
    .fetch_one(pool)
    .await
    .map(|(n,)| n.unwrap_or(0))
    .unwrap_or(0)
}

#[tokio::test]
async fn a_rebuild_killed_halfway_resumes_without_double_counting() {
    let env = TestEnv::new();
    let bus = start(&env).await;
    load(&bus, 0..1000, 20).await;
    let pool = projections::db::connect_lazy(&env.views_db_url).unwrap();
    assert_views_equal_the_fold(&env, &pool).await;
    // In offsets (commit markers included), as the positions count.
    let (total,): (i64,) = sqlx::query_as(
        "SELECT sum(next_offset)::bigint FROM projection_positions WHERE projection = 'orders'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();

    let mut child = cli(&env, &["rebuild", "orders", "--batch-size=5", "--quiet"])
        .spawn()
        .unwrap();
    let half = eventually(Duration::from_secs(60), || async {
        (shadow_progress(&pool).await >= total / 2).then_some(())
    })
    .await;
    child.start_kill().unwrap();
    child.wait().await.unwrap();
    assert!(half.is_some(), "the rebuild never got halfway");
    let done = shadow_progress(&pool).await;
    assert!(
        done < total * 9 / 10,
        "killed at {done} of {total} records: too late to prove anything"
    );

    // Run again: it resumes from the shadow's positions and swaps in.
    let output = replay(&env, &["rebuild", "orders", "--swap", "--output=json"]).await;
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let report = &json_lines(&output)[0];
    assert_eq!(report["resumed"], true, "{report}");
    assert!(report["events"].as_i64().unwrap() < total, "{report}");
    assert_views_equal_the_fold(&env, &pool).await;
    let (target,): (i32,) = sqlx::query_as(
        "SELECT attstattarget::int FROM pg_attribute
         WHERE attrelid = 'public.order_timeline'::regclass AND attname = 'detail'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(
        target, 0,
        "the swapped-in timeline kept its column's statistics target"
    );
    assert_eq!(
        expected_sales(&log::<OrderEvent>(&env, AggregateType::Order).await).0,
        400,
        "half the orders confirmed, a fifth of those cancelled"
    );
}

#[tokio::test]
async fn verify_finds_a_corrupted_row_and_a_swap_repairs_it() {
    let env = TestEnv::new();
    let bus = start(&env).await;
    load(&bus, 0..40, 4).await;
    let pool = projections::db::connect_lazy(&env.views_db_url).unwrap();
    assert_views_equal_the_fold(&env, &pool).await;

    let clean = replay(&env, &["verify", "catalog", "--output=json"]).await;
    assert_eq!(code(&clean), 0, "{}", stderr(&clean));
    assert_eq!(json_lines(&clean)[0]["differences"], 0);

    sqlx::query("UPDATE catalog_items SET on_hand = on_hand + 7 WHERE sku = 'RP-2'")
        .execute(&pool)
        .await
        .unwrap();
    let found = replay(&env, &["verify", "catalog", "--output=json"]).await;
    assert_eq!(code(&found), 1, "{}", stderr(&found));
    let report = &json_lines(&found)[0];
    assert_eq!(report["differences"], 1, "{report}");
    assert_eq!(report["shown"][0]["key"], "sku=RP-2");
    assert_eq!(report["shown"][0]["kind"], "differs");

    let swapped = replay(&env, &["rebuild", "catalog", "--swap", "--quiet"]).await;
    assert_eq!(code(&swapped), 0, "{}", stderr(&swapped));
    assert!(swapped.stdout.is_empty(), "quiet prints nothing");
    let again = replay(&env, &["verify", "catalog", "--quiet"]).await;
    assert_eq!(code(&again), 0, "{}", stderr(&again));
    assert_views_equal_the_fold(&env, &pool).await;

    // A `json` column compares by value: lines printed as PostgreSQL prints
    // a jsonb are no difference, other lines are.
    let reprint = "UPDATE orders SET lines = lines::jsonb::json;
        UPDATE orders SET lines = '[{\"sku\": \"RP-9\"}]'
        WHERE order_id = (SELECT order_id FROM orders LIMIT 1)";
    sqlx::raw_sql(reprint).execute(&pool).await.unwrap();
    let found = replay(&env, &["verify", "orders", "--output=json"]).await;
    assert_eq!(code(&found), 1, "{}", stderr(&found));
    let report = &json_lines(&found)[0];
    assert_eq!(report["differences"], 1, "{report}");
    assert_eq!(report["shown"][0]["table"], "orders", "{report}");
}

#[tokio::test]
async fn errors_are_one_line_with_exit_codes_scripts_can_trust() {
    let env = TestEnv::new();
    let bus = start(&env).await;
    load(&bus, 0..5, 1).await;
    let pool = projections::db::connect_lazy(&env.views_db_url).unwrap();
    assert_views_equal_the_fold(&env, &pool).await;

    let cases: [(&[&str], i32, &str); 3] = [
        (&["rebuild", "nonsense"], 4, "unknown view \"nonsense\""),
        (
            &["rebuild", "orders", "--from=2001-01-01T00:00:00Z", "--swap"],
            4,
            "is before the log of orders starts",
        ),
        (&["history", "widgets", "x"], 4, "unknown stream"),
    ];
    for (args, expected, message) in cases {
        let output = replay(&env, args).await;
        let err = stderr(&output);
        assert_eq!(code(&output), expected, "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains(message), "{err}");
    }
    let output = cli(&env, &["verify", "orders"])
        .env("KAFKA_BROKERS", "127.0.0.1:1")
        .output()
        .await
        .unwrap();
    assert_eq!(code(&output), 3, "{}", stderr(&output));
    assert!(stderr(&output).contains("kafka at 127.0.0.1:1 is unreachable"));
    let output = cli(&env, &["rebuild", "orders"])
        .env("DATABASE_URL", "postgres://postgres@127.0.0.1:1/nothing")
        .output()
        .await
        .unwrap();
    assert_eq!(code(&output), 3, "{}", stderr(&output));
    assert_eq!(stderr(&output).lines().count(), 1);
    // Nothing was left half made.
    assert_eq!(schemas(&pool).await, Vec::<String>::new());
}

#[tokio::test]
async fn history_export_and_import_move_an_aggregates_events() {
    let env = TestEnv::new();
    let bus = start(&env).await;
    let order = one_order(&bus, 0).await;
    load(&bus, 1..20, 2).await;
    let id = order.to_string();
    // The order's five events (placed, priced, confirmed, cancelled, ...).
    let expected = eventually(Duration::from_secs(30), || async {
        let events = log::<OrderEvent>(&env, AggregateType::Order).await;
        events.get(&id).filter(|e| e.len() == 4).cloned()
    })
    .await
    .expect("the order's events in the log");

    let output = replay(&env, &["history", "orders", &id, "--output=json"]).await;
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let lines = json_lines(&output);
    let sequences: Vec<i64> = lines
        .iter()
        .map(|l| l["meta"]["sequence"].as_i64().unwrap())
        .collect();
    assert_eq!(sequences, vec![1, 2, 3, 4]);
    let types: Vec<&str> = lines
        .iter()
        .map(|l| l["meta"]["event_type"].as_str().unwrap())
        .collect();
    let logged: Vec<&str> = expected
        .iter()
        .map(|(m, _)| m.event_type.as_str())
        .collect();
    assert_eq!(types, logged);

    let file = std::env::temp_dir().join(format!("replay-{}.jsonl", env.id));
    let file_arg = format!("--to={}", file.display());
    // A file left world-readable by someone else is narrowed, not reused as is.
    std::fs::write(&file, b"").unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let output = replay(&env, &["export", &file_arg, "--output=json"]).await;
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let exported = json_lines(&output)[0]["exported"].as_i64().unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "the export holds customers' data: {mode:o}");
    }

    let other = TestEnv::new();
    let from_arg = format!("--from={}", file.display());
    let output = replay(&other, &["import", &from_arg, "--output=json"]).await;
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    assert_eq!(
        json_lines(&output)[0]["imported"].as_i64().unwrap(),
        exported
    );
    let output = replay(&other, &["history", "orders", &id, "--output=json"]).await;
    let moved: Vec<Value> = json_lines(&output)
        .into_iter()
        .map(|l| l["meta"].clone())
        .collect();
    let original: Vec<Value> = lines.into_iter().map(|l| l["meta"].clone()).collect();
    assert_eq!(moved, original, "the same envelopes, in the same order");
    // A second import would append behind the first: refused.
    let output = replay(&other, &["import", &from_arg]).await;
    assert_eq!(code(&output), 4, "{}", stderr(&output));
    drop(std::fs::remove_file(&file));
}
