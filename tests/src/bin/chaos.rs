//! The chaos run as a program (`scripts/chaos`): two instances of every
//! service, orders on every sandbox path, a seeded nemesis, and the table of
//! invariants; exits 1 when a count is not zero. The service binaries are
//! this program's siblings in the cargo target directory.

use std::process::ExitCode;

use tests::TestEnv;
use tests::chaos::{self, Binaries, Plan};

fn sibling(name: &str) -> anyhow::Result<&'static str> {
    let exe = std::env::current_exe()?;
    let path = exe.with_file_name(name);
    anyhow::ensure!(path.exists(), "{} is not built", path.display());
    Ok(Box::leak(
        path.to_string_lossy().into_owned().into_boxed_str(),
    ))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<ExitCode> {
    let binaries = Binaries {
        command: sibling("command-service")?,
        sagas: sibling("sagas-service")?,
        projections: sibling("projections-service")?,
        query: sibling("query-api-service")?,
    };
    let env = TestEnv::new();
    let plan = Plan::from_env();
    let table = chaos::run(&env, binaries, &plan).await;
    println!("{table}");
    drop(env);
    if !table.is_clean() {
        eprintln!(
            "chaos: the run broke invariants; replay it with CHAOS_SEED={}",
            plan.seed
        );
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}
