//! The machine a run was measured on, read from `/proc`.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Machine {
    pub cpu_model: String,
    pub cores: usize,
    pub memory_gib: f64,
    pub kernel: String,
    /// 1, 5 and 15 minute load averages when the report was written.
    pub load_average: String,
}

impl Machine {
    pub fn read() -> Machine {
        let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
        let cpuinfo = read("/proc/cpuinfo");
        let cpu_model = cpuinfo
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split_once(':'))
            .map_or("unknown", |(_, v)| v.trim())
            .to_owned();
        let memory_kib: f64 = read("/proc/meminfo")
            .lines()
            .find(|l| l.starts_with("MemTotal:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0);
        let load = read("/proc/loadavg");
        Machine {
            cpu_model,
            cores: std::thread::available_parallelism().map_or(0, |n| n.get()),
            memory_gib: memory_kib / 1024.0 / 1024.0,
            kernel: read("/proc/sys/kernel/osrelease").trim().to_owned(),
            load_average: load
                .split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" "),
        }
    }

    pub fn describe(&self) -> String {
        format!(
            "{} cores ({}), {:.0} GiB RAM, Linux {}, load average {} at the end; \
             Kafka, PostgreSQL, Redis, the four services and the load generator share these cores",
            self.cores, self.cpu_model, self.memory_gib, self.kernel, self.load_average
        )
    }
}
