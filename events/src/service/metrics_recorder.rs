//! The process-wide Prometheus recorder that `/metrics` renders, and the
//! upkeep that keeps its histograms from growing with every sample.

use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// The process-wide Prometheus recorder, installed on first use.
pub fn metrics_handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets(&[
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
            ])
            .expect("static bucket list is not empty")
            .build_recorder();
        let handle = recorder.handle();
        // Another recorder may already be installed (a test harness); ours then
        // still renders what it sees through the handle.
        drop(metrics::set_global_recorder(recorder));
        spawn_upkeep(handle.clone());
        handle
    })
}

/// How often histogram samples are folded into their buckets.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// Folds the recorded histogram samples into their buckets every
/// [`UPKEEP_EVERY`]. A recorder built with `build_recorder` keeps every
/// sample until it is rendered, so a service nobody scrapes grew by each
/// sample it recorded: the command service by about 100 bytes an order,
/// 173 MiB after 1,000,000 orders (BENCHMARKS.md). A thread, not a task:
/// the handle may be first used outside a runtime.
fn spawn_upkeep(handle: PrometheusHandle) {
    let spawned = std::thread::Builder::new()
        .name("metrics-upkeep".into())
        .spawn(move || {
            loop {
                std::thread::sleep(UPKEEP_EVERY);
                handle.run_upkeep();
            }
        });
    if let Err(error) = spawned {
        tracing::warn!(%error, "the metrics upkeep thread did not start: histograms grow until scraped");
    }
}

#[cfg(test)]
mod tests {
    /// The threads of this process by name.
    #[cfg(target_os = "linux")]
    fn thread_names() -> Vec<String> {
        std::fs::read_dir("/proc/self/task")
            .unwrap()
            .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
            .map(|name| name.trim().to_owned())
            .collect()
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn the_recorder_comes_with_its_upkeep_thread() {
        super::metrics_handle();
        // A new thread takes its name once it runs.
        let named = (0..100).any(|_| {
            std::thread::sleep(std::time::Duration::from_millis(10));
            thread_names().iter().any(|name| name == "metrics-upkeep")
        });
        assert!(named, "{:?}", thread_names());
    }
}
