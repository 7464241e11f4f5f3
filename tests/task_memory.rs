//! A million distinct tasks streamed through a tracker capped at 10 000 stay bounded, and every
//! eviction is counted.

mod alert_support;

use std::sync::Arc;

use alert_support::counter;
use tollgate::task::{LlmUsage, ManualClock, SpanInput, TaskTracker, TasksConfig, Tokens};

#[test]
fn a_million_tasks_stay_bounded() {
    const CAP: usize = 10_000;
    const TASKS: usize = 1_000_000;
    let cfg = TasksConfig {
        max_active: CAP,
        ..TasksConfig::default()
    };
    let tracker = TaskTracker::new(&cfg, Arc::new(ManualClock::new(0)));
    assert!(tracker.capacity() <= CAP);
    let evicted_before = counter("tollgate_tasks_evicted_total", &[("reason", "capacity")]);
    let mut key = String::new();
    let mut max_len = 0;
    let mut max_bytes = 0;
    for i in 0..TASKS {
        key.clear();
        use std::fmt::Write;
        write!(key, "task-{i:08}").unwrap();
        let span = SpanInput {
            task_key: &key,
            trace_id: &[7; 16],
            span_id: &[1; 8],
            service: "svc",
            task_type: "chat",
            llm: Some(LlmUsage {
                cost_nano_usd: 1,
                tokens: Tokens {
                    input_uncached: 1,
                    ..Tokens::default()
                },
                ..Default::default()
            }),
            ..SpanInput::default()
        };
        tracker.observe(&span, |_| ());
        if i % 50_000 == 0 || i == TASKS - 1 {
            max_len = max_len.max(tracker.len());
            max_bytes = max_bytes.max(tracker.approx_bytes());
        }
    }
    assert!(max_len <= CAP, "{max_len} tasks held; cap {CAP}");
    assert_eq!(tracker.len(), tracker.capacity());
    let evicted =
        counter("tollgate_tasks_evicted_total", &[("reason", "capacity")]) - evicted_before;
    assert!(
        evicted >= (TASKS - CAP) as f64,
        "evicted {evicted}, expected at least {}",
        TASKS - CAP
    );
    // Generous per-task bound (map slot, queue slot, key, strings): well under 1 KiB a task.
    assert!(max_bytes < CAP * 1024, "{max_bytes} bytes for {CAP} tasks");
    // The newest task is there, the first one is not active any more.
    assert!(tracker.get("task-00999999").is_some());
    assert_ne!(
        tracker.get("task-00000000").map(|s| s.status),
        Some(tollgate::task::TaskStatus::Active)
    );
}
