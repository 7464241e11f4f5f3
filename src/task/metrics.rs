//! The task tracker's metrics.

use std::sync::LazyLock;

use prometheus::{IntCounterVec, IntGauge, Opts};

/// Tasks dropped from the active set before they ended, by reason.
pub const TASKS_EVICTED_TOTAL: &str = "tollgate_tasks_evicted_total";
/// Tasks that ended, by reason (`idle`, `root`, `evicted`).
pub const TASKS_ENDED_TOTAL: &str = "tollgate_tasks_ended_total";
/// Tasks currently tracked.
pub const TASKS_ACTIVE: &str = "tollgate_tasks_active";

pub(crate) struct TaskMetrics {
    pub(crate) evicted: IntCounterVec,
    pub(crate) ended: IntCounterVec,
    pub(crate) active: IntGauge,
}

pub(crate) static METRICS: LazyLock<TaskMetrics> = LazyLock::new(|| {
    let m = TaskMetrics {
        evicted: IntCounterVec::new(
            Opts::new(
                TASKS_EVICTED_TOTAL,
                "Tasks evicted from the active set before they ended.",
            ),
            &["reason"],
        )
        .expect("valid metric"),
        ended: IntCounterVec::new(
            Opts::new(TASKS_ENDED_TOTAL, "Tasks that ended, by reason."),
            &["reason"],
        )
        .expect("valid metric"),
        active: IntGauge::new(TASKS_ACTIVE, "Tasks currently tracked.").expect("valid metric"),
    };
    let r = crate::telemetry::registry();
    for c in [
        Box::new(m.evicted.clone()) as Box<dyn prometheus::core::Collector>,
        Box::new(m.ended.clone()),
        Box::new(m.active.clone()),
    ] {
        if let Err(error) = r.register(c) {
            tracing::warn!(%error, "Task metric registration failed.");
        }
    }
    m
});
