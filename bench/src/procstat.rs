//! CPU time and resident memory of processes, read from `/proc`.

use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::stats::Measured;

/// Clock ticks per second of `/proc/<pid>/stat` (USER_HZ, 100 on Linux).
const TICKS_PER_SECOND: f64 = 100.0;

/// User plus system CPU seconds of `pid` (this process when `None`).
pub fn cpu_seconds(pid: Option<u32>) -> Option<f64> {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/stat"),
        None => "/proc/self/stat".to_owned(),
    };
    let stat = std::fs::read_to_string(path).ok()?;
    // The command name may contain spaces; the fields after it do not.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after `)`.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / TICKS_PER_SECOND)
}

/// Resident memory of a process, now and at its peak.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Memory {
    pub service: String,
    pub pid: u32,
    pub rss_mib: f64,
    pub peak_rss_mib: f64,
    pub cpu_seconds: f64,
}

pub fn memory(service: &str, pid: u32) -> Option<Memory> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib = |name: &str| -> Option<f64> {
        let line = status.lines().find(|l| l.starts_with(name))?;
        line.split_whitespace().nth(1)?.parse().ok()
    };
    Some(Memory {
        service: service.to_owned(),
        pid,
        rss_mib: kib("VmRSS:")? / 1024.0,
        peak_rss_mib: kib("VmHWM:")? / 1024.0,
        cpu_seconds: cpu_seconds(Some(pid))?,
    })
}

/// Busy CPU seconds of the whole machine (every core, every process: the
/// other users of the machine included), from the first line of `/proc/stat`.
pub fn machine_busy_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let fields: Vec<f64> = stat
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal: all but idle and iowait.
    let busy: f64 = fields
        .iter()
        .take(8)
        .enumerate()
        .filter(|(i, _)| *i != 3 && *i != 4)
        .map(|(_, v)| v)
        .sum();
    Some(busy / TICKS_PER_SECOND)
}

/// CPU used by this process, the services and the machine during one phase.
pub struct CpuWatch {
    started: Instant,
    own: Option<f64>,
    machine: Option<f64>,
    services: Vec<(String, u32, Option<f64>)>,
}

impl CpuWatch {
    pub fn start(services: &[(String, u32)]) -> CpuWatch {
        CpuWatch {
            started: Instant::now(),
            own: cpu_seconds(None),
            machine: machine_busy_seconds(),
            services: services
                .iter()
                .map(|(name, pid)| (name.clone(), *pid, cpu_seconds(Some(*pid))))
                .collect(),
        }
    }

    /// Writes the cores used since `start` into `m`.
    pub fn finish(self, m: &mut Measured) {
        let wall = self.started.elapsed().as_secs_f64().max(1e-9);
        let cores = |before: Option<f64>, pid: Option<u32>| -> Option<f64> {
            Some((cpu_seconds(pid)? - before?) / wall)
        };
        m.loadgen_cores = cores(self.own, None);
        m.machine_cores = self
            .machine
            .zip(machine_busy_seconds())
            .map(|(before, after)| (after - before) / wall);
        m.service_cores = self
            .services
            .into_iter()
            .filter_map(|(name, pid, before)| Some((name, cores(before, Some(pid))?)))
            .collect();
    }
}

/// Runs `work` and writes the CPU it took (this process, the machine) into
/// its result, unless the work measured its own window already.
pub async fn watched<F>(work: F) -> anyhow::Result<Measured>
where
    F: std::future::Future<Output = anyhow::Result<Measured>>,
{
    let watch = CpuWatch::start(&[]);
    let mut m = work.await?;
    if m.loadgen_cores.is_none() {
        watch.finish(&mut m);
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        assert!(cpu_seconds(None).is_some());
        assert!(machine_busy_seconds().is_some_and(|s| s > 0.0));
        let me = memory("self", std::process::id()).unwrap();
        assert!(me.rss_mib > 0.0 && me.peak_rss_mib >= me.rss_mib);
    }
}
