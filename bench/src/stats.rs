//! Latency histograms (HDR, microsecond resolution) and [`Measured`], the
//! record every measurement produces.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Percentiles of one latency distribution, in milliseconds.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct Latency {
    pub count: u64,
    pub mean: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
}

impl Latency {
    pub fn of(h: &Histogram<u64>) -> Option<Latency> {
        if h.is_empty() {
            return None;
        }
        let ms = |us: u64| us as f64 / 1000.0;
        Some(Latency {
            count: h.len(),
            mean: h.mean() / 1000.0,
            p50: ms(h.value_at_quantile(0.50)),
            p90: ms(h.value_at_quantile(0.90)),
            p99: ms(h.value_at_quantile(0.99)),
            p999: ms(h.value_at_quantile(0.999)),
            max: ms(h.max()),
        })
    }
}

/// What one measurement found.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Measured {
    /// Successful operations in the measured window.
    pub ops: u64,
    /// Failed operations (errors, timeouts, unexpected answers).
    pub errors: u64,
    pub seconds: f64,
    pub per_second: f64,
    pub latency_ms: Option<Latency>,
    /// CPU the benchmark process itself used, in cores (1.0 = one core busy).
    pub loadgen_cores: Option<f64>,
    /// CPU the whole machine used in the window, in cores (2.0 = saturated
    /// here), other users of the machine included.
    #[serde(default)]
    pub machine_cores: Option<f64>,
    /// CPU each service used in the window, in cores.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub service_cores: Vec<(String, f64)>,
    /// The offered rate of an open-loop phase, per second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offered_rate: Option<f64>,
    /// How late an open loop's requests started after their scheduled
    /// time, besides any wait for an in-flight slot: the load generator's
    /// own delay, which `latency_ms` includes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_late_ms: Option<Box<Latency>>,
    /// An open loop's requests held back because every in-flight slot was
    /// taken, and the latest of them in ms after its scheduled time: the
    /// service's unanswered requests, not the load generator's delay.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slot_waits: Option<(u64, f64)>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl Measured {
    pub fn new(ops: u64, errors: u64, elapsed: Duration, h: Option<&Histogram<u64>>) -> Measured {
        let seconds = elapsed.as_secs_f64().max(1e-9);
        Measured {
            ops,
            errors,
            seconds,
            per_second: ops as f64 / seconds,
            latency_ms: h.and_then(Latency::of),
            ..Measured::default()
        }
    }

    pub fn p99(&self) -> Option<f64> {
        self.latency_ms.map(|l| l.p99)
    }

    pub fn with_note(mut self, note: impl Into<String>) -> Measured {
        self.note = Some(note.into());
        self
    }
}

/// A histogram shared by concurrent tasks; values are recorded in microseconds.
#[derive(Clone)]
pub struct Recorder(Arc<Mutex<Histogram<u64>>>);

impl Default for Recorder {
    fn default() -> Self {
        Recorder::new()
    }
}

impl Recorder {
    pub fn new() -> Recorder {
        // 1 µs to 10 min, 3 significant digits.
        let h = Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid histogram bounds");
        Recorder(Arc::new(Mutex::new(h)))
    }

    pub fn record(&self, d: Duration) {
        let us = (d.as_micros() as u64).clamp(1, 600_000_000);
        if let Ok(mut h) = self.0.lock() {
            let _ = h.record(us);
        }
    }

    pub fn snapshot(&self) -> Histogram<u64> {
        self.0
            .lock()
            .map(|h| h.clone())
            .unwrap_or_else(|e| e.into_inner().clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_come_out_in_milliseconds() {
        let r = Recorder::new();
        for ms in 1..=100 {
            r.record(Duration::from_millis(ms));
        }
        let l = Latency::of(&r.snapshot()).unwrap();
        assert_eq!(l.count, 100);
        assert!((l.p50 - 50.0).abs() < 0.1, "{l:?}");
        assert!((l.p99 - 99.0).abs() < 0.1, "{l:?}");
        assert!((l.max - 100.0).abs() < 0.1, "{l:?}");
    }

    #[test]
    fn an_empty_histogram_has_no_latency() {
        assert!(Latency::of(&Recorder::new().snapshot()).is_none());
        let m = Measured::new(0, 0, Duration::from_secs(1), None);
        assert_eq!(m.per_second, 0.0);
    }
}
