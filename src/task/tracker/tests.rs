use super::super::{LlmUsage, ManualClock};
use super::*;
use crate::units::Tokens;
use std::time::Duration;

fn tracker(max: usize, clock: Arc<ManualClock>) -> TaskTracker {
    let cfg = TasksConfig {
        max_active: max,
        ..TasksConfig::default()
    };
    TaskTracker::new(&cfg, clock)
}

fn span<'a>(key: &'a str, cost: i64, root: bool) -> SpanInput<'a> {
    SpanInput {
        task_key: key,
        service: "agent",
        is_task_root: root,
        start_unix_nano: 1_000,
        end_unix_nano: 2_000,
        llm: (cost > 0).then_some(LlmUsage {
            cost_nano_usd: cost,
            tokens: Tokens {
                input_uncached: 60,
                cache_read: 40,
                cache_write: 0,
                output: 10,
            },
            ..Default::default()
        }),
        ..SpanInput::default()
    }
}

#[test]
fn totals_are_exact_and_ratio_is_reads_over_all_input() {
    let clock = Arc::new(ManualClock::new(1_000));
    let t = tracker(100, clock);
    for _ in 0..3 {
        t.observe(&span("a", 200_000_000, false), |_| ());
    }
    let s = t.get("a").unwrap();
    assert_eq!(s.totals.cost_nano_usd, 600_000_000);
    assert_eq!(s.totals.llm_calls, 3);
    assert_eq!(s.totals.tokens.input(), 300);
    assert_eq!(s.totals.tokens.cache_hit_ratio(), Some(0.4));
    assert_eq!(s.status, TaskStatus::Active);
    assert_eq!(Tokens::default().cache_hit_ratio(), None);
}

#[test]
fn idle_and_root_grace_end_tasks_and_report_them() {
    let clock = Arc::new(ManualClock::new(0));
    let t = tracker(100, clock.clone());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s2 = seen.clone();
    t.on_ended(move |s| s2.lock().push((s.task_id.to_string(), s.end_reason)));
    t.observe(&span("idle", 1, false), |_| ());
    t.observe(&span("rooted", 1, true), |_| ());
    clock.advance_ms(4_999);
    assert_eq!(t.sweep(), 0);
    clock.advance_ms(1);
    assert_eq!(t.sweep(), 1);
    clock.advance_ms(25_000);
    assert_eq!(t.sweep(), 1);
    assert_eq!(
        *seen.lock(),
        vec![
            ("rooted".to_string(), Some(EndReason::Root)),
            ("idle".to_string(), Some(EndReason::Idle))
        ]
    );
    assert_eq!(t.get("idle").unwrap().status, TaskStatus::Ended);
    clock.advance_ms(Duration::from_secs(601).as_millis() as u64);
    t.sweep();
    assert!(t.get("idle").is_none());
}

#[test]
fn cap_evicts_the_oldest() {
    let clock = Arc::new(ManualClock::new(0));
    let t = tracker(3, clock);
    for k in ["a", "b", "c", "d"] {
        t.observe(&span(k, 1, false), |_| ());
    }
    assert_eq!(t.len(), 3);
    assert_eq!(t.get("a").unwrap().end_reason, Some(EndReason::Evicted));
    assert_eq!(t.get("d").unwrap().status, TaskStatus::Active);
}

#[test]
fn top_by_cost_orders_active_and_ended() {
    let clock = Arc::new(ManualClock::new(0));
    let t = tracker(100, clock.clone());
    t.observe(&span("cheap", 5, true), |_| ());
    clock.advance_ms(10_000);
    t.sweep();
    t.observe(&span("dear", 50, false), |_| ());
    t.observe(&span("mid", 10, false), |_| ());
    let top: Vec<_> = t.top_by_cost(2).into_iter().map(|s| s.task_id).collect();
    assert_eq!(top, vec![Arc::from("dear"), Arc::from("mid")]);
    assert_eq!(t.top_by_cost(10).len(), 3);
}

#[test]
fn huge_ids_are_clipped() {
    let clock = Arc::new(ManualClock::new(0));
    let t = tracker(100, clock);
    let long = "é".repeat(1000);
    t.observe(&span(&long, 1, false), |_| ());
    let s = t.get(&long).unwrap();
    assert!(s.task_id.len() <= MAX_KEY_BYTES && s.task_id.len() >= MAX_KEY_BYTES - 1);
    assert!(t.approx_bytes() < 10_000);
}

#[test]
fn marks_are_per_task() {
    let clock = Arc::new(ManualClock::new(0));
    let t = tracker(100, clock);
    assert!(!t.observe(&span("a", 1, false), |e| {
        let was = e.is_marked(7);
        e.mark(7);
        was
    }));
    assert!(t.observe(&span("a", 1, false), |e| e.is_marked(7)));
    assert!(!t.observe(&span("b", 1, false), |e| e.is_marked(7)));
}
