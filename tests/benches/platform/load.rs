//! Open-loop load generation and the small statistics every scenario reports.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Mutex;

/// How long each rate step lasts.
pub const STEP: Duration = Duration::from_secs(5);
/// The latency target of the open-loop scenarios.
pub const P99_TARGET_MS: f64 = 50.0;

/// Latencies of one fixed-rate step.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LatencyReport {
    pub rate: u32,
    pub sent: usize,
    pub errors: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl LatencyReport {
    /// Holds the p99 target with under 0.1 % errors.
    pub fn within_target(&self) -> bool {
        self.p99_ms <= P99_TARGET_MS && (self.errors as f64) < 0.001 * self.sent as f64
    }

    /// So far past the target that higher rates are pointless.
    pub fn saturated(&self) -> bool {
        self.p99_ms > 10.0 * P99_TARGET_MS
    }
}

/// Summary statistics of a set of durations.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Percentiles {
    pub count: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Percentiles {
    pub fn of(mut samples: Vec<Duration>) -> Self {
        samples.sort();
        Self {
            count: samples.len(),
            p50_ms: percentile(&samples, 0.50),
            p99_ms: percentile(&samples, 0.99),
            max_ms: samples.last().map_or(0.0, |d| d.as_secs_f64() * 1000.0),
        }
    }
}

/// The `q` quantile of sorted samples, in milliseconds.
pub fn percentile(sorted: &[Duration], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let index = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[index].as_secs_f64() * 1000.0
}

/// Fires requests at `rate`/s for `duration`, each on its own schedule (latency counted from the
/// scheduled time, so a slow server cannot slow the generator down: no coordinated omission).
pub async fn open_loop_for(
    rate: u32,
    duration: Duration,
    request: impl Fn(usize) -> reqwest::RequestBuilder,
) -> LatencyReport {
    let latencies = Arc::new(Mutex::new(Vec::new()));
    let errors = Arc::new(AtomicUsize::new(0));
    let interval = Duration::from_secs_f64(1.0 / f64::from(rate));
    let total = (duration.as_secs_f64() * f64::from(rate)) as usize;
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(total);
    for i in 0..total {
        let scheduled = start + interval * i as u32;
        tokio::time::sleep_until(scheduled.into()).await;
        let pending = request(i);
        let (latencies, errors) = (latencies.clone(), errors.clone());
        tasks.push(tokio::spawn(async move {
            let ok = matches!(pending.send().await, Ok(r) if r.status().is_success());
            if !ok {
                errors.fetch_add(1, Ordering::Relaxed);
            }
            latencies.lock().await.push(scheduled.elapsed());
        }));
    }
    for task in tasks {
        let _ = task.await;
    }
    let samples = latencies.lock().await.clone();
    let stats = Percentiles::of(samples);
    LatencyReport {
        rate,
        sent: total,
        errors: errors.load(Ordering::Relaxed),
        p50_ms: stats.p50_ms,
        p99_ms: stats.p99_ms,
        max_ms: stats.max_ms,
    }
}

/// [`open_loop_for`] one [`STEP`].
pub async fn open_loop(
    rate: u32,
    request: impl Fn(usize) -> reqwest::RequestBuilder,
) -> LatencyReport {
    open_loop_for(rate, STEP, request).await
}

/// The highest rate whose step held the target.
pub fn best_rate(runs: &[LatencyReport]) -> u32 {
    runs.iter()
        .filter(|r| r.within_target())
        .map(|r| r.rate)
        .max()
        .unwrap_or(0)
}

/// A Markdown table of open-loop steps.
pub fn latency_table(runs: &[LatencyReport]) -> String {
    let mut table = String::from(
        "| rate/s | sent | errors | p50 ms | p99 ms | max ms |\n|---|---|---|---|---|---|\n",
    );
    for r in runs {
        table.push_str(&format!(
            "| {} | {} | {} | {:.2} | {:.2} | {:.2} |\n",
            r.rate, r.sent, r.errors, r.p50_ms, r.p99_ms, r.max_ms
        ));
    }
    table
}

/// A memory figure (`VmRSS:` now, `VmHWM:` the peak) of process `pid` (`self` for this one),
/// in MB.
pub fn memory_mb(pid: &str, field: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with(field)).map(str::to_owned))
        .and_then(|l| {
            l.split_whitespace()
                .nth(1)
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// A scenario's contribution to the results: its JSON entry and its Markdown section.
pub struct Section {
    pub key: &'static str,
    pub json: serde_json::Value,
    pub markdown: String,
}
