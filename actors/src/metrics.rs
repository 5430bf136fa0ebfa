//! Queue counters and the enqueue-to-claim latency histogram, registered into the daemon's
//! Prometheus registry. The actors update them; `/metrics` encodes them.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// The queue's own metrics. Cloning shares the underlying atomics.
#[derive(Clone, Debug)]
pub struct QueueMetrics {
    pub claims: Counter,
    pub completions: Counter,
    pub failures: Counter,
    pub reaps: Counter,
    pub recoveries: Counter,
    pub late_results_refused: Counter,
    /// Runs handed back to the queue, attempt refunded, because the database refused a write.
    pub deferrals: Counter,
    /// Seconds from a run's enqueue (or re-queue) to its claim.
    pub enqueue_to_claim: Histogram,
}

impl Default for QueueMetrics {
    fn default() -> Self {
        QueueMetrics {
            claims: Counter::default(),
            completions: Counter::default(),
            failures: Counter::default(),
            reaps: Counter::default(),
            recoveries: Counter::default(),
            late_results_refused: Counter::default(),
            deferrals: Counter::default(),
            enqueue_to_claim: Histogram::new([
                0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0, 300.0,
            ]),
        }
    }
}

impl QueueMetrics {
    /// Registers every metric under the `procedurewriter_` prefix the registry carries.
    pub fn register(&self, registry: &mut Registry) {
        registry.register("claims", "Runs claimed by a worker", self.claims.clone());
        registry.register(
            "completions",
            "Runs completed (DONE)",
            self.completions.clone(),
        );
        registry.register(
            "failures",
            "Attempts that failed (retried or final)",
            self.failures.clone(),
        );
        registry.register(
            "reaps",
            "Runs whose stale lease the reaper took back",
            self.reaps.clone(),
        );
        registry.register(
            "recoveries",
            "Runs re-queued at start-up after a crash",
            self.recoveries.clone(),
        );
        registry.register(
            "late_results_refused",
            "Results refused because the worker no longer held the lease",
            self.late_results_refused.clone(),
        );
        registry.register(
            "deferrals",
            "Runs handed back to the queue without spending an attempt: the database refused a write",
            self.deferrals.clone(),
        );
        registry.register(
            "enqueue_to_claim_seconds",
            "Time from a run's enqueue to its claim",
            self.enqueue_to_claim.clone(),
        );
    }
}

/// The store writer's group-commit counters.
#[derive(Clone, Debug, Default)]
pub struct StoreMetrics {
    /// Write transactions committed.
    pub commits: Counter,
    /// State changes committed (each in its own savepoint of some commit).
    pub writes: Counter,
    /// Writes the database could not take (full disk, size limit, read-only file, I/O error).
    pub write_failures: Counter,
    /// The last of them: why, and when (ms since the epoch).
    last_write_error: std::sync::Arc<std::sync::Mutex<Option<(String, i64)>>>,
}

impl StoreMetrics {
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "store_commits",
            "SQLite write transactions committed",
            self.commits.clone(),
        );
        registry.register(
            "store_writes",
            "State changes committed; writes / commits is the group-commit factor",
            self.writes.clone(),
        );
        registry.register(
            "store_write_failures",
            "Writes the database could not take (full disk, size limit, read-only file)",
            self.write_failures.clone(),
        );
    }

    /// The last write the database could not take: why, and when (ms since the epoch).
    pub fn last_write_error(&self) -> Option<(String, i64)> {
        match self.last_write_error.lock() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// `writes` writes failed for `error`.
    pub(crate) fn write_failed(&self, error: &str, writes: usize) {
        self.write_failures.inc_by(writes as u64);
        let last = Some((error.to_string(), crate::model::now_ms()));
        match self.last_write_error.lock() {
            Ok(mut g) => *g = last,
            Err(p) => *p.into_inner() = last,
        }
    }
}
