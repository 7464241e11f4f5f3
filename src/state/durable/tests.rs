//! The durable store: restarts, compaction, damage.

use std::sync::Arc;

use super::*;
use crate::state::{ContributionId, Op, OpResult};
use crate::units::Unpriced;

fn id(n: u8) -> ContributionId {
    ContributionId::new(&[n; 16], &[n; 8])
}

fn call(task: &str, n: u8, cost: i64) -> Op {
    Op::AddToTask {
        task: task.into(),
        id: id(n),
        delta: TaskTotals {
            cost_nano_usd: cost,
            llm_calls: 1,
            spans: 1,
            ..Default::default()
        },
    }
}

fn apply(s: &DurableStore, now: u64, ops: Vec<Op>) -> Vec<OpResult> {
    let mut b = StateBatch::new(now);
    for op in ops {
        b.push(op);
    }
    match s.apply(b, Instant::now()).now() {
        Ok(r) => r.unwrap(),
        Err(_) => panic!("synchronous"),
    }
}

fn marks_and_claim(now: u64) -> Vec<Op> {
    vec![
        Op::FireOnce {
            scope: "t1".into(),
            marker: 7,
            ttl_ms: None,
        },
        Op::ClaimCall {
            fingerprint: 42,
            ttl_ms: 60_000 + now,
        },
    ]
}

fn budget(name: &str, n: u8, cost: i64, window: Option<crate::state::Window>) -> Op {
    Op::AddToBudget {
        key: crate::state::BudgetKey {
            budget: name.into(),
            key_values: vec!["user-1".into()],
            period_start_ms: if window.is_some() { 0 } else { 500 },
        },
        id: id(n),
        cost: NanoUsd(cost),
        limit: None,
        expires_ms: Some(100_000),
        window,
    }
}

const ROLLING: Option<crate::state::Window> = Some(crate::state::Window {
    bucket_ms: 1_000,
    buckets: 10,
});

fn restart_keeps_state(compact: bool) {
    let dir = tempfile::tempdir().unwrap();
    {
        let s = DurableStore::open(dir.path()).unwrap();
        apply(
            &s,
            1_000,
            vec![call("t1", 1, 1_500_000), call("t1", 2, 2_250_001)],
        );
        let mut ops = marks_and_claim(0);
        ops.push(Op::SetFiring {
            rule: "w".into(),
            group: vec!["svc".into()],
            since_ms: Some(999),
        });
        ops.push(Op::AddToTask {
            task: "t2".into(),
            id: id(9),
            delta: TaskTotals {
                llm_calls: 1,
                unpriced: Unpriced {
                    unknown_model: 1,
                    ..Unpriced::default()
                },
                ..TaskTotals::default()
            },
        });
        ops.push(budget("day", 1, 700_000_001, None));
        ops.push(budget("rolling", 1, 5, ROLLING));
        let fired = apply(&s, 1_001, ops);
        assert_eq!(fired[0], OpResult::Fired(true));
        apply(&s, 2_001, vec![budget("rolling", 2, 6, ROLLING)]);
        if compact {
            s.compact().unwrap();
            apply(&s, 1_002, vec![call("t1", 4, 10)]);
        }
        // Dropped without any flush or close: as after kill -9 (the page cache keeps it).
    }
    let s = DurableStore::open(dir.path()).unwrap();
    let extra = if compact { 10 } else { 0 };
    assert_eq!(
        s.task_totals("t1").unwrap().cost(),
        NanoUsd(3_750_001 + extra)
    );
    assert_eq!(s.task_totals("t2").unwrap().unpriced.unknown_model, 1);
    // The same span re-sent is not counted twice; a new one is.
    let r = apply(&s, 2_000, vec![call("t1", 2, 2_250_001), call("t1", 3, 1)]);
    assert!(
        matches!(r[0], OpResult::Task { replayed: true, .. }),
        "{r:?}"
    );
    assert_eq!(
        s.task_totals("t1").unwrap().cost(),
        NanoUsd(3_750_002 + extra)
    );
    let r = apply(&s, 2_001, marks_and_claim(0));
    assert_eq!(r, [OpResult::Fired(false), OpResult::Claimed(false)]);
    // Budget totals, their contributions, and a rolling window's buckets survive too.
    let day = crate::state::BudgetKey {
        budget: "day".into(),
        key_values: vec!["user-1".into()],
        period_start_ms: 500,
    };
    let rolling = crate::state::BudgetKey {
        budget: "rolling".into(),
        period_start_ms: 0,
        ..day.clone()
    };
    assert_eq!(s.budget_total(&day, 3_000), NanoUsd(700_000_001));
    assert_eq!(s.budget_total(&rolling, 3_000), NanoUsd(11));
    assert_eq!(
        s.budget_total(&rolling, 11_000),
        NanoUsd(6),
        "bucket 1 000 left"
    );
    let r = apply(
        &s,
        3_000,
        vec![
            budget("day", 1, 700_000_001, None),
            budget("rolling", 2, 6, ROLLING),
        ],
    );
    assert!(
        r.iter()
            .all(|r| matches!(r, OpResult::Budget { replayed: true, .. })),
        "{r:?}"
    );
    assert_eq!(
        s.firing(),
        vec![Firing {
            rule: Arc::from("w"),
            group: vec!["svc".into()],
            since_ms: 999
        }]
    );
}

#[test]
fn a_restart_keeps_totals_dedupe_marks_firing_and_unpriced_counts() {
    restart_keeps_state(false);
}

#[test]
fn a_restart_after_a_snapshot_keeps_everything_too() {
    restart_keeps_state(true);
}

#[test]
fn the_log_is_compacted_once_it_is_large_and_starts_over() {
    let dir = tempfile::tempdir().unwrap();
    let options = DurableOptions {
        compact_after_bytes: 4096,
        ..DurableOptions::default()
    };
    {
        let s = DurableStore::open_with(dir.path(), options).unwrap();
        for n in 0..100u8 {
            apply(&s, u64::from(n), vec![call("t", n, 1)]);
        }
        let log = log_path(dir.path(), 0);
        assert!(std::fs::metadata(&log).unwrap().len() > 4096);
        s.maintain(200);
        assert!(!log.exists(), "the old log is removed");
        assert_eq!(std::fs::metadata(log_path(dir.path(), 1)).unwrap().len(), 0);
        apply(&s, 300, vec![call("t", 1, 1), call("t", 200, 5)]);
    }
    let s = DurableStore::open_with(dir.path(), options).unwrap();
    let t = s.task_totals("t").unwrap();
    assert_eq!((t.cost(), t.spans), (NanoUsd(105), 101));
}

#[test]
fn a_torn_tail_keeps_everything_before_it() {
    let dir = tempfile::tempdir().unwrap();
    {
        let s = DurableStore::open(dir.path()).unwrap();
        apply(&s, 1, vec![call("t", 1, 10)]);
        apply(&s, 2, vec![call("t", 2, 20)]);
    }
    let log = log_path(dir.path(), 0);
    let len = std::fs::metadata(&log).unwrap().len();
    OpenOptions::new()
        .write(true)
        .open(&log)
        .unwrap()
        .set_len(len - 3)
        .unwrap();
    let corrupt = METRICS.corrupt_records.get();
    {
        let s = DurableStore::open(dir.path()).unwrap();
        assert!(METRICS.corrupt_records.get() > corrupt, "counted");
        assert_eq!(s.task_totals("t").unwrap().cost(), NanoUsd(10));
        apply(&s, 3, vec![call("t", 3, 30)]);
    }
    let s = DurableStore::open(dir.path()).unwrap();
    assert_eq!(
        s.task_totals("t").unwrap().cost(),
        NanoUsd(40),
        "new records follow the last valid one"
    );
}

#[test]
fn a_flipped_bit_skips_one_record_and_keeps_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    {
        let s = DurableStore::open(dir.path()).unwrap();
        apply(&s, 1, vec![call("t", 1, 10)]);
        apply(&s, 2, vec![call("t", 2, 20)]);
        apply(&s, 3, vec![call("t", 3, 40)]);
    }
    let log = log_path(dir.path(), 0);
    let mut bytes = std::fs::read(&log).unwrap();
    let one = bytes.len() / 3;
    bytes[one + one / 2] ^= 0x10;
    std::fs::write(&log, bytes).unwrap();
    let s = DurableStore::open(dir.path()).unwrap();
    assert_eq!(s.task_totals("t").unwrap().cost(), NanoUsd(50));
}

#[test]
fn every_op_round_trips_through_the_encoding() {
    use crate::state::BudgetKey;
    let mut b = StateBatch::new(77);
    b.push(Op::AddToTask {
        task: "x".into(),
        id: id(9),
        delta: TaskTotals {
            cost_nano_usd: -5,
            unpriced: Unpriced {
                no_usage: 2,
                invalid_usage: 3,
                ..Unpriced::default()
            },
            ..TaskTotals::default()
        },
    });
    b.push(Op::EndTask { task: "x".into() });
    b.push(Op::FireOnce {
        scope: "s".into(),
        marker: 1,
        ttl_ms: Some(5),
    });
    b.push(Op::ClaimCall {
        fingerprint: u128::MAX - 3,
        ttl_ms: 9,
    });
    b.push(Op::AddToBudget {
        key: BudgetKey {
            budget: "b".into(),
            key_values: vec!["team-a".into(), "svc".into()],
            period_start_ms: 123,
        },
        id: id(4),
        cost: NanoUsd(1_000_000_007),
        limit: Some(NanoUsd(5_000_000_000)),
        expires_ms: None,
        window: None,
    });
    b.push(Op::AddToBudget {
        key: BudgetKey {
            budget: "r".into(),
            key_values: vec!["u".into()],
            period_start_ms: 0,
        },
        id: id(5),
        cost: NanoUsd(3),
        limit: None,
        expires_ms: Some(9_000),
        window: Some(crate::state::Window {
            bucket_ms: 60_000,
            buckets: 1_440,
        }),
    });
    b.push(Op::SetFiring {
        rule: "r".into(),
        group: vec!["a".into(), String::new()],
        since_ms: None,
    });
    assert_eq!(codec::decode_batch(&codec::encode_batch(&b)), Some(b));
}
