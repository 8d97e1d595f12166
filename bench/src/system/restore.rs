//! `bench run --phases restore`: the command service's resident memory while
//! it takes many orders, and how long its processors take to restore their
//! partitions after a SIGKILL (issue 11's bounds: 100 MiB after 1,000,000
//! orders; a restore within 5 s).
//!
//! The phase starts a command service of its own from `--bin-dir`, with no
//! saga service, so every order stays placed and only the command side's
//! state grows: one order aggregate, one snapshot and one deduplication
//! outcome per order. It places `--orders` orders closed loop and samples
//! the service's memory at every tenth of them; then it kills the service
//! with SIGKILL and starts it again over the same topics [`RESTARTS`] times,
//! each time timing the start until ready, reading from `/metrics` what
//! the restore read and how long it took, and reading its memory once ready
//! and again [`SETTLE`] later. The first half of the starts find
//! the local tables the killed process left (a restart on the same host,
//! which resumes from them); the second half start from an empty state
//! folder (another host, which restores from the snapshots).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use super::{child, commands, metrics};
use crate::baselines::progress;
use crate::config::RunArgs;
use crate::procstat::{self, Memory};

/// Kills and restarts after the orders are placed.
const RESTARTS: usize = 4;

/// Memory samples while the orders are placed.
const SAMPLES: u64 = 10;

/// How long after a restart the memory is read a second time: what the
/// service holds once idle, after its allocator has had time to give back
/// what the restore freed (jemalloc's decay is 10 s).
const SETTLE: Duration = Duration::from_secs(15);

/// `--phases restore`: the figures above, printed and written to
/// `<out_dir>/<date>-restore-<mode>.md`.
pub async fn run(args: &RunArgs) -> anyhow::Result<()> {
    let state_dir = std::env::temp_dir().join(format!("bench-restore-{}", uuid::Uuid::new_v4()));
    let measured = measure(args, &state_dir).await;
    // The service's local state goes whether or not the phase got through.
    std::fs::remove_dir_all(&state_dir).ok();
    measured
}

async fn measure(args: &RunArgs, state_dir: &Path) -> anyhow::Result<()> {
    let orders = args
        .orders
        .unwrap_or(if args.quick() { 100_000 } else { 1_000_000 });
    let mut service = Service::start(args, state_dir).await?;
    let ctx = super::context(&RunArgs {
        command_url: service.url.clone(),
        ..args.clone()
    })?;
    progress("restore: seeding the catalog");
    super::seed_catalog(&ctx).await?;
    progress(&format!("restore: placing {orders} orders, closed loop"));
    let samples = place(&ctx, &service, orders).await;
    let statuses = ctx.take_statuses();
    let mut restarts = Vec::new();
    for i in 1..=RESTARTS {
        let emptied = i > RESTARTS / 2;
        let folder = if emptied { "emptied" } else { "kept" };
        progress(&format!(
            "restore: SIGKILL and restart {i} of {RESTARTS}, state folder {folder}"
        ));
        service.child.process.kill().await.ok();
        if emptied {
            std::fs::remove_dir_all(state_dir).ok();
        }
        service = Service::start(args, state_dir).await?;
        let scraped = metrics::scrape(&ctx.http, &service.url).await;
        let value = |name: &str| scraped.get(name).copied().unwrap_or(0.0);
        let longest = |name: &str| {
            scraped
                .iter()
                .filter(|(series, _)| series.starts_with(&format!("{name}{{")))
                .map(|(_, seconds)| *seconds)
                .fold(0.0, f64::max)
        };
        let memory = procstat::memory("command", service.child.pid);
        tokio::time::sleep(SETTLE).await;
        restarts.push(Restart {
            folder,
            resumed: value("command_restore_resumed"),
            open: value("command_state_file_open_seconds_sum"),
            ready: service.ready,
            longest_restore: longest("command_restore_seconds"),
            snapshots: value("command_restore_snapshots"),
            events_read: value("command_restore_events_read"),
            memory,
            settled: procstat::memory("command", service.child.pid),
        });
    }
    service.child.process.kill().await.ok();
    let text = markdown(&args.invocation, orders, &statuses, &samples, &restarts);
    std::fs::create_dir_all(&args.out_dir)?;
    let name = format!(
        "{}-restore-{}.md",
        chrono::Utc::now().format("%Y-%m-%dT%H%M%SZ"),
        if args.quick() { "quick" } else { "full" }
    );
    std::fs::write(args.out_dir.join(name), &text)?;
    println!("{text}");
    Ok(())
}

/// A command service started by the phase, ready.
struct Service {
    child: child::Child,
    url: String,
    /// From the start of the process until `/health/ready` answered 200:
    /// joining the group (as the killed lanes' static members, at once)
    /// and restoring every partition.
    ready: Duration,
}

impl Service {
    async fn start(args: &RunArgs, state_dir: &Path) -> anyhow::Result<Service> {
        let started = Instant::now();
        let state_dir = state_dir.to_string_lossy();
        let mut child = child::start(
            args,
            "command",
            "bench-restore-command.log",
            &[
                "--instance-id",
                "bench-restore",
                "--state-dir",
                &state_dir,
                // No per-caller rate limit: the load comes from one address.
                "--rate-per-second",
                "0",
            ],
            &[],
        )?;
        let url = format!("http://{}", child.addr);
        let http = reqwest::Client::new();
        let ready = loop {
            if let Some(status) = child.process.try_wait()? {
                anyhow::bail!(
                    "the command service exited with {status} (log: {})",
                    child.log.display()
                );
            }
            let answer = http.get(format!("{url}/health/ready")).send().await;
            if answer.is_ok_and(|r| r.status().is_success()) {
                break started.elapsed();
            }
            anyhow::ensure!(
                started.elapsed() < READY_WITHIN,
                "the command service was not ready within {READY_WITHIN:?} (log: {})",
                child.log.display()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        Ok(Service { child, url, ready })
    }
}

/// Longer than a restore may take plus a session timeout (10 s), should the
/// lanes join as new members.
const READY_WITHIN: Duration = Duration::from_secs(300);

/// The service's memory after some number of orders.
struct Sample {
    orders: u64,
    elapsed: Duration,
    memory: Option<Memory>,
}

struct Restart {
    /// Whether the state folder was kept from the killed process or emptied.
    folder: &'static str,
    /// Partitions resumed from the tables left in it.
    resumed: f64,
    /// Seconds the service took to open its partitions' state files, summed.
    open: f64,
    ready: Duration,
    /// The longest restore of one partition (`command_restore_seconds`).
    longest_restore: f64,
    snapshots: f64,
    events_read: f64,
    memory: Option<Memory>,
    /// [`SETTLE`] later, the service idle.
    settled: Option<Memory>,
}

/// Places `orders` orders from `concurrency` workers and samples the
/// service's memory each time another tenth of them was answered.
async fn place(ctx: &Arc<super::Ctx>, service: &Service, orders: u64) -> Vec<Sample> {
    let next = Arc::new(AtomicU64::new(0));
    let answered = Arc::new(AtomicU64::new(0));
    let mut workers = Vec::new();
    for _ in 0..ctx.args.concurrency {
        let (ctx, next, answered) = (ctx.clone(), next.clone(), answered.clone());
        workers.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= orders {
                    break;
                }
                commands::place(&ctx, i).await;
                answered.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    let started = Instant::now();
    let mut samples = Vec::new();
    let step = orders.div_ceil(SAMPLES).max(1);
    let mut due = step;
    while due <= orders {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let done = answered.load(Ordering::Relaxed);
        if done >= due {
            samples.push(Sample {
                orders: done,
                elapsed: started.elapsed(),
                memory: procstat::memory("command", service.child.pid),
            });
            progress(&format!("restore: {done} orders answered"));
            due = (done / step + 1) * step;
        }
        if done >= orders {
            break;
        }
    }
    for worker in workers {
        worker.await.ok();
    }
    samples
}

fn mib(memory: &Option<Memory>) -> (String, String) {
    memory.as_ref().map_or(("?".into(), "?".into()), |m| {
        (
            format!("{:.1}", m.rss_mib),
            format!("{:.1}", m.peak_rss_mib),
        )
    })
}

fn markdown(
    invocation: &str,
    orders: u64,
    statuses: &str,
    samples: &[Sample],
    restarts: &[Restart],
) -> String {
    let mut out = format!(
        "# The command service's memory and restore\n\n`{invocation}`, {}\n\n\
         {orders} orders placed closed loop on a command service of its own \
         (no saga service: every order stays placed); {statuses}.\n\n\
         | orders answered | seconds | orders/s | RSS MiB | peak RSS MiB |\n|---|---|---|---|---|\n",
        chrono::Utc::now().format("%Y-%m-%d %H:%M UTC")
    );
    for s in samples {
        let (rss, peak) = mib(&s.memory);
        let secs = s.elapsed.as_secs_f64();
        out.push_str(&format!(
            "| {} | {secs:.0} | {:.0} | {rss} | {peak} |\n",
            s.orders,
            s.orders as f64 / secs.max(f64::EPSILON)
        ));
    }
    out.push_str(&format!(
        "\nThen SIGKILL and a start over the same topics, each time:\n\n\
         | restart | state folder | partitions resumed | state files open s (sum) | start to ready s | longest restore of a partition s | snapshots read | events read | RSS MiB once ready | RSS MiB {} s later |\n\
         |---|---|---|---|---|---|---|---|---|---|\n",
        SETTLE.as_secs()
    ));
    for (i, r) in restarts.iter().enumerate() {
        out.push_str(&format!(
            "| {} | {} | {:.0} | {:.2} | {:.2} | {:.2} | {:.0} | {:.0} | {} | {} |\n",
            i + 1,
            r.folder,
            r.resumed,
            r.open,
            r.ready.as_secs_f64(),
            r.longest_restore,
            r.snapshots,
            r.events_read,
            mib(&r.memory).0,
            mib(&r.settled).0
        ));
    }
    out.push_str(
        "\nStart to ready includes joining the group: the service's lanes are \
         static members, so the restarted ones replace the killed ones at once; \
         a partition's restore is the service's own `command_restore_seconds` \
         (each partition in a thread of its own).\n",
    );
    out
}
