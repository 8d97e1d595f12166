//! A service a phase starts on its own (the restore phase's command
//! service, the catch-up projector): from `--bin-dir`, on a free local port,
//! over the run's topics, in development mode as `scripts/bench` starts the
//! others, its stderr appended to a log in the temporary directory; killed
//! when dropped.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;

use anyhow::Context;
use tokio::process::Command;

use crate::config::RunArgs;

pub struct Child {
    pub process: tokio::process::Child,
    pub pid: u32,
    pub addr: SocketAddr,
    /// Where its stderr goes, for error messages.
    pub log: PathBuf,
}

/// Starts `binary` with the common flags, `flags` and the environment
/// variables `vars`; `log` names its log file in the temporary directory.
pub fn start(
    args: &RunArgs,
    binary: &str,
    log: &str,
    flags: &[&str],
    vars: &[(&str, &str)],
) -> anyhow::Result<Child> {
    let path = args.bin_dir.join(binary);
    anyhow::ensure!(path.exists(), "{} is missing", path.display());
    let addr = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let log = std::env::temp_dir().join(log);
    let stderr = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)?;
    let process = Command::new(&path)
        .args(["--http-addr", &addr.to_string()])
        .args(["--kafka-brokers", &args.kafka_args.brokers])
        .args(["--topic-prefix", &args.kafka_args.topic_prefix])
        .args([
            "--kafka-partitions",
            &args.kafka_args.partitions.to_string(),
        ])
        .arg("--dev")
        .args(flags)
        .envs(vars.iter().copied())
        .stdout(Stdio::null())
        .stderr(stderr)
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {binary}"))?;
    let pid = process.id().with_context(|| format!("{binary}'s pid"))?;
    Ok(Child {
        process,
        pid,
        addr,
        log,
    })
}
