//! The Redis state store (#15) against a real `redis-server` (Debian, started by the test on a
//! loopback port): the `StateStore` contract the in-memory store is held to (idempotent adds by
//! contribution, fire once, claims with TTL, exact budgets, rolling windows, window firing),
//! exact beyond a double's 53 bits, shared by two stores (two replicas) on one server, and a
//! clear error — never a hang or a crash — when Redis is down, then working again when it is back.

mod redis_support;
mod require;

use std::sync::Arc;
use std::time::{Duration, Instant};

use tollgate::state::{
    BudgetKey, ContributionId, Firing, Op, OpResult, RedisOptions, RedisStore, StateBatch,
    StateError, StateStore, Window,
};
use tollgate::units::{NanoUsd, TaskTotals, Tokens, Unpriced};

fn options(url: &str, prefix: &str) -> RedisOptions {
    RedisOptions {
        url: url.to_owned(),
        prefix: prefix.to_owned(),
        pool: 4,
        connect_timeout: Duration::from_secs(2),
        timeout: Duration::from_secs(5),
        task_idle_ms: 60_000,
        backlog_max_ops: 1_000,
    }
}

fn store(url: &str, prefix: &str) -> RedisStore {
    RedisStore::open(options(url, prefix)).expect("a valid URL")
}

fn run(s: &dyn StateStore, now_ms: u64, ops: Vec<Op>) -> Result<Vec<OpResult>, StateError> {
    let batch = StateBatch { now_ms, ops };
    match s
        .apply(batch, Instant::now() + Duration::from_secs(5))
        .now()
    {
        Ok(r) => r,
        Err(_) => panic!("the Redis store answers synchronously"),
    }
}

fn ok(s: &dyn StateStore, now_ms: u64, ops: Vec<Op>) -> Vec<OpResult> {
    run(s, now_ms, ops).expect("Redis answers")
}

fn id(n: u8) -> ContributionId {
    ContributionId::new(&[7; 16], &[n; 8])
}

fn delta(cost: i64) -> TaskTotals {
    TaskTotals {
        cost_nano_usd: cost,
        tokens: Tokens {
            input_uncached: 10,
            cache_read: 20,
            cache_write: 30,
            output: 40,
        },
        llm_calls: 1,
        unpriced: Unpriced::default(),
        errors: 0,
        spans: 1,
        first_seen_unix_nano: 1_764_000_000_000_000_000,
        last_seen_unix_nano: 1_764_000_001_000_000_000,
    }
}

fn add(task: &str, n: u8, d: TaskTotals) -> Op {
    Op::AddToTask {
        task: task.into(),
        id: id(n),
        delta: d,
    }
}

fn redis() -> Option<redis_support::Redis> {
    redis_support::find_binary().map(|b| redis_support::start(&b))
}

#[test]
fn task_totals_add_once_per_contribution_exactly_and_expire_when_idle() {
    let Some(r) = redis() else { return };
    let s = store(&r.url(), "t1:");
    let mut second = delta(2);
    second.first_seen_unix_nano = 1_763_999_999_000_000_000;
    second.last_seen_unix_nano = 1_764_000_000_500_000_000;
    second.unpriced.unknown_model = 1;
    second.errors = 1;
    let res = ok(
        &s,
        0,
        vec![
            add("task", 1, delta(5)),
            add("task", 2, second),
            add("task", 1, delta(5)),
        ],
    );
    let OpResult::Task { totals, replayed } = res[2] else {
        panic!("{res:?}")
    };
    assert!(replayed);
    assert!(matches!(
        res[0],
        OpResult::Task {
            replayed: false,
            ..
        }
    ));
    let mut want = delta(5);
    want.merge(&second);
    assert_eq!(totals, want);
    assert_eq!(s.task_totals("task"), Some(want));
    assert_eq!(s.task_totals("other"), None);
    ok(
        &s,
        0,
        vec![Op::EndTask {
            task: "task".into(),
        }],
    );
    // One replica ending the task does not wipe what the fleet shares: the totals, the
    // contributions (a retry elsewhere is still a replay) stay until no replica adds for
    // `task_idle_ms`.
    assert_eq!(s.task_totals("task"), Some(want));
    let res = ok(&s, 0, vec![add("task", 1, delta(5))]);
    assert!(
        matches!(res[0], OpResult::Task { replayed: true, .. }),
        "{res:?}"
    );
    let short = RedisStore::open(RedisOptions {
        task_idle_ms: 300,
        ..options(&r.url(), "t1b:")
    })
    .unwrap();
    ok(&short, 0, vec![add("idle", 1, delta(5))]);
    assert!(short.task_totals("idle").is_some());
    // Expiry is Redis's own TTL: wait well past it.
    std::thread::sleep(Duration::from_millis(1_200));
    assert_eq!(short.task_totals("idle"), None, "forgotten once idle");
}

#[test]
fn amounts_beyond_2_pow_53_stay_exact() {
    let Some(r) = redis() else { return };
    let s = store(&r.url(), "t2:");
    let big = (1i64 << 53) + 1;
    ok(
        &s,
        0,
        vec![add("t", 1, delta(big)), add("t", 2, delta(big))],
    );
    assert_eq!(s.task_totals("t").unwrap().cost_nano_usd, 2 * big);
    let key = BudgetKey {
        budget: "b".into(),
        key_values: vec!["u".into()],
        period_start_ms: 1,
    };
    let b = |n| Op::AddToBudget {
        key: key.clone(),
        id: id(n),
        cost: NanoUsd(big),
        limit: None,
        expires_ms: None,
        window: None,
    };
    ok(&s, 0, vec![b(1), b(2), b(3)]);
    assert_eq!(s.budget_total(&key, 0), NanoUsd(3 * big));
}

#[test]
fn fire_once_per_scope_and_marker_until_the_ttl() {
    let Some(r) = redis() else { return };
    let s = store(&r.url(), "t3:");
    let fire = |scope: &str, marker, ttl_ms| Op::FireOnce {
        scope: scope.into(),
        marker,
        ttl_ms,
    };
    // Marker expiry is also a Redis TTL (PEXPIREAT, the server's wall clock): the batches'
    // clock is the wall clock here too, as in tollgate.
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let r1 = ok(
        &s,
        t,
        vec![
            fire("task", 1, None),
            fire("task", 1, None),
            fire("task", 2, None),
        ],
    );
    assert_eq!(
        r1,
        [
            OpResult::Fired(true),
            OpResult::Fired(false),
            OpResult::Fired(true)
        ]
    );
    // A marker with a TTL fires again once it passed (on the batches' clock).
    let ttl = Some(600_000);
    assert_eq!(ok(&s, t, vec![fire("b", 9, ttl)]), [OpResult::Fired(true)]);
    assert_eq!(
        ok(&s, t + 599_999, vec![fire("b", 9, ttl)]),
        [OpResult::Fired(false)]
    );
    assert_eq!(
        ok(&s, t + 600_000, vec![fire("b", 9, ttl)]),
        [OpResult::Fired(true)]
    );
    ok(
        &s,
        t,
        vec![Op::EndTask {
            task: "task".into(),
        }],
    );
    assert_eq!(
        ok(&s, t, vec![fire("task", 1, None)]),
        [OpResult::Fired(false)],
        "a fleet's task marker outlives one replica's end of the task"
    );
}

#[test]
fn a_call_claim_holds_for_its_ttl() {
    let Some(r) = redis() else { return };
    let s = store(&r.url(), "t4:");
    let claim = |f, ttl_ms| Op::ClaimCall {
        fingerprint: f,
        ttl_ms,
    };
    assert_eq!(
        ok(
            &s,
            0,
            vec![
                claim(u128::MAX, 60_000),
                claim(u128::MAX, 60_000),
                claim(1, 300)
            ]
        ),
        [
            OpResult::Claimed(true),
            OpResult::Claimed(false),
            OpResult::Claimed(true)
        ]
    );
    // Claims expire on Redis's clock: wait well past the 300 ms TTL.
    std::thread::sleep(Duration::from_millis(1_200));
    assert_eq!(
        ok(&s, 0, vec![claim(1, 300), claim(u128::MAX, 60_000)]),
        [OpResult::Claimed(true), OpResult::Claimed(false)]
    );
}

#[test]
fn budgets_check_and_increment_and_a_rolling_window_slides() {
    let Some(r) = redis() else { return };
    let s = store(&r.url(), "t5:");
    let key = BudgetKey {
        budget: "team".into(),
        key_values: vec!["search".into(), "x".into()],
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
    let r1 = ok(
        &s,
        0,
        vec![
            add(1, 600_000_000),
            add(2, 400_000_000),
            add(3, 1),
            add(3, 1),
        ],
    );
    let got: Vec<(i64, i64, bool, bool)> = r1
        .iter()
        .map(|r| match r {
            OpResult::Budget {
                before,
                after,
                crossed,
                replayed,
            } => (before.nanos(), after.nanos(), *crossed, *replayed),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        got,
        [
            (0, 600_000_000, false, false),
            (600_000_000, 1_000_000_000, false, false),
            (1_000_000_000, 1_000_000_001, true, false),
            (1_000_000_001, 1_000_000_001, false, true),
        ]
    );
    // Another key value is another budget (values are length-prefixed: no "a\0b" collisions).
    let other = BudgetKey {
        key_values: vec!["search\u{0}x".into()],
        ..key.clone()
    };
    assert_eq!(s.budget_total(&other, 0), NanoUsd::ZERO);

    // Rolling: 3 buckets of 1 s, as the in-memory store's test.
    let w = Window {
        bucket_ms: 1_000,
        buckets: 3,
    };
    let rk = BudgetKey {
        budget: "roll".into(),
        key_values: vec!["u".into()],
        period_start_ms: 0,
    };
    let radd = |n, cost, _now: u64| Op::AddToBudget {
        key: rk.clone(),
        id: id(n),
        cost: NanoUsd(cost),
        limit: Some(NanoUsd(500)),
        // Far in the future: Redis expires on its own clock, the test's batches use a toy one.
        expires_ms: Some(4_000_000_000_000),
        window: Some(w),
    };
    let after = |r: &[OpResult]| match r[0] {
        OpResult::Budget {
            before,
            after,
            replayed,
            ..
        } => (before.nanos(), after.nanos(), replayed),
        other => panic!("{other:?}"),
    };
    assert_eq!(after(&ok(&s, 0, vec![radd(1, 100, 0)])), (0, 100, false));
    assert_eq!(
        after(&ok(&s, 1_500, vec![radd(2, 200, 1_500)])),
        (100, 300, false)
    );
    assert_eq!(
        after(&ok(&s, 2_500, vec![radd(3, 300, 2_500)])),
        (300, 600, false)
    );
    assert_eq!(
        after(&ok(&s, 3_000, vec![radd(4, 1, 3_000)])),
        (500, 501, false)
    );
    assert_eq!(
        after(&ok(&s, 3_100, vec![radd(2, 200, 3_100)])),
        (501, 501, true)
    );
    assert_eq!(s.budget_total(&rk, 3_999), NanoUsd(501));
    assert_eq!(s.budget_total(&rk, 4_000), NanoUsd(301));
    assert_eq!(s.budget_total(&rk, 6_000), NanoUsd::ZERO);
}

#[test]
fn window_firing_is_recorded_and_resolved() {
    let Some(r) = redis() else { return };
    let s = store(&r.url(), "t6:");
    let set = |rule: &str, group: Vec<String>, since_ms| Op::SetFiring {
        rule: rule.into(),
        group,
        since_ms,
    };
    ok(
        &s,
        0,
        vec![
            set("err", vec!["svc".into(), String::new()], Some(99)),
            set("cost", vec!["a\"b".into()], Some(7)),
            set("gone", vec![], Some(1)),
            set("gone", vec![], None),
        ],
    );
    assert_eq!(
        s.firing(),
        vec![
            Firing {
                rule: Arc::from("cost"),
                group: vec!["a\"b".into()],
                since_ms: 7
            },
            Firing {
                rule: Arc::from("err"),
                group: vec!["svc".into(), String::new()],
                since_ms: 99
            },
        ]
    );
}

/// Two stores on one server are two replicas: a task's calls reported on both add up once.
#[test]
fn two_replicas_share_totals_and_dedupe() {
    let Some(r) = redis() else { return };
    let a = store(&r.url(), "fleet:");
    let b = store(&r.url(), "fleet:");
    let threads: Vec<_> = [(0u8, a), (1u8, b)]
        .into_iter()
        .map(|(half, s)| {
            std::thread::spawn(move || {
                // Every call reaches both replicas (the SDK's span on one, a retry on the other),
                // in a different order on each.
                for i in 0..100u8 {
                    let n = if half == 0 { i } else { 99 - i };
                    ok(&s, 0, vec![add("shared", n, delta(1_000 + i64::from(n)))]);
                }
                s
            })
        })
        .collect();
    let stores: Vec<RedisStore> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    let want: i64 = (0..100).map(|n| 1_000 + n).sum();
    for s in &stores {
        let t = s.task_totals("shared").unwrap();
        assert_eq!(t.cost_nano_usd, want);
        assert_eq!(t.llm_calls, 100);
    }
    // A different prefix is a different fleet.
    assert_eq!(store(&r.url(), "other:").task_totals("shared"), None);
}

/// Redis down: a clear error, the store degraded (later batches do not wait for Redis), task
/// and budget updates kept in order; back up (restarted empty here: no persistence): the
/// kept updates are replayed by housekeeping and the store works again without a restart.
#[test]
fn redis_down_keeps_updates_and_replays_them_when_it_is_back() {
    let Some(mut r) = redis() else { return };
    let s = store(&r.url(), "t8:");
    ok(&s, 0, vec![add("t", 1, delta(1))]);
    assert!(!s.degraded());
    r.stop();
    let e = run(&s, 0, vec![add("t", 2, delta(10))]).expect_err("Redis is down");
    assert!(
        matches!(e, StateError::Unavailable(_) | StateError::Deadline),
        "{e}"
    );
    assert!(s.degraded());
    // Degraded: answered at once, kept. A claim is a decision for now: not kept.
    let e = run(
        &s,
        0,
        vec![
            add("t", 3, delta(100)),
            Op::ClaimCall {
                fingerprint: 9,
                ttl_ms: 60_000,
            },
            add("t", 2, delta(10)),
        ],
    )
    .expect_err("still down");
    assert!(e.to_string().contains("kept for replay"), "{e}");
    assert_eq!(
        s.backlog_ops(),
        3,
        "two adds of t2 (idempotent) and one of t3"
    );
    assert_eq!(s.task_totals("t"), None, "reads fail soft");
    // Housekeeping while Redis is still down changes nothing.
    s.maintain(0);
    assert!(s.degraded());
    assert_eq!(s.backlog_ops(), 3);

    r.restart();
    s.maintain(0);
    assert!(!s.degraded());
    assert_eq!(s.backlog_ops(), 0);
    let t = s.task_totals("t").expect("replayed");
    // The server restarted empty: t1 went with it; t2 counted once, t3 once.
    assert_eq!(t.cost_nano_usd, 110);
    assert_eq!(t.llm_calls, 2);
    let res = ok(&s, 0, vec![add("t", 4, delta(1000))]);
    let OpResult::Task { totals, replayed } = res[0] else {
        panic!("{res:?}")
    };
    assert!(!replayed);
    assert_eq!(totals.cost_nano_usd, 1110);
}

/// A Redis that restarts with its data (append-only file): nothing added during the outage
/// is lost, a budget threshold crossed by replayed adds is rechecked at the key's next call,
/// and the backlog's bound loses (and counts) the rest; stopping while Redis is down counts
/// what was kept as lost.
#[test]
fn a_persistent_redis_restart_keeps_totals_exact_and_the_backlog_is_bounded() {
    let Some(bin) = redis_support::find_binary() else {
        return;
    };
    let mut r = redis_support::start_persistent(&bin);
    let s = RedisStore::open(RedisOptions {
        backlog_max_ops: 50,
        ..options(&r.url(), "t10:")
    })
    .unwrap();
    let key = BudgetKey {
        budget: "daily".into(),
        key_values: vec!["alice".into()],
        period_start_ms: 0,
    };
    let spend = |n: u8, cost: i64| Op::AddToBudget {
        key: key.clone(),
        id: id(n),
        cost: NanoUsd(cost),
        limit: Some(NanoUsd(1_000)),
        expires_ms: None,
        window: None,
    };
    let mut want = 0;
    for n in 0..10u8 {
        ok(&s, 0, vec![add("p", n, delta(7)), spend(n, 50)]);
        want += 7;
    }
    assert!(!s.recheck_budget(&key));
    r.stop();
    // 20 batches of 2 ops = 40 kept; the next 10 batches: 10 kept (50), then lost.
    for n in 10..40u8 {
        run(&s, 0, vec![add("p", n, delta(7)), spend(n, 50)]).expect_err("Redis is down");
    }
    assert_eq!(s.backlog_ops(), 50);
    r.restart();
    s.maintain(0);
    assert!(!s.degraded());
    let t = s.task_totals("p").unwrap();
    // 10 before + 25 kept; the last 5 batches were lost (counted by the store's metric).
    assert_eq!(t.llm_calls, 35);
    assert_eq!(t.cost_nano_usd, 35 * 7);
    assert!(want < t.cost_nano_usd);
    // 35 × 50 = 1750 > 1000: crossed during the replay, which no live call saw.
    assert_eq!(s.budget_total(&key, 0), NanoUsd(1_750));
    assert!(
        s.recheck_budget(&key),
        "the next live call rechecks the level"
    );
    assert!(!s.recheck_budget(&key), "once");

    // Down at shutdown: what was kept is counted lost, the backlog emptied.
    r.stop();
    run(&s, 0, vec![add("p", 200, delta(7))]).expect_err("Redis is down");
    assert_eq!(s.backlog_ops(), 1);
    s.shutdown(0);
    assert_eq!(s.backlog_ops(), 0);
}

/// Without `redis-server` these tests fail under CI=true and skip loudly locally.
#[test]
fn without_redis_server_it_fails_under_ci() {
    require::assert_missing_program_fails_under_ci(
        "task_totals_add_once_per_contribution_exactly_and_expire_when_idle",
        "redis-server",
    );
}
