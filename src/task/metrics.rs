//! The task tracker's metrics.

use std::sync::LazyLock;

use prometheus::{IntCounter, IntCounterVec, IntGauge, Opts};

use super::EndReason;

/// Tasks dropped from the active set before they ended, by reason.
pub(crate) const TASKS_EVICTED_TOTAL: &str = "tollgate_tasks_evicted_total";
/// Tasks that ended, by reason (`idle`, `root`, `evicted`).
pub(crate) const TASKS_ENDED_TOTAL: &str = "tollgate_tasks_ended_total";
/// Tasks currently tracked.
pub(crate) const TASKS_ACTIVE: &str = "tollgate_tasks_active";

pub(crate) struct TaskMetrics {
    evicted: IntCounterVec,
    ended: IntCounterVec,
    pub(crate) active: IntGauge,
    /// `evicted{reason="capacity"}`, resolved once (the hot path of a full tracker).
    pub(crate) evicted_capacity: IntCounter,
    ended_by_reason: [IntCounter; 3],
}

impl TaskMetrics {
    pub(crate) fn ended(&self, reason: EndReason) -> &IntCounter {
        &self.ended_by_reason[match reason {
            EndReason::Idle => 0,
            EndReason::Root => 1,
            EndReason::Evicted => 2,
        }]
    }
}

pub(crate) static METRICS: LazyLock<TaskMetrics> = LazyLock::new(|| {
    let evicted = IntCounterVec::new(
        Opts::new(
            TASKS_EVICTED_TOTAL,
            "Tasks evicted from the active set before they ended.",
        ),
        &["reason"],
    )
    .expect("valid metric");
    let ended = IntCounterVec::new(
        Opts::new(TASKS_ENDED_TOTAL, "Tasks that ended, by reason."),
        &["reason"],
    )
    .expect("valid metric");
    let m = TaskMetrics {
        evicted_capacity: evicted.with_label_values(&["capacity"]),
        ended_by_reason: [EndReason::Idle, EndReason::Root, EndReason::Evicted]
            .map(|r| ended.with_label_values(&[r.as_str()])),
        evicted,
        ended,
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
