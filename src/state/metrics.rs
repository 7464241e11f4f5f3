//! The state stores' metrics.

use std::sync::LazyLock;

use prometheus::{IntCounter, IntCounterVec, IntGauge, Opts};

/// Entries a store dropped to stay within its limits, by kind.
pub(crate) const STATE_EVICTED_TOTAL: &str = "tollgate_state_evicted_total";
/// Tasks forgotten because no op touched them for `task_idle_ms`.
pub(crate) const STATE_EXPIRED_TASKS_TOTAL: &str = "tollgate_state_expired_tasks_total";
/// Budget keys forgotten because their period ended (or their rolling window emptied).
pub(crate) const STATE_EXPIRED_BUDGET_KEYS_TOTAL: &str = "tollgate_state_expired_budget_keys_total";
/// Damaged records skipped while restoring a durable store.
pub(crate) const STATE_CORRUPT_RECORDS_TOTAL: &str = "tollgate_state_corrupt_records_total";
/// Bytes of the durable store's log since its last snapshot.
pub(crate) const STATE_LOG_BYTES: &str = "tollgate_state_log_bytes";
/// Snapshots the durable store wrote (each replaces the log).
pub(crate) const STATE_SNAPSHOTS_TOTAL: &str = "tollgate_state_snapshots_total";
/// Batches a stage could not apply (store error or deadline), by stage.
pub(crate) const STATE_FAILED_BATCHES_TOTAL: &str = "tollgate_state_failed_batches_total";
/// 1 while a shared store (Redis) is unreachable and updates are kept for replay.
pub(crate) const STATE_DEGRADED: &str = "tollgate_state_degraded";
/// Updates kept for replay while the shared store is unreachable.
pub(crate) const STATE_BACKLOG_OPS: &str = "tollgate_state_backlog_ops";
/// Kept updates applied once the shared store answered again.
pub(crate) const STATE_REPLAYED_OPS_TOTAL: &str = "tollgate_state_replayed_ops_total";
/// Updates that could not be kept for replay, by reason.
pub(crate) const STATE_LOST_OPS_TOTAL: &str = "tollgate_state_lost_ops_total";

pub(crate) struct StateMetrics {
    pub(crate) evicted_task: IntCounter,
    pub(crate) evicted_claim: IntCounter,
    pub(crate) evicted_contribution: IntCounter,
    pub(crate) expired_task: IntCounter,
    pub(crate) expired_budget: IntCounter,
    pub(crate) corrupt_records: IntCounter,
    pub(crate) log_bytes: IntGauge,
    pub(crate) snapshots: IntCounter,
    pub(crate) failed_batches: IntCounterVec,
    pub(crate) degraded: IntGauge,
    pub(crate) degraded_since_ms: std::sync::atomic::AtomicU64,
    pub(crate) backlog_ops: IntGauge,
    pub(crate) replayed_ops: IntCounter,
    pub(crate) lost_ops: IntCounterVec,
}

pub(crate) static METRICS: LazyLock<StateMetrics> = LazyLock::new(|| {
    let evicted = IntCounterVec::new(
        Opts::new(
            STATE_EVICTED_TOTAL,
            "State entries dropped to stay within the store's limits, by kind (task, claim, contribution).",
        ),
        &["kind"],
    )
    .expect("valid metric");
    let expired = IntCounter::new(
        STATE_EXPIRED_TASKS_TOTAL,
        "Tasks the state store forgot because nothing touched them for its idle limit.",
    )
    .expect("valid metric");
    let expired_budget = IntCounter::new(
        STATE_EXPIRED_BUDGET_KEYS_TOTAL,
        "Budget keys the state store forgot because their period ended (or their rolling window emptied).",
    )
    .expect("valid metric");
    let corrupt = IntCounter::new(
        STATE_CORRUPT_RECORDS_TOTAL,
        "Damaged records skipped while restoring the durable state store (torn tail, bad checksum).",
    )
    .expect("valid metric");
    let log_bytes = IntGauge::new(
        STATE_LOG_BYTES,
        "Bytes of the durable state store's log since its last snapshot.",
    )
    .expect("valid metric");
    let snapshots = IntCounter::new(
        STATE_SNAPSHOTS_TOTAL,
        "Snapshots the durable state store wrote (each one replaces its log).",
    )
    .expect("valid metric");
    let failed = IntCounterVec::new(
        Opts::new(
            STATE_FAILED_BATCHES_TOTAL,
            "State batches a stage could not apply (store error or deadline), by stage.",
        ),
        &["stage"],
    )
    .expect("valid metric");
    let degraded = IntGauge::new(
        STATE_DEGRADED,
        "1 while the shared state store (Redis) is unreachable: spans flow and are priced, shared updates are kept for replay.",
    )
    .expect("valid metric");
    let backlog_ops = IntGauge::new(
        STATE_BACKLOG_OPS,
        "State updates kept in memory for replay while the shared state store is unreachable.",
    )
    .expect("valid metric");
    let replayed_ops = IntCounter::new(
        STATE_REPLAYED_OPS_TOTAL,
        "Kept state updates applied to the shared state store once it answered again.",
    )
    .expect("valid metric");
    let lost_ops = IntCounterVec::new(
        Opts::new(
            STATE_LOST_OPS_TOTAL,
            "State updates that could not be kept for replay (backlog_full, shutdown): their spend is missing from the shared totals.",
        ),
        &["reason"],
    )
    .expect("valid metric");
    let r = crate::telemetry::registry();
    for c in [
        Box::new(evicted.clone()) as Box<dyn prometheus::core::Collector>,
        Box::new(expired.clone()),
        Box::new(expired_budget.clone()),
        Box::new(corrupt.clone()),
        Box::new(log_bytes.clone()),
        Box::new(snapshots.clone()),
        Box::new(failed.clone()),
        Box::new(degraded.clone()),
        Box::new(backlog_ops.clone()),
        Box::new(replayed_ops.clone()),
        Box::new(lost_ops.clone()),
    ] {
        if let Err(error) = r.register(c) {
            tracing::warn!(%error, "State metric registration failed.");
        }
    }
    StateMetrics {
        evicted_task: evicted.with_label_values(&["task"]),
        evicted_claim: evicted.with_label_values(&["claim"]),
        evicted_contribution: evicted.with_label_values(&["contribution"]),
        expired_task: expired,
        expired_budget,
        corrupt_records: corrupt,
        log_bytes,
        snapshots,
        failed_batches: failed,
        degraded,
        degraded_since_ms: std::sync::atomic::AtomicU64::new(0),
        backlog_ops,
        replayed_ops,
        lost_ops,
    }
});

/// How the state store is doing, for the status page.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StateHealth {
    /// `memory`, `disk` or `redis`.
    pub backend: &'static str,
    /// True while a shared store is unreachable.
    pub degraded: bool,
    /// Since when (unix ms), while degraded.
    pub degraded_since_ms: Option<u64>,
    /// Updates kept for replay.
    pub backlog_ops: u64,
    /// Kept updates replayed since start.
    pub replayed_ops: u64,
    /// Updates lost since start (could not be kept or replayed).
    pub lost_ops: u64,
}

static BACKEND: std::sync::RwLock<&'static str> = std::sync::RwLock::new("memory");

/// Records which backend this process runs on.
pub(crate) fn set_backend(name: &'static str) {
    if let Ok(mut b) = BACKEND.write() {
        *b = name;
    }
}

/// The state store's health now.
pub fn health() -> StateHealth {
    let m = &*METRICS;
    let since = m
        .degraded_since_ms
        .load(std::sync::atomic::Ordering::Relaxed);
    let lost = ["backlog_full", "shutdown"]
        .iter()
        .map(|r| m.lost_ops.with_label_values(&[r]).get())
        .sum();
    StateHealth {
        backend: BACKEND.read().map(|b| *b).unwrap_or("memory"),
        degraded: m.degraded.get() != 0,
        degraded_since_ms: (m.degraded.get() != 0 && since != 0).then_some(since),
        backlog_ops: m.backlog_ops.get().max(0) as u64,
        replayed_ops: m.replayed_ops.get(),
        lost_ops: lost,
    }
}

/// Counts a batch `stage` could not apply, and logs it (at most the first few, then every
/// thousandth: a broken store fails every request).
pub fn failed_batch(stage: &'static str, error: &super::StateError) {
    let c = METRICS.failed_batches.with_label_values(&[stage]);
    c.inc();
    let n = c.get();
    if n <= 3 || n % 1000 == 0 {
        tracing::warn!(stage, %error, failed = n, "State batch not applied; the stage carried on without it.");
    }
}
