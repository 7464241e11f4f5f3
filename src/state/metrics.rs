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
    let r = crate::telemetry::registry();
    for c in [
        Box::new(evicted.clone()) as Box<dyn prometheus::core::Collector>,
        Box::new(expired.clone()),
        Box::new(expired_budget.clone()),
        Box::new(corrupt.clone()),
        Box::new(log_bytes.clone()),
        Box::new(snapshots.clone()),
        Box::new(failed.clone()),
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
    }
});

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
