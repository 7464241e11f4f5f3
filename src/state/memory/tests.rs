//! The memory store's contract tests.

use super::*;
use crate::units::Tokens;

fn run(store: &dyn StateStore, now_ms: u64, ops: Vec<Op>) -> Vec<OpResult> {
    let batch = StateBatch { now_ms, ops };
    match store.apply(batch, Instant::now()).now() {
        Ok(r) => r.expect("the memory store never fails"),
        Err(_) => panic!("the memory store answers synchronously"),
    }
}

fn id(n: u8) -> ContributionId {
    ContributionId::new(&[7; 16], &[n; 8])
}

fn call(cost: i64) -> TaskTotals {
    TaskTotals {
        cost_nano_usd: cost,
        tokens: Tokens {
            input_uncached: 10,
            output: 2,
            ..Tokens::default()
        },
        llm_calls: 1,
        errors: 0,
        spans: 1,
        unpriced: Default::default(),
        first_seen_unix_nano: 100,
        last_seen_unix_nano: 200,
    }
}

fn add_to(task: &str, n: u8, cost: i64) -> Op {
    Op::AddToTask {
        task: task.into(),
        id: id(n),
        delta: call(cost),
    }
}

#[test]
fn a_contribution_adds_to_a_task_once_however_often_it_is_replayed() {
    let s = MemoryStore::new();
    // One request with a span twice (a client retry inside one batch) and a second span.
    let r = run(
        &s,
        0,
        vec![add_to("t", 1, 5), add_to("t", 1, 5), add_to("t", 2, 7)],
    );
    let totals = |r: &OpResult| match r {
        OpResult::Task { totals, replayed } => (totals.cost_nano_usd, totals.spans, *replayed),
        other => panic!("{other:?}"),
    };
    assert_eq!(totals(&r[0]), (5, 1, false));
    assert_eq!(totals(&r[1]), (5, 1, true));
    assert_eq!(totals(&r[2]), (12, 2, false));
    // The whole request replayed later (an exporter-side retry upstream, a restart replay).
    let again = run(&s, 10, vec![add_to("t", 1, 5), add_to("t", 2, 7)]);
    assert!(again
        .iter()
        .all(|r| matches!(r, OpResult::Task { replayed: true, .. })));
    let t = s.task_totals("t").unwrap();
    assert_eq!(
        (t.cost(), t.llm_calls, t.tokens.input()),
        (NanoUsd(12), 2, 20)
    );
    // The same span id in another task is another contribution.
    run(&s, 10, vec![add_to("u", 1, 5)]);
    assert_eq!(s.task_totals("u").unwrap().cost(), NanoUsd(5));
    // An ended task is forgotten, with its contributions.
    run(&s, 20, vec![Op::EndTask { task: "t".into() }]);
    assert_eq!(s.task_totals("t"), None);
}

#[test]
fn fire_once_answers_true_exactly_once_per_scope_and_marker() {
    let s = MemoryStore::new();
    let fire = |scope: &str, marker, ttl_ms| Op::FireOnce {
        scope: scope.into(),
        marker,
        ttl_ms,
    };
    let r = run(
        &s,
        0,
        vec![
            fire("t", 1, None),
            fire("t", 1, None),
            fire("t", 2, None),
            fire("u", 1, None),
        ],
    );
    assert_eq!(
        r,
        vec![
            OpResult::Fired(true),
            OpResult::Fired(false),
            OpResult::Fired(true),
            OpResult::Fired(true)
        ]
    );
    assert_eq!(
        run(&s, 1_000_000, vec![fire("t", 1, None)]),
        vec![OpResult::Fired(false)]
    );
    // The task ends: its markers go with it.
    run(&s, 5, vec![Op::EndTask { task: "t".into() }]);
    assert_eq!(
        run(&s, 6, vec![fire("t", 1, None)]),
        vec![OpResult::Fired(true)]
    );
    // A marker with a TTL may fire again once it has passed.
    assert_eq!(
        run(&s, 0, vec![fire("w", 9, Some(100))]),
        vec![OpResult::Fired(true)]
    );
    assert_eq!(
        run(&s, 99, vec![fire("w", 9, Some(100))]),
        vec![OpResult::Fired(false)]
    );
    assert_eq!(
        run(&s, 100, vec![fire("w", 9, Some(100))]),
        vec![OpResult::Fired(true)]
    );
}

#[test]
fn a_call_fingerprint_is_claimed_once_until_its_ttl_passes() {
    let s = MemoryStore::new();
    let claim = |f| Op::ClaimCall {
        fingerprint: f,
        ttl_ms: 1_000,
    };
    assert_eq!(
        run(&s, 0, vec![claim(1), claim(1), claim(2)]),
        vec![
            OpResult::Claimed(true),
            OpResult::Claimed(false),
            OpResult::Claimed(true)
        ]
    );
    assert_eq!(run(&s, 999, vec![claim(1)]), vec![OpResult::Claimed(false)]);
    assert_eq!(
        run(&s, 1_000, vec![claim(1)]),
        vec![OpResult::Claimed(true)]
    );
    // Claimed again at 1000: alive until 2000, whatever the old entry in the expiry queue.
    assert_eq!(
        run(&s, 1_500, vec![claim(1)]),
        vec![OpResult::Claimed(false)]
    );
    assert_eq!(run(&s, 2_000, vec![claim(1), claim(2)]).len(), 2);
    assert_eq!(
        s.claims.lock().until.len(),
        2,
        "expired claims are forgotten"
    );
}

#[test]
fn budgets_check_and_increment_exactly_and_idempotently() {
    let s = MemoryStore::new();
    let key = BudgetKey {
        budget: "team".into(),
        key_values: vec!["search".into()],
        period_start_ms: 1_764_000_000_000,
    };
    let add = |n, cost| Op::AddToBudget {
        key: key.clone(),
        id: id(n),
        cost: NanoUsd(cost),
        limit: Some(NanoUsd(1_000_000_000)),
        expires_ms: None,
        window: None,
    };
    let r = run(
        &s,
        0,
        vec![
            add(1, 600_000_000),
            add(2, 400_000_000),
            add(3, 1),
            add(3, 1),
        ],
    );
    let crossed: Vec<(i64, bool, bool)> = r
        .iter()
        .map(|r| match r {
            OpResult::Budget {
                after,
                crossed,
                replayed,
                ..
            } => (after.nanos(), *crossed, *replayed),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        crossed,
        vec![
            (600_000_000, false, false),
            (1_000_000_000, false, false),
            (1_000_000_001, true, false),
            (1_000_000_001, false, true)
        ]
    );
    assert_eq!(s.budget_total(&key, 0), NanoUsd(1_000_000_001));
    let next = BudgetKey {
        period_start_ms: key.period_start_ms + 86_400_000,
        ..key.clone()
    };
    assert_eq!(s.budget_total(&next, 0), NanoUsd::ZERO);
}

#[test]
fn firing_window_alerts_are_recorded_and_cleared() {
    let s = MemoryStore::new();
    let set = |g: &str, since_ms| Op::SetFiring {
        rule: "slow".into(),
        group: vec![g.to_string()],
        since_ms,
    };
    run(
        &s,
        0,
        vec![set("a", Some(10)), set("b", Some(20)), set("a", None)],
    );
    assert_eq!(
        s.firing(),
        vec![Firing {
            rule: Arc::from("slow"),
            group: vec!["b".to_string()],
            since_ms: 20
        }]
    );
}

#[test]
fn the_store_is_bounded_and_forgets_idle_tasks() {
    let s = MemoryStore::with_limits(StateLimits {
        max_tasks: 32,
        max_contributions: 4,
        max_claims: 8,
        task_idle_ms: 1_000,
    });
    for n in 0..200u8 {
        run(&s, 0, vec![add_to(&format!("t{n}"), n, 1)]);
    }
    assert!(s.tasks() <= 32, "{} tasks held", s.tasks());
    // The newest tasks are the ones kept.
    assert!(s.task_totals("t199").is_some());
    assert!(s.task_totals("t0").is_none());
    for n in 0..50u8 {
        run(
            &s,
            0,
            vec![Op::ClaimCall {
                fingerprint: u128::from(n),
                ttl_ms: 1_000_000,
            }],
        );
    }
    assert!(s.claims() <= 8);
    // Beyond the contribution bound a task still counts new spans.
    for n in 0..10u8 {
        run(&s, 0, vec![add_to("many", n, 1)]);
    }
    assert_eq!(s.task_totals("many").unwrap().spans, 10);
    // Idle tasks and their markers are forgotten by maintain; touched ones are kept.
    run(
        &s,
        500,
        vec![
            add_to("fresh", 1, 1),
            Op::FireOnce {
                scope: "t199".into(),
                marker: 1,
                ttl_ms: None,
            },
        ],
    );
    s.maintain(1_200);
    assert!(s.task_totals("t199").is_none());
    assert!(s.task_totals("fresh").is_some());
    assert_eq!(
        run(
            &s,
            1_200,
            vec![Op::FireOnce {
                scope: "t199".into(),
                marker: 1,
                ttl_ms: None,
            }]
        ),
        vec![OpResult::Fired(true)],
        "the markers of a forgotten task go with it"
    );
}

#[test]
fn a_snapshot_rebuilds_the_same_store() {
    let s = MemoryStore::new();
    run(&s, 5, vec![add_to("t", 1, 5), add_to("u", 2, 7)]);
    run(
        &s,
        6,
        vec![
            Op::FireOnce {
                scope: "t".into(),
                marker: 3,
                ttl_ms: None,
            },
            Op::ClaimCall {
                fingerprint: 9,
                ttl_ms: 100,
            },
            Op::SetFiring {
                rule: "w".into(),
                group: vec!["svc".into()],
                since_ms: Some(4),
            },
        ],
    );
    let r = MemoryStore::import(StateLimits::default(), s.export());
    assert_eq!(normal(r.export()), normal(s.export()));
    assert_eq!(
        run(&r, 7, vec![add_to("t", 1, 5)]),
        vec![OpResult::Task {
            totals: s.task_totals("t").unwrap(),
            replayed: true
        }]
    );
}

/// A snapshot in a canonical order (hash maps iterate in a per-store order).
fn normal(mut s: Snapshot) -> Snapshot {
    for t in &mut s.tasks {
        t.3.sort_unstable();
    }
    s.tasks.sort_by(|a, b| a.0.cmp(&b.0));
    s.markers.sort();
    for b in &mut s.budgets {
        b.seen.sort_unstable();
        for k in &mut b.buckets {
            k.2.sort_unstable();
        }
    }
    s.budgets.sort_by(|a, b| a.key.cmp(&b.key));
    s
}

fn budget_key(user: &str, period_start_ms: u64) -> BudgetKey {
    BudgetKey {
        budget: "per-user".into(),
        key_values: vec![user.into()],
        period_start_ms,
    }
}

/// #16: unbounded keys (100 000 users) are held until their period ends, then forgotten.
#[test]
fn budget_keys_are_kept_to_the_end_of_their_period_and_forgotten_after() {
    const START: u64 = 1_764_000_000_000;
    const END: u64 = START + 86_400_000;
    let s = MemoryStore::new();
    let users: Vec<String> = (0..100_000).map(|u| format!("user-{u}")).collect();
    let ops = users
        .iter()
        .enumerate()
        .map(|(i, u)| Op::AddToBudget {
            key: budget_key(u, START),
            id: ContributionId::new(&[1; 16], &(i as u64).to_be_bytes()),
            cost: NanoUsd(1_000 + i as i64),
            limit: None,
            expires_ms: Some(END),
            window: None,
        })
        .collect();
    run(&s, START + 1, ops);
    assert_eq!(s.budget_keys(), 100_000);
    let expired_before = METRICS.expired_budget.get();
    s.maintain(END - 1);
    assert_eq!(s.budget_keys(), 100_000, "not before the period ends");
    assert_eq!(
        s.budget_total(&budget_key("user-99999", START), END - 1),
        NanoUsd(100_999)
    );
    // Read after the end but before maintenance: the period is over, nothing is reported.
    assert_eq!(
        s.budget_total(&budget_key("user-1", START), END),
        NanoUsd::ZERO
    );
    s.maintain(END);
    assert_eq!(s.budget_keys(), 0);
    assert!(METRICS.expired_budget.get() - expired_before >= 100_000);
}

/// A rolling window counts exactly what its buckets hold, and slides bucket by bucket.
#[test]
fn a_rolling_budget_window_counts_its_last_buckets_exactly() {
    let w = Window {
        bucket_ms: 1_000,
        buckets: 3,
    };
    let s = MemoryStore::new();
    let key = budget_key("u", 0);
    let add = |n: u8, cost: i64, now: u64| Op::AddToBudget {
        key: key.clone(),
        id: id(n),
        cost: NanoUsd(cost),
        limit: Some(NanoUsd(500)),
        expires_ms: Some(w.counted_until(now)),
        window: Some(w),
    };
    let answer = |r: &[OpResult]| match r[0] {
        OpResult::Budget {
            before,
            after,
            crossed,
            replayed,
        } => (before.nanos(), after.nanos(), crossed, replayed),
        other => panic!("{other:?}"),
    };
    assert_eq!(
        answer(&run(&s, 0, vec![add(1, 100, 0)])),
        (0, 100, false, false)
    );
    assert_eq!(
        answer(&run(&s, 1_500, vec![add(2, 200, 1_500)])),
        (100, 300, false, false)
    );
    assert_eq!(
        answer(&run(&s, 2_500, vec![add(3, 300, 2_500)])),
        (300, 600, true, false)
    );
    // At 3 000 the first bucket (0..1 000) has left the window: 200 + 300 before the add,
    // back at the limit, so this add takes it over again.
    assert_eq!(
        answer(&run(&s, 3_000, vec![add(4, 1, 3_000)])),
        (500, 501, true, false)
    );
    // A replay of a call still in the window adds nothing.
    assert_eq!(
        answer(&run(&s, 3_100, vec![add(2, 200, 3_100)])),
        (501, 501, false, true)
    );
    assert_eq!(s.budget_total(&key, 3_999), NanoUsd(501));
    assert_eq!(s.budget_total(&key, 4_000), NanoUsd(301));
    assert_eq!(s.budget_total(&key, 5_999), NanoUsd(1));
    assert_eq!(s.budget_total(&key, 6_000), NanoUsd::ZERO);
    s.maintain(5_999);
    assert_eq!(s.budget_keys(), 1);
    s.maintain(6_000);
    assert_eq!(s.budget_keys(), 0, "the last call left the window");
    // A new call after that starts from zero.
    assert_eq!(
        answer(&run(&s, 9_000, vec![add(5, 7, 9_000)])),
        (0, 7, false, false)
    );
}
