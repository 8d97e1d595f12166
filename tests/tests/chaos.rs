//! The short chaos run (`scripts/chaos` runs the long one): two instances
//! of every service, orders on every sandbox path, and a nemesis killing
//! and pausing instances, the broker, PostgreSQL and Redis. Every count in
//! the table must be zero; a failure prints the seed to replay it with.
//!
//! This binary restarts the shared stack's parts, so it holds a single test.

use tests::TestEnv;
use tests::chaos::{self, Binaries, Plan};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_lose_duplicate_and_oversell_nothing() {
    let env = TestEnv::new();
    let plan = Plan::from_env();
    let binaries = Binaries {
        command: env!("CARGO_BIN_EXE_command-service"),
        sagas: env!("CARGO_BIN_EXE_sagas-service"),
        projections: env!("CARGO_BIN_EXE_projections-service"),
        query: env!("CARGO_BIN_EXE_query-api-service"),
    };
    let table = chaos::run(&env, binaries, &plan).await;
    println!("{table}");
    assert!(
        table.is_clean(),
        "chaos run with seed {} broke invariants:\n{table}",
        plan.seed
    );
}
