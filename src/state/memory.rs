//! The in-memory [`StateStore`]: sharded maps behind short mutexes, answering synchronously, in
//! bounded memory ([`StateLimits`]).

use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::BuildHasher;
use std::sync::Arc;
use std::time::Instant;

use parking_lot::Mutex;

use super::metrics::METRICS;
use super::{
    Applied, BudgetKey, ContributionId, Firing, Op, OpResult, StateBatch, StateStore, Window,
};
use crate::units::{NanoUsd, TaskTotals};

/// Keys come from span attributes (client input): a seeded hash of good quality.
type RandomState = foldhash::quality::RandomState;

const SHARDS: usize = 16;

/// How much a [`MemoryStore`] holds at most. Every bound is enforced on the op that would
/// exceed it (the oldest entry goes first, counted in `tollgate_state_evicted_total{kind}`);
/// idle entries are also forgotten by [`StateStore::maintain`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateLimits {
    /// Most tasks held (their totals, contributions and markers).
    pub max_tasks: usize,
    /// Most contributions remembered per task and per budget period: beyond it, new
    /// contributions still add, but a replay of one of them would add again (counted as
    /// `kind="contribution"`).
    pub max_contributions: usize,
    /// Most call claims held.
    pub max_claims: usize,
    /// A task no op touched for this long is forgotten (ms): a backstop for tasks whose
    /// [`Op::EndTask`] never came (e.g. restored after a restart and never seen again).
    pub task_idle_ms: u64,
}

impl Default for StateLimits {
    fn default() -> Self {
        Self {
            max_tasks: 200_000,
            max_contributions: 10_000,
            max_claims: 200_000,
            task_idle_ms: 30 * 60 * 1000,
        }
    }
}

#[derive(Debug, Default)]
pub(super) struct TaskSlot {
    pub(super) totals: TaskTotals,
    /// Digests of the contributions added (see [`MemoryStore::digest`]).
    pub(super) seen: HashSet<u64, RandomState>,
    pub(super) last_ms: u64,
    seq: u64,
}

/// A firing window alert: (rule, group values).
type FiringKey = (Arc<str>, Vec<String>);

/// A fire-once marker and when it expires (ms; `None`: when its scope ends).
pub(super) type Marker = (u64, Option<u64>);

#[derive(Debug, Default)]
struct Shard {
    tasks: HashMap<Arc<str>, TaskSlot, RandomState>,
    /// Task creation order for eviction: (task, seq); stale entries (seq mismatch) are skipped.
    order: VecDeque<(Arc<str>, u64)>,
    next_seq: u64,
    /// Fire-once markers by scope.
    markers: HashMap<Arc<str>, Vec<Marker>, RandomState>,
}

impl Shard {
    fn evict_oldest(&mut self) -> bool {
        while let Some((key, seq)) = self.order.pop_front() {
            if self.tasks.get(&key).is_some_and(|s| s.seq == seq) {
                self.tasks.remove(&key);
                self.markers.remove(&key);
                return true;
            }
        }
        false
    }

    fn insert(&mut self, task: Arc<str>, mut slot: TaskSlot) {
        slot.seq = self.next_seq;
        self.next_seq += 1;
        self.order.push_back((task.clone(), slot.seq));
        self.tasks.insert(task, slot);
    }
}

#[derive(Debug, Default)]
struct Claims {
    until: HashMap<u128, u64, RandomState>,
    /// Claim order (fingerprint, expiry) for expiring old claims.
    order: VecDeque<(u128, u64)>,
}

impl Claims {
    fn expire(&mut self, now: u64) {
        while let Some(&(f, until)) = self.order.front() {
            if until > now {
                break;
            }
            self.order.pop_front();
            if self.until.get(&f) == Some(&until) {
                self.until.remove(&f);
            }
        }
    }
}

/// One budget key: a calendar period's total, or a rolling window's buckets.
#[derive(Debug, Default)]
pub(super) struct Budget {
    /// The total (a rolling window's: of the buckets held, as of the last add).
    pub(super) total: NanoUsd,
    /// Digests of the contributions added (calendar periods; a rolling window keeps them per
    /// bucket, so they leave with their bucket).
    pub(super) seen: HashSet<u64, RandomState>,
    /// Forgotten from this moment on (unix ms); `None`: kept.
    pub(super) until_ms: Option<u64>,
    /// `Some` for a rolling window.
    pub(super) window: Option<Window>,
    /// A rolling window's buckets, oldest first.
    pub(super) buckets: VecDeque<Bucket>,
}

/// One bucket of a rolling window.
#[derive(Debug, Default)]
pub(super) struct Bucket {
    pub(super) start_ms: u64,
    pub(super) total: NanoUsd,
    pub(super) seen: HashSet<u64, RandomState>,
}

impl Budget {
    /// Drops the buckets that left the window at `now` and recomputes the total.
    fn slide(&mut self, now: u64) {
        let Some(w) = self.window else { return };
        let first = w.first_counted(now);
        let before = self.buckets.len();
        while self.buckets.front().is_some_and(|b| b.start_ms < first) {
            self.buckets.pop_front();
        }
        if self.buckets.len() != before {
            self.total = sum(self.buckets.iter().map(|b| b.total));
        }
    }

    /// The total at `now`, without changing anything (the read side).
    fn total_at(&self, now: u64) -> NanoUsd {
        if self.until_ms.is_some_and(|u| u <= now) {
            return NanoUsd::ZERO;
        }
        match self.window {
            None => self.total,
            Some(w) => {
                let first = w.first_counted(now);
                sum(self
                    .buckets
                    .iter()
                    .filter(|b| b.start_ms >= first && b.start_ms <= now)
                    .map(|b| b.total))
            }
        }
    }

    fn contains(&self, digest: u64) -> bool {
        self.seen.contains(&digest) || self.buckets.iter().any(|b| b.seen.contains(&digest))
    }

    fn contributions(&self) -> usize {
        self.seen.len() + self.buckets.iter().map(|b| b.seen.len()).sum::<usize>()
    }

    /// Adds `cost` as contribution `digest` (remembered while under `max` contributions).
    fn add(&mut self, digest: u64, cost: NanoUsd, now: u64, max: usize) {
        let remember = self.contributions() < max;
        if !remember {
            METRICS.evicted_contribution.inc();
        }
        self.total = self.total.saturating_add(cost);
        let Some(w) = self.window else {
            if remember {
                self.seen.insert(digest);
            }
            return;
        };
        let start = w.bucket_start(now);
        // Buckets are kept in start order; a batch from an earlier moment (clocks of a fleet
        // differ slightly) lands in its own bucket.
        let at = self.buckets.partition_point(|b| b.start_ms < start);
        if self.buckets.get(at).is_none_or(|b| b.start_ms != start) {
            self.buckets.insert(
                at,
                Bucket {
                    start_ms: start,
                    ..Bucket::default()
                },
            );
        }
        let bucket = &mut self.buckets[at];
        bucket.total = bucket.total.saturating_add(cost);
        if remember {
            bucket.seen.insert(digest);
        }
    }
}

fn sum(it: impl Iterator<Item = NanoUsd>) -> NanoUsd {
    it.fold(NanoUsd::ZERO, |a, b| a.saturating_add(b))
}

/// A budget key as a snapshot holds it.
#[derive(Debug, PartialEq)]
pub(super) struct BudgetSnap {
    pub(super) key: BudgetKey,
    pub(super) total: NanoUsd,
    pub(super) seen: Vec<u64>,
    pub(super) until_ms: Option<u64>,
    pub(super) window: Option<Window>,
    /// (bucket start, total, contribution digests), oldest first.
    pub(super) buckets: Vec<(u64, NanoUsd, Vec<u64>)>,
}

/// Everything a [`MemoryStore`] holds, in an order that rebuilds it (tasks oldest first), for
/// the durable store's snapshots.
#[derive(Debug, Default, PartialEq)]
pub(super) struct Snapshot {
    /// The contribution digest seed (digests in `seen` sets are only meaningful with it).
    pub(super) seed: u64,
    /// (task, totals, last touched ms, contribution digests).
    pub(super) tasks: Vec<(Arc<str>, TaskTotals, u64, Vec<u64>)>,
    pub(super) markers: Vec<(Arc<str>, Vec<Marker>)>,
    /// (fingerprint, claimed until ms), oldest first.
    pub(super) claims: Vec<(u128, u64)>,
    pub(super) budgets: Vec<BudgetSnap>,
    pub(super) firing: Vec<Firing>,
}

/// The in-memory state store (see [`StateStore`] for the contract), bounded by
/// [`StateLimits`]. Forgets everything on restart. Share it as `Arc<MemoryStore>`.
#[derive(Debug)]
pub struct MemoryStore {
    hasher: RandomState,
    /// Seeds the contribution digests (kept in snapshots, so a restored store agrees).
    seed: u64,
    digester: foldhash::quality::FixedState,
    limits: StateLimits,
    per_shard_tasks: usize,
    shards: Box<[Mutex<Shard>]>,
    claims: Mutex<Claims>,
    budgets: Mutex<HashMap<BudgetKey, Budget>>,
    firing: Mutex<HashMap<FiringKey, u64>>,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::with_limits(StateLimits::default())
    }
}

impl MemoryStore {
    /// An empty store with the default limits.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty store holding at most `limits`.
    pub fn with_limits(limits: StateLimits) -> Self {
        Self::seeded(limits, RandomState::default().hash_one(0x5eed_u64))
    }

    pub(super) fn seeded(limits: StateLimits, seed: u64) -> Self {
        std::sync::LazyLock::force(&METRICS);
        Self {
            hasher: RandomState::default(),
            seed,
            digester: foldhash::quality::FixedState::with_seed(seed),
            per_shard_tasks: (limits.max_tasks / SHARDS).max(1),
            limits,
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            claims: Mutex::default(),
            budgets: Mutex::default(),
            firing: Mutex::default(),
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> StateLimits {
        self.limits
    }

    /// Tasks held.
    pub fn tasks(&self) -> usize {
        self.shards.iter().map(|s| s.lock().tasks.len()).sum()
    }

    /// Budget keys held (calendar periods and rolling windows).
    pub fn budget_keys(&self) -> usize {
        self.budgets.lock().len()
    }

    /// Call claims held (live or not yet expired from the queue).
    pub fn claims(&self) -> usize {
        self.claims.lock().until.len()
    }

    fn shard(&self, key: &str) -> &Mutex<Shard> {
        &self.shards[self.hasher.hash_one(key) as usize % self.shards.len()]
    }

    /// A 64-bit digest of a contribution (seeded, so clients cannot aim collisions at it).
    fn digest(&self, id: &ContributionId) -> u64 {
        self.digester.hash_one(id)
    }

    fn apply_one(&self, op: &Op, now: u64) -> OpResult {
        match op {
            Op::AddToTask { task, id, delta } => {
                let digest = self.digest(id);
                let mut shard = self.shard(task).lock();
                if !shard.tasks.contains_key(&**task) {
                    if shard.tasks.len() >= self.per_shard_tasks && shard.evict_oldest() {
                        METRICS.evicted_task.inc();
                    }
                    shard.insert(task.clone(), TaskSlot::default());
                }
                let Some(slot) = shard.tasks.get_mut(&**task) else {
                    unreachable!("the task was just inserted under the lock")
                };
                slot.last_ms = slot.last_ms.max(now);
                let replayed = slot.seen.contains(&digest);
                if !replayed {
                    if slot.seen.len() < self.limits.max_contributions {
                        slot.seen.insert(digest);
                    } else {
                        METRICS.evicted_contribution.inc();
                    }
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
                c.expire(now);
                if c.until.get(fingerprint).is_some_and(|&u| u > now) {
                    return OpResult::Claimed(false);
                }
                while c.until.len() >= self.limits.max_claims {
                    let Some((f, until)) = c.order.pop_front() else {
                        break;
                    };
                    if c.until.get(&f) == Some(&until) {
                        c.until.remove(&f);
                        METRICS.evicted_claim.inc();
                    }
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
                expires_ms,
                window,
            } => {
                let digest = self.digest(id);
                let mut budgets = self.budgets.lock();
                let b = match budgets.get_mut(key) {
                    Some(b) => b,
                    None => budgets.entry(key.clone()).or_default(),
                };
                if b.until_ms.is_some_and(|u| u <= now) {
                    // Expired but not yet maintained: a new period of the same key.
                    *b = Budget::default();
                }
                if window.is_some() {
                    b.window = *window;
                }
                b.slide(now);
                b.until_ms = match (b.until_ms, expires_ms) {
                    (Some(a), Some(e)) => Some(a.max(*e)),
                    (a, e) => a.or(*e),
                };
                let before = b.total;
                let replayed = b.contains(digest);
                if !replayed {
                    b.add(digest, *cost, now, self.limits.max_contributions);
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
                        firing.insert((rule.clone(), group.clone()), *since);
                    }
                    None => {
                        firing.remove(&(rule.clone(), group.clone()));
                    }
                }
                OpResult::Done
            }
        }
    }

    /// Forgets tasks idle for `task_idle_ms`, markers of scopes that ended or expired, and
    /// expired claims.
    fn expire(&self, now: u64) {
        let idle = self.limits.task_idle_ms;
        let mut expired = 0u64;
        for shard in self.shards.iter() {
            let mut shard = shard.lock();
            let shard = &mut *shard;
            let before = shard.tasks.len();
            shard
                .tasks
                .retain(|_, slot| now.saturating_sub(slot.last_ms) < idle);
            expired += (before - shard.tasks.len()) as u64;
            let tasks = &shard.tasks;
            shard.markers.retain(|scope, marks| {
                marks.retain(|(_, until)| until.is_none_or(|u| u > now));
                !marks.is_empty()
                    && (tasks.contains_key(scope) || marks.iter().all(|m| m.1.is_some()))
            });
            if shard.order.len() > 2 * shard.tasks.len() + 1024 {
                shard
                    .order
                    .retain(|(k, seq)| tasks.get(k).is_some_and(|s| s.seq == *seq));
            }
        }
        METRICS.expired_task.inc_by(expired);
        self.claims.lock().expire(now);
        let mut budgets = self.budgets.lock();
        let before = budgets.len();
        budgets.retain(|_, b| b.until_ms.is_none_or(|u| u > now));
        METRICS
            .expired_budget
            .inc_by((before - budgets.len()) as u64);
        for b in budgets.values_mut() {
            b.slide(now);
        }
    }

    /// Everything held, for a snapshot.
    pub(super) fn export(&self) -> Snapshot {
        let mut snap = Snapshot {
            seed: self.seed,
            ..Snapshot::default()
        };
        for shard in self.shards.iter() {
            let shard = shard.lock();
            for (key, seq) in &shard.order {
                if let Some(slot) = shard.tasks.get(key).filter(|s| s.seq == *seq) {
                    let seen = slot.seen.iter().copied().collect();
                    snap.tasks
                        .push((key.clone(), slot.totals, slot.last_ms, seen));
                }
            }
            for (scope, marks) in &shard.markers {
                snap.markers.push((scope.clone(), marks.clone()));
            }
        }
        {
            let c = self.claims.lock();
            snap.claims = c
                .order
                .iter()
                .filter(|(f, u)| c.until.get(f) == Some(u))
                .copied()
                .collect();
        }
        for (key, b) in self.budgets.lock().iter() {
            snap.budgets.push(BudgetSnap {
                key: key.clone(),
                total: b.total,
                seen: b.seen.iter().copied().collect(),
                until_ms: b.until_ms,
                window: b.window,
                buckets: b
                    .buckets
                    .iter()
                    .map(|k| (k.start_ms, k.total, k.seen.iter().copied().collect()))
                    .collect(),
            });
        }
        snap.firing = self.firing();
        snap
    }

    /// A store holding `snap` (as exported), bounded by `limits`.
    pub(super) fn import(limits: StateLimits, snap: Snapshot) -> Self {
        let store = Self::seeded(limits, snap.seed);
        for (task, totals, last_ms, seen) in snap.tasks {
            let mut shard = store.shard(&task).lock();
            if shard.tasks.len() >= store.per_shard_tasks {
                shard.evict_oldest();
            }
            let slot = TaskSlot {
                totals,
                seen: seen.into_iter().collect(),
                last_ms,
                seq: 0,
            };
            shard.insert(task, slot);
        }
        for (scope, marks) in snap.markers {
            store.shard(&scope).lock().markers.insert(scope, marks);
        }
        {
            let mut c = store.claims.lock();
            for (f, until) in snap.claims {
                c.until.insert(f, until);
                c.order.push_back((f, until));
            }
        }
        {
            let mut budgets = store.budgets.lock();
            for b in snap.budgets {
                let budget = Budget {
                    total: b.total,
                    seen: b.seen.into_iter().collect(),
                    until_ms: b.until_ms,
                    window: b.window,
                    buckets: b
                        .buckets
                        .into_iter()
                        .map(|(start_ms, total, seen)| Bucket {
                            start_ms,
                            total,
                            seen: seen.into_iter().collect(),
                        })
                        .collect(),
                };
                budgets.insert(b.key, budget);
            }
        }
        {
            let mut firing = store.firing.lock();
            for f in snap.firing {
                firing.insert((f.rule, f.group), f.since_ms);
            }
        }
        store
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

    fn budget_total(&self, key: &BudgetKey, now_ms: u64) -> NanoUsd {
        self.budgets
            .lock()
            .get(key)
            .map_or(NanoUsd::ZERO, |b| b.total_at(now_ms))
    }

    fn firing(&self) -> Vec<Firing> {
        let mut all: Vec<Firing> = self
            .firing
            .lock()
            .iter()
            .map(|((rule, group), since)| Firing {
                rule: rule.clone(),
                group: group.clone(),
                since_ms: *since,
            })
            .collect();
        all.sort_by(|a, b| (&a.rule, &a.group).cmp(&(&b.rule, &b.group)));
        all
    }

    fn maintain(&self, now_ms: u64) {
        self.expire(now_ms);
    }
}

#[cfg(test)]
mod tests;
