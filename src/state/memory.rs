//! The in-memory [`StateStore`]: sharded maps behind short mutexes, answering synchronously.

use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::BuildHasher;
use std::sync::Arc;
use std::time::Instant;

use parking_lot::Mutex;

use super::{Applied, BudgetKey, ContributionId, Op, OpResult, StateBatch, StateStore};
use crate::units::{NanoUsd, TaskTotals};

/// Keys come from span attributes (client input): a seeded hash of good quality.
type RandomState = foldhash::quality::RandomState;

const SHARDS: usize = 16;

#[derive(Debug, Default)]
struct TaskSlot {
    totals: TaskTotals,
    seen: HashSet<ContributionId, RandomState>,
}

/// A fire-once marker and when it expires (ms; `None`: when its scope ends).
type Marker = (u64, Option<u64>);

#[derive(Debug, Default)]
struct Shard {
    tasks: HashMap<Arc<str>, TaskSlot, RandomState>,
    /// Fire-once markers by scope.
    markers: HashMap<Arc<str>, Vec<Marker>, RandomState>,
}

#[derive(Debug, Default)]
struct Claims {
    until: HashMap<u128, u64, RandomState>,
    /// Claim order (fingerprint, expiry) for expiring old claims.
    order: VecDeque<(u128, u64)>,
}

#[derive(Debug, Default)]
struct Budget {
    total: NanoUsd,
    seen: HashSet<ContributionId, RandomState>,
}

/// The in-memory state store (see [`StateStore`] for the contract). Forgets everything on
/// restart. Share it as `Arc<MemoryStore>`.
#[derive(Debug)]
pub struct MemoryStore {
    hasher: RandomState,
    shards: Box<[Mutex<Shard>]>,
    claims: Mutex<Claims>,
    budgets: Mutex<HashMap<BudgetKey, Budget>>,
    firing: Mutex<HashMap<(Arc<str>, u64), u64>>,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self {
            hasher: RandomState::default(),
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            claims: Mutex::default(),
            budgets: Mutex::default(),
            firing: Mutex::default(),
        }
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn shard(&self, key: &str) -> &Mutex<Shard> {
        &self.shards[self.hasher.hash_one(key) as usize % self.shards.len()]
    }

    fn apply_one(&self, op: &Op, now: u64) -> OpResult {
        match op {
            Op::AddToTask { task, id, delta } => {
                let mut shard = self.shard(task).lock();
                let slot = match shard.tasks.get_mut(&**task) {
                    Some(s) => s,
                    None => shard.tasks.entry(task.clone()).or_default(),
                };
                let replayed = !slot.seen.insert(*id);
                if !replayed {
                    slot.totals.merge(delta);
                }
                OpResult::Task {
                    totals: slot.totals,
                    replayed,
                }
            }
            Op::EndTask { task } => {
                let mut shard = self.shard(task).lock();
                shard.tasks.remove(&**task);
                shard.markers.remove(&**task);
                OpResult::Done
            }
            Op::FireOnce {
                scope,
                marker,
                ttl_ms,
            } => {
                let mut shard = self.shard(scope).lock();
                let marks = match shard.markers.get_mut(&**scope) {
                    Some(m) => m,
                    None => shard.markers.entry(scope.clone()).or_default(),
                };
                marks.retain(|(_, until)| until.is_none_or(|u| u > now));
                if marks.iter().any(|(m, _)| m == marker) {
                    return OpResult::Fired(false);
                }
                marks.push((*marker, ttl_ms.map(|t| now.saturating_add(t))));
                OpResult::Fired(true)
            }
            Op::ClaimCall {
                fingerprint,
                ttl_ms,
            } => {
                let mut c = self.claims.lock();
                while let Some(&(f, until)) = c.order.front() {
                    if until > now {
                        break;
                    }
                    c.order.pop_front();
                    if c.until.get(&f) == Some(&until) {
                        c.until.remove(&f);
                    }
                }
                if c.until.get(fingerprint).is_some_and(|&u| u > now) {
                    return OpResult::Claimed(false);
                }
                let until = now.saturating_add(*ttl_ms);
                c.until.insert(*fingerprint, until);
                c.order.push_back((*fingerprint, until));
                OpResult::Claimed(true)
            }
            Op::AddToBudget {
                key,
                id,
                cost,
                limit,
            } => {
                let mut budgets = self.budgets.lock();
                let b = match budgets.get_mut(key) {
                    Some(b) => b,
                    None => budgets.entry(key.clone()).or_default(),
                };
                let before = b.total;
                let replayed = !b.seen.insert(*id);
                if !replayed {
                    b.total = b.total.saturating_add(*cost);
                }
                let after = b.total;
                OpResult::Budget {
                    before,
                    after,
                    crossed: limit.is_some_and(|l| before <= l && after > l),
                    replayed,
                }
            }
            Op::SetFiring {
                rule,
                group,
                since_ms,
            } => {
                let mut firing = self.firing.lock();
                match since_ms {
                    Some(since) => {
                        firing.insert((rule.clone(), *group), *since);
                    }
                    None => {
                        firing.remove(&(rule.clone(), *group));
                    }
                }
                OpResult::Done
            }
        }
    }
}

impl StateStore for MemoryStore {
    fn apply(&self, batch: StateBatch, _deadline: Instant) -> Applied {
        let now = batch.now_ms;
        Applied::Ready(Ok(batch
            .ops
            .iter()
            .map(|op| self.apply_one(op, now))
            .collect()))
    }

    fn task_totals(&self, task: &str) -> Option<TaskTotals> {
        self.shard(task).lock().tasks.get(task).map(|s| s.totals)
    }

    fn budget_total(&self, key: &BudgetKey) -> NanoUsd {
        self.budgets
            .lock()
            .get(key)
            .map_or(NanoUsd::ZERO, |b| b.total)
    }

    fn firing(&self) -> Vec<(Arc<str>, u64, u64)> {
        let mut all: Vec<(Arc<str>, u64, u64)> = self
            .firing
            .lock()
            .iter()
            .map(|((r, g), s)| (r.clone(), *g, *s))
            .collect();
        all.sort();
        all
    }
}

#[cfg(test)]
mod tests {
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
        assert_eq!(s.budget_total(&key), NanoUsd(1_000_000_001));
        let next = BudgetKey {
            period_start_ms: key.period_start_ms + 86_400_000,
            ..key.clone()
        };
        assert_eq!(s.budget_total(&next), NanoUsd::ZERO);
    }

    #[test]
    fn firing_window_alerts_are_recorded_and_cleared() {
        let s = MemoryStore::new();
        let set = |g, since_ms| Op::SetFiring {
            rule: "slow".into(),
            group: g,
            since_ms,
        };
        run(
            &s,
            0,
            vec![set(1, Some(10)), set(2, Some(20)), set(1, None)],
        );
        assert_eq!(s.firing(), vec![(Arc::from("slow"), 2, 20)]);
    }
}
