//! The load generator.
//!
//! Closed loop ([`closed_loop`]): `concurrency` workers each send the next
//! request as soon as the previous one answers; this finds the maximum
//! throughput, and its latencies include the queueing that maximum implies.
//!
//! Open loop ([`open_loop`]): requests are scheduled at a fixed rate whatever
//! the answers do, and each latency is measured from the request's scheduled
//! send time, not from when it was actually sent. A stalled server therefore
//! shows up as the stall it is instead of as one slow request followed by
//! silence (coordinated omission).

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::procstat::CpuWatch;
use crate::stats::{Latency, Measured, Recorder};

/// Runs `op` from `concurrency` workers for `warmup + duration`; only
/// operations started after the warm-up are counted.
pub async fn closed_loop<F, Fut>(
    concurrency: usize,
    warmup: Duration,
    duration: Duration,
    services: &[(String, u32)],
    op: F,
) -> Measured
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = bool> + Send + 'static,
{
    closed_loop_upto(concurrency, warmup, duration, u64::MAX, services, op).await
}

/// [`closed_loop`] that also ends once `op` has been started `most` times
/// (counting the warm-up's), for operations that can run only so often:
/// the rate is then over the time they took.
pub async fn closed_loop_upto<F, Fut>(
    concurrency: usize,
    warmup: Duration,
    duration: Duration,
    most: u64,
    services: &[(String, u32)],
    op: F,
) -> Measured
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = bool> + Send + 'static,
{
    let op = Arc::new(op);
    let counter = Arc::new(AtomicU64::new(0));
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let recorder = Recorder::new();
    let from = Instant::now() + warmup;
    let end = from + duration;
    let mut workers = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        let (op, counter, ok, failed, recorder) = (
            op.clone(),
            counter.clone(),
            ok.clone(),
            failed.clone(),
            recorder.clone(),
        );
        workers.push(tokio::spawn(async move {
            loop {
                let sent = Instant::now();
                if sent >= end {
                    break;
                }
                let i = counter.fetch_add(1, Ordering::Relaxed);
                if i >= most {
                    break;
                }
                let success = op(i).await;
                if sent < from {
                    continue;
                }
                if success {
                    recorder.record(sent.elapsed());
                    ok.fetch_add(1, Ordering::Relaxed);
                } else {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    tokio::time::sleep_until(from).await;
    let watch = CpuWatch::start(services);
    futures::future::join_all(workers).await;
    let elapsed = from.elapsed();
    let mut m = Measured::new(
        ok.load(Ordering::Relaxed),
        failed.load(Ordering::Relaxed),
        elapsed,
        Some(&recorder.snapshot()),
    );
    watch.finish(&mut m);
    m
}

/// Schedules `op` at `rate` per second for `duration`, with at most
/// `max_in_flight` outstanding; latency counts from the scheduled time,
/// and how late each request started (the load generator's own share of
/// it: its runtime, the in-flight bound) is recorded beside it.
pub async fn open_loop<F, Fut>(
    rate: f64,
    duration: Duration,
    max_in_flight: usize,
    services: &[(String, u32)],
    op: F,
) -> Measured
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = bool> + Send + 'static,
{
    let op = Arc::new(op);
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let recorder = Recorder::new();
    let late = Recorder::new();
    let slot_waits = Recorder::new();
    let permits = Arc::new(Semaphore::new(max_in_flight));
    let interval = Duration::from_secs_f64(1.0 / rate.max(0.001));
    let total = (rate * duration.as_secs_f64()).round().max(1.0) as u64;
    let watch = CpuWatch::start(services);
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(total as usize);
    // When the loop last stopped waiting for a free slot: a request
    // scheduled before then was held back by the slots, not by the load
    // generator.
    let mut blocked_until = start;
    for i in 0..total {
        let scheduled = start + interval.mul_f64(i as f64);
        tokio::time::sleep_until(scheduled).await;
        let timer_late = Instant::now().saturating_duration_since(scheduled.max(blocked_until));
        // Waiting for a permit delays this request; its latency still counts
        // from `scheduled`, so the wait is measured, not hidden. That wait is
        // the service's (every slot holds a request it has not answered), so
        // it is kept apart from the generator's own lateness (its timer and
        // its runtime starting the task).
        let full = permits.available_permits() == 0;
        let held = full || scheduled < blocked_until;
        let Ok(permit) = permits.clone().acquire_owned().await else {
            break;
        };
        if full {
            blocked_until = Instant::now();
        }
        if held {
            slot_waits.record(scheduled.elapsed());
        }
        let (op, ok, failed) = (op.clone(), ok.clone(), failed.clone());
        let (recorder, late) = (recorder.clone(), late.clone());
        let spawned = Instant::now();
        tasks.push(tokio::spawn(async move {
            late.record(timer_late + spawned.elapsed());
            let success = op(i).await;
            drop(permit);
            if success {
                recorder.record(scheduled.elapsed());
                ok.fetch_add(1, Ordering::Relaxed);
            } else {
                failed.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    futures::future::join_all(tasks).await;
    let mut m = Measured::new(
        ok.load(Ordering::Relaxed),
        failed.load(Ordering::Relaxed),
        start.elapsed(),
        Some(&recorder.snapshot()),
    );
    m.offered_rate = Some(rate);
    m.started_late_ms = Latency::of(&late.snapshot()).map(Box::new);
    let waits = slot_waits.snapshot();
    m.slot_waits = (!waits.is_empty()).then(|| (waits.len(), waits.max() as f64 / 1_000.0));
    watch.finish(&mut m);
    m
}

/// The HTTP client of every phase: keep-alive connections, no Nagle delay.
pub fn http_client(connections: usize) -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(connections.max(1))
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(30))
        .build()
        .expect("building the http client")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn open_loop_counts_a_stall_from_the_scheduled_time() {
        // One in-flight slot and a 50 ms operation at 100/s: requests queue
        // behind each other, and the latencies must grow with the queue.
        let m = open_loop(100.0, Duration::from_millis(200), 1, &[], |_| async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            true
        })
        .await;
        assert_eq!(m.ops, 20);
        let latency = m.latency_ms.unwrap();
        assert!(latency.max > 500.0, "{latency:?}");
        // The last requests waited for the slot for nearly all of their
        // latency: the operation's delay, not the load generator's.
        let (waits, longest) = m.slot_waits.unwrap();
        assert!(waits >= 15 && longest > 450.0, "{waits} {longest}");
        let late = m.started_late_ms.unwrap();
        assert!(late.max < 100.0, "{late:?}");
    }

    #[tokio::test]
    async fn a_stalled_load_generator_is_its_own_lateness_not_a_wait_for_slots() {
        // One request blocks the test's only runtime thread for 50 ms, as a
        // starved load generator would be: the requests scheduled meanwhile
        // start late, with slots to spare.
        let m = open_loop(
            1000.0,
            Duration::from_millis(200),
            64,
            &[],
            |i| async move {
                if i == 20 {
                    std::thread::sleep(Duration::from_millis(50));
                }
                true
            },
        )
        .await;
        assert_eq!(m.slot_waits, None);
        let late = m.started_late_ms.unwrap();
        assert!(late.max > 40.0, "{late:?}");
    }

    #[tokio::test]
    async fn closed_loop_skips_the_warmup() {
        let m = closed_loop(
            2,
            Duration::from_millis(50),
            Duration::from_millis(100),
            &[],
            |_| async {
                tokio::time::sleep(Duration::from_millis(10)).await;
                true
            },
        )
        .await;
        assert!(m.ops >= 10 && m.ops <= 24, "{m:?}");
        assert_eq!(m.errors, 0);
    }

    #[tokio::test]
    async fn closed_loop_upto_ends_when_the_operations_run_out() {
        let started = Instant::now();
        let m = closed_loop_upto(
            4,
            Duration::from_millis(20),
            Duration::from_secs(10),
            100,
            &[],
            |_| async {
                tokio::time::sleep(Duration::from_millis(1)).await;
                true
            },
        )
        .await;
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "ran the whole duration"
        );
        // The warm-up's operations are among the 100, but not counted.
        assert!(m.ops > 0 && m.ops < 100, "{m:?}");
        assert_eq!(m.errors, 0);
    }
}
