//! Counters the workers keep and `/metrics` reports: what a database query cannot tell
//! (bytes moved, how blobs got there, how long steps took, how jobs ended). Plain atomics,
//! shared by reference; they start at zero with the process, as Prometheus counters do.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The publication steps, in order; the histogram keeps one series per step.
pub const STEPS: [&str; 5] = ["wait", "copy", "verify", "index", "tags"];

/// Upper bounds of the step-duration buckets, in seconds.
pub const BUCKETS: [f64; 11] = [0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0];

#[derive(Debug, Default)]
pub struct StepHistogram {
    /// Cumulative counts per bucket, then the +Inf bucket.
    buckets: [AtomicU64; BUCKETS.len() + 1],
    sum_micros: AtomicU64,
}

impl StepHistogram {
    pub fn observe(&self, took: Duration) {
        let seconds = took.as_secs_f64();
        for (i, bound) in BUCKETS.iter().enumerate() {
            if seconds <= *bound {
                self.buckets[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        self.buckets[BUCKETS.len()].fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        self.sum_micros.fetch_add(micros, Ordering::Relaxed);
    }

    /// Cumulative bucket counts (the last is +Inf, the total count) and the sum in seconds.
    pub fn snapshot(&self) -> (Vec<u64>, f64) {
        let counts = self
            .buckets
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect();
        let sum = self.sum_micros.load(Ordering::Relaxed) as f64 / 1_000_000.0;
        (counts, sum)
    }
}

/// Retries by reason (`429`, `503`, `connection`, ...), as the registry client makes them.
#[derive(Debug, Default)]
pub struct RetryCounts(std::sync::Mutex<std::collections::BTreeMap<String, u64>>);

impl RetryCounts {
    pub fn record(&self, reason: &str) {
        let mut counts = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *counts.entry(reason.to_owned()).or_default() += 1;
    }

    pub fn snapshot(&self) -> Vec<(String, u64)> {
        let counts = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        counts.iter().map(|(k, v)| (k.clone(), *v)).collect()
    }
}

#[derive(Debug, Default)]
pub struct PipelineCounters {
    /// Requests to registries that were tried again, by the status or failure that caused it.
    pub registry_retries: std::sync::Arc<RetryCounts>,
    pub blobs_present: AtomicU64,
    pub blobs_mounted: AtomicU64,
    pub blobs_uploaded: AtomicU64,
    pub bytes_uploaded: AtomicU64,
    pub jobs_done: AtomicU64,
    pub jobs_retried: AtomicU64,
    pub jobs_failed: AtomicU64,
    steps: [StepHistogram; STEPS.len()],
}

impl PipelineCounters {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    /// Records how long `step` took; unknown step names are ignored.
    pub fn observe_step(&self, step: &str, took: Duration) {
        if let Some(i) = STEPS.iter().position(|s| *s == step) {
            self.steps[i].observe(took);
        }
    }

    pub fn step(&self, step: &str) -> Option<&StepHistogram> {
        STEPS
            .iter()
            .position(|s| *s == step)
            .map(|i| &self.steps[i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_are_cumulative_with_a_sum() {
        let counters = PipelineCounters::default();
        counters.observe_step("copy", Duration::from_millis(70));
        counters.observe_step("copy", Duration::from_secs(3));
        counters.observe_step("nonsense", Duration::from_secs(1));
        let (buckets, sum) = counters.step("copy").unwrap().snapshot();
        assert_eq!(buckets[0], 0, "<= 0.05 s");
        assert_eq!(buckets[1], 1, "<= 0.1 s");
        assert_eq!(buckets[6], 2, "<= 5 s");
        assert_eq!(buckets[BUCKETS.len()], 2, "+Inf");
        assert!((sum - 3.07).abs() < 1e-6, "{sum}");
        assert_eq!(
            counters.step("wait").unwrap().snapshot().0[BUCKETS.len()],
            0
        );
    }
}
