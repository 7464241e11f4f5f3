//! The task tracker: sharded maps of active tasks with a hard cap, a sweeper that ends them, and a
//! bounded store of recently ended tasks.

use std::collections::{HashMap, VecDeque};
use std::hash::BuildHasher;

/// Task keys come from span attributes (client input): a seeded hash of good quality, much
/// cheaper than SipHash on the per-span path.
type RandomState = foldhash::quality::RandomState;
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use super::metrics::METRICS;
use super::{Clock, SpanInput, TasksConfig};
use crate::state::{Op, StateBatch, StateStore};
use crate::units::TaskTotals;

const SHARDS: usize = 16;
/// Task ids, service names and task types are cut to this many bytes, so one span with a huge
/// attribute cannot make a task expensive to hold.
pub const MAX_KEY_BYTES: usize = 256;

/// `s` cut to at most `MAX_KEY_BYTES` bytes on a character boundary.
pub(crate) fn clip(s: &str) -> &str {
    if s.len() <= MAX_KEY_BYTES {
        return s;
    }
    let mut end = MAX_KEY_BYTES;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Why a task ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    /// No span arrived for the idle timeout.
    Idle,
    /// Its root span arrived and the grace period passed.
    Root,
    /// The active-task cap was reached and it was the oldest.
    Evicted,
}

impl EndReason {
    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::Idle => "idle",
            EndReason::Root => "root",
            EndReason::Evicted => "evicted",
        }
    }
}

/// Whether a task is still being tracked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    /// Spans may still arrive.
    Active,
    /// The task ended.
    Ended,
}

impl TaskStatus {
    /// `active` or `ended` (the task API and the status page).
    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Active => "active",
            TaskStatus::Ended => "ended",
        }
    }
}

/// A snapshot of one task.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskSummary {
    /// The task id.
    pub task_id: Arc<str>,
    /// The trace the task was first seen in.
    pub trace_id: [u8; 16],
    /// Running totals.
    pub totals: TaskTotals,
    /// `service.name` (of the root span once seen, else the first span).
    pub service: String,
    /// The task type; empty when unknown.
    pub task_type: String,
    /// Active or ended.
    pub status: TaskStatus,
    /// Why it ended, once it has.
    pub end_reason: Option<EndReason>,
    /// True once the task's root span has arrived.
    pub root_seen: bool,
}

/// The mutable state of one task, handed to the caller of [`TaskTracker::observe`] while its
/// shard is locked (so "fire once per task" decisions are atomic).
#[derive(Debug)]
pub struct TaskEntry<'a> {
    state: &'a mut TaskState,
}

impl TaskEntry<'_> {
    /// The totals including the span just observed.
    pub fn totals(&self) -> TaskTotals {
        self.state.totals
    }

    /// True when `mark` was already called for `id` on this task.
    pub fn is_marked(&self, id: u64) -> bool {
        self.state.marks.contains(&id)
    }

    /// Records `id` (e.g. a rule that fired) on the task.
    pub fn mark(&mut self, id: u64) {
        if !self.state.marks.contains(&id) {
            self.state.marks.push(id);
        }
    }
}

#[derive(Debug)]
struct TaskState {
    seq: u64,
    trace_id: [u8; 16],
    totals: TaskTotals,
    last_activity_ms: u64,
    root_seen_ms: Option<u64>,
    service: Box<str>,
    task_type: Box<str>,
    marks: Vec<u64>,
}

impl TaskState {
    fn summary(
        &self,
        key: &Arc<str>,
        status: TaskStatus,
        reason: Option<EndReason>,
    ) -> TaskSummary {
        TaskSummary {
            task_id: key.clone(),
            trace_id: self.trace_id,
            totals: self.totals,
            service: self.service.to_string(),
            task_type: self.task_type.to_string(),
            status,
            end_reason: reason,
            root_seen: self.root_seen_ms.is_some(),
        }
    }
}

#[derive(Debug, Default)]
struct Shard {
    map: HashMap<Arc<str>, TaskState, RandomState>,
    /// Creation order for eviction: (key, seq); stale entries (seq mismatch) are skipped.
    order: VecDeque<(Arc<str>, u64)>,
    next_seq: u64,
}

impl Shard {
    fn evict_oldest(&mut self) -> Option<(Arc<str>, TaskState)> {
        while let Some((key, seq)) = self.order.pop_front() {
            if self.map.get(&key).is_some_and(|s| s.seq == seq) {
                return self.map.remove_entry(&key);
            }
        }
        None
    }

    fn compact(&mut self) {
        if self.order.len() > 2 * self.map.len() + 1024 {
            let map = &self.map;
            self.order
                .retain(|(k, seq)| map.get(k).is_some_and(|s| s.seq == *seq));
            self.order.shrink_to_fit();
        }
    }
}

#[derive(Debug, Default)]
struct EndedStore {
    map: HashMap<Arc<str>, (TaskSummary, u64), RandomState>,
    order: VecDeque<(Arc<str>, u64, u64)>,
    next_seq: u64,
}

type EndedCallback = Box<dyn Fn(&TaskSummary) + Send + Sync>;

/// Tracks active tasks in bounded memory. Cheap to share (`Arc`); every method takes `&self`.
pub struct TaskTracker {
    shards: Box<[Mutex<Shard>]>,
    hasher: RandomState,
    per_shard_cap: usize,
    idle_ms: u64,
    grace_ms: u64,
    retention_ms: u64,
    max_ended: usize,
    sweep_interval: std::time::Duration,
    clock: Arc<dyn Clock>,
    ended: Mutex<EndedStore>,
    on_ended: RwLock<Vec<EndedCallback>>,
    /// Where the task totals live (when set): tasks that end here are ended there too.
    state: std::sync::OnceLock<Arc<dyn StateStore>>,
}

impl std::fmt::Debug for TaskTracker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskTracker")
            .field("active", &self.len())
            .field("capacity", &self.capacity())
            .finish_non_exhaustive()
    }
}

impl TaskTracker {
    /// A tracker with the given limits and clock.
    pub fn new(cfg: &TasksConfig, clock: Arc<dyn Clock>) -> Self {
        let shards = if cfg.max_active >= SHARDS * 64 {
            SHARDS
        } else {
            1
        };
        std::sync::LazyLock::force(&METRICS);
        Self {
            shards: (0..shards).map(|_| Mutex::new(Shard::default())).collect(),
            hasher: RandomState::default(),
            per_shard_cap: (cfg.max_active / shards).max(1),
            idle_ms: cfg.idle_timeout.as_millis() as u64,
            grace_ms: cfg.root_grace.as_millis() as u64,
            retention_ms: cfg.ended_retention.as_millis() as u64,
            max_ended: cfg.max_ended,
            sweep_interval: cfg.sweep_interval,
            clock,
            ended: Mutex::new(EndedStore::default()),
            on_ended: RwLock::new(Vec::new()),
            state: std::sync::OnceLock::new(),
        }
    }

    /// Makes `state` the home of the task totals: a task that ends here (idle, root + grace,
    /// evicted) is ended there with [`Op::EndTask`] (one batch per sweep). The tracker stays the
    /// view the read side reads (service, task type, status), its totals set from the store's
    /// answers ([`Self::observe_with`]). Set once; later calls are ignored.
    pub fn set_state(&self, state: Arc<dyn StateStore>) {
        self.state.set(state).ok();
    }

    fn end_in_state(&self, tasks: impl Iterator<Item = Arc<str>>) {
        let Some(state) = self.state.get() else {
            return;
        };
        let mut batch = StateBatch::new(self.clock.now_ms());
        for task in tasks {
            batch.push(Op::EndTask { task });
        }
        if batch.is_empty() {
            return;
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
        match state.apply(batch, deadline).now() {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => crate::state::failed_batch("task_end", &e),
            Err(pending) => {
                if let Ok(rt) = tokio::runtime::Handle::try_current() {
                    rt.spawn(async move {
                        if let Err(e) = pending.await {
                            crate::state::failed_batch("task_end", &e);
                        }
                    });
                }
            }
        }
    }

    /// The clock the tracker reads.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// Most tasks held at once.
    pub fn capacity(&self) -> usize {
        self.per_shard_cap * self.shards.len()
    }

    /// Tasks currently active.
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.lock().map.len()).sum()
    }

    /// True when no task is active.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// An estimate of the bytes the active set holds (map and queue capacity plus key and string
    /// allocations), for memory-bound checks.
    pub fn approx_bytes(&self) -> usize {
        let entry = size_of::<Arc<str>>() + size_of::<TaskState>() + 8;
        let queue = size_of::<(Arc<str>, u64)>();
        self.shards
            .iter()
            .map(|s| {
                let s = s.lock();
                let strings: usize = s
                    .map
                    .iter()
                    .map(|(k, v)| {
                        k.len() + 16 + v.service.len() + v.task_type.len() + v.marks.capacity() * 8
                    })
                    .sum();
                s.map.capacity() * entry + s.order.capacity() * queue + strings
            })
            .sum()
    }

    /// Registers a callback called once for every task that ends (idle, root + grace, evicted),
    /// e.g. to observe cost histograms. Called without any tracker lock held.
    pub fn on_ended(&self, f: impl Fn(&TaskSummary) + Send + Sync + 'static) {
        self.on_ended.write().push(Box::new(f));
    }

    fn shard(&self, key: &str) -> &Mutex<Shard> {
        let h = self.hasher.hash_one(key) as usize;
        &self.shards[h % self.shards.len()]
    }

    /// Adds one span to its task (creating the task, evicting the oldest if the cap is reached),
    /// then calls `f` with the task's entry while the task is locked. O(1).
    pub fn observe<R>(&self, span: &SpanInput<'_>, f: impl FnOnce(&mut TaskEntry<'_>) -> R) -> R {
        self.observe_at(span, self.clock.now_ms(), f)
    }

    /// [`Self::observe`] at `now` (milliseconds of this tracker's clock).
    pub fn observe_at<R>(
        &self,
        span: &SpanInput<'_>,
        now: u64,
        f: impl FnOnce(&mut TaskEntry<'_>) -> R,
    ) -> R {
        self.observe_with(span, now, None, f)
    }

    /// [`Self::observe_at`] with the task's totals as the state store answered them (the span
    /// already added, idempotently): they replace the view's totals unless an answer that saw
    /// more spans got here first (concurrent requests). `None` (no answer): the view adds the
    /// span itself.
    pub fn observe_with<R>(
        &self,
        span: &SpanInput<'_>,
        now: u64,
        totals: Option<TaskTotals>,
        f: impl FnOnce(&mut TaskEntry<'_>) -> R,
    ) -> R {
        let key = clip(span.task_key);
        let mut evicted = None;
        let result = {
            let mut guard = self.shard(key).lock();
            let shard = &mut *guard;
            if let Some(state) = shard.map.get_mut(key) {
                apply(state, span, now, totals);
                return f(&mut TaskEntry { state });
            }
            if shard.map.len() >= self.per_shard_cap {
                evicted = shard.evict_oldest();
            }
            let seq = shard.next_seq;
            shard.next_seq += 1;
            let mut trace_id = [0u8; 16];
            if span.trace_id.len() == 16 {
                trace_id.copy_from_slice(span.trace_id);
            }
            let k: Arc<str> = Arc::from(key);
            shard.order.push_back((k.clone(), seq));
            shard.map.insert(
                k,
                TaskState {
                    seq,
                    trace_id,
                    totals: TaskTotals::default(),
                    last_activity_ms: now,
                    root_seen_ms: None,
                    service: Box::from(clip(span.service)),
                    task_type: Box::from(clip(span.task_type)),
                    marks: Vec::new(),
                },
            );
            METRICS.active.inc();
            let Some(state) = shard.map.get_mut(key) else {
                unreachable!("the task was just inserted under the lock")
            };
            apply(state, span, now, totals);
            f(&mut TaskEntry { state })
        };
        if let Some((key, state)) = evicted {
            METRICS.evicted_capacity.inc();
            METRICS.active.dec();
            self.end_in_state(std::iter::once(key.clone()));
            self.finish(state.summary(&key, TaskStatus::Ended, Some(EndReason::Evicted)));
        }
        result
    }

    /// A snapshot of a task: active first, then recently ended.
    pub fn get(&self, task_id: &str) -> Option<TaskSummary> {
        let task_id = clip(task_id);
        let local = self.get_local(task_id);
        // A fleet's shared store holds what every replica added: answer its totals, with what
        // this replica saw of the task (service, task type, root) where it saw any of it.
        let Some(state) = self.state.get().filter(|s| s.shared()) else {
            return local;
        };
        let Some(totals) = state.task_totals(task_id) else {
            return local;
        };
        Some(match local {
            Some(mut s) => {
                s.totals = totals;
                s
            }
            None => TaskSummary {
                task_id: Arc::from(task_id),
                trace_id: [0; 16],
                totals,
                service: String::new(),
                task_type: String::new(),
                status: TaskStatus::Active,
                end_reason: None,
                root_seen: false,
            },
        })
    }

    fn get_local(&self, task_id: &str) -> Option<TaskSummary> {
        if let Some(s) = self.shard(task_id).lock().map.get_key_value(task_id) {
            return Some(s.1.summary(s.0, TaskStatus::Active, None));
        }
        let ended = self.ended.lock();
        ended.map.get(task_id).map(|(s, _)| s.clone())
    }

    /// The costliest tasks, active and recently ended, most expensive first.
    pub fn top_by_cost(&self, limit: usize) -> Vec<TaskSummary> {
        let mut all: Vec<TaskSummary> = Vec::new();
        for shard in self.shards.iter() {
            let shard = shard.lock();
            let mut costs: Vec<(i64, &Arc<str>, &TaskState)> = shard
                .map
                .iter()
                .map(|(k, v)| (v.totals.cost_nano_usd, k, v))
                .collect();
            top_n(&mut costs, limit, |c| c.0);
            all.extend(
                costs
                    .into_iter()
                    .map(|(_, k, v)| v.summary(k, TaskStatus::Active, None)),
            );
        }
        {
            let ended = self.ended.lock();
            let mut costs: Vec<&TaskSummary> = ended.map.values().map(|(s, _)| s).collect();
            top_n(&mut costs, limit, |s| s.totals.cost_nano_usd);
            all.extend(costs.into_iter().cloned());
        }
        top_n(&mut all, limit, |s| s.totals.cost_nano_usd);
        all.sort_by(|a, b| {
            b.totals
                .cost_nano_usd
                .cmp(&a.totals.cost_nano_usd)
                .then_with(|| a.task_id.cmp(&b.task_id))
        });
        all
    }

    /// Ends every task that has been idle for the timeout or whose root span arrived more than
    /// the grace period ago, and forgets ended tasks past their retention. Returns how many
    /// tasks ended.
    pub fn sweep(&self) -> usize {
        let now = self.clock.now_ms();
        let mut ended = Vec::new();
        for shard in self.shards.iter() {
            let mut shard = shard.lock();
            let done: Vec<(Arc<str>, EndReason)> = shard
                .map
                .iter()
                .filter_map(|(k, s)| {
                    if s.root_seen_ms
                        .is_some_and(|r| now.saturating_sub(r) >= self.grace_ms)
                    {
                        Some((k.clone(), EndReason::Root))
                    } else if now.saturating_sub(s.last_activity_ms) >= self.idle_ms {
                        Some((k.clone(), EndReason::Idle))
                    } else {
                        None
                    }
                })
                .collect();
            for (key, reason) in done {
                if let Some(state) = shard.map.remove(&key) {
                    ended.push(state.summary(&key, TaskStatus::Ended, Some(reason)));
                }
            }
            shard.compact();
        }
        let n = ended.len();
        METRICS.active.sub(n as i64);
        self.end_in_state(ended.iter().map(|s| s.task_id.clone()));
        for summary in ended {
            self.finish(summary);
        }
        self.expire_ended(now);
        n
    }

    /// Runs [`sweep`](Self::sweep) every `sweep_interval` until `cancel` fires.
    pub async fn run_sweeper(self: Arc<Self>, cancel: CancellationToken) {
        let mut tick = tokio::time::interval(self.sweep_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tick.tick() => { self.sweep(); }
            }
        }
    }

    fn finish(&self, summary: TaskSummary) {
        let reason = summary.end_reason.unwrap_or(EndReason::Idle);
        METRICS.ended(reason).inc();
        for f in self.on_ended.read().iter() {
            f(&summary);
        }
        if self.max_ended == 0 {
            return;
        }
        let now = self.clock.now_ms();
        let mut ended = self.ended.lock();
        let seq = ended.next_seq;
        ended.next_seq += 1;
        let key = summary.task_id.clone();
        ended.order.push_back((key.clone(), now, seq));
        ended.map.insert(key, (summary, seq));
        while ended.map.len() > self.max_ended {
            let Some((k, _, seq)) = ended.order.pop_front() else {
                break;
            };
            if ended.map.get(&k).is_some_and(|(_, s)| *s == seq) {
                ended.map.remove(&k);
            }
        }
    }

    fn expire_ended(&self, now: u64) {
        let mut ended = self.ended.lock();
        while let Some((k, at, seq)) = ended.order.front().cloned() {
            let stale = ended.map.get(&k).is_none_or(|(_, s)| *s != seq);
            if !stale && now.saturating_sub(at) < self.retention_ms {
                break;
            }
            ended.order.pop_front();
            if !stale {
                ended.map.remove(&k);
            }
        }
    }
}

/// What one span adds to its task's totals.
pub fn span_delta(span: &SpanInput<'_>) -> TaskTotals {
    let llm = span.llm.unwrap_or_default();
    TaskTotals {
        cost_nano_usd: llm.cost_nano_usd,
        tokens: llm.tokens,
        llm_calls: u64::from(span.llm.is_some()),
        unpriced: llm.unpriced,
        errors: u64::from(span.error),
        spans: 1,
        first_seen_unix_nano: span.start_unix_nano,
        last_seen_unix_nano: span.end_unix_nano,
    }
}

fn apply(state: &mut TaskState, span: &SpanInput<'_>, now: u64, totals: Option<TaskTotals>) {
    match totals {
        Some(t) if t.spans >= state.totals.spans => state.totals = t,
        Some(_) => {}
        None => state.totals.merge(&span_delta(span)),
    }
    state.last_activity_ms = now;
    let (service, task_type) = (clip(span.service), clip(span.task_type));
    if span.is_task_root {
        state.root_seen_ms = Some(now);
        if !service.is_empty() && *state.service != *service {
            state.service = Box::from(service);
        }
        if !task_type.is_empty() && *state.task_type != *task_type {
            state.task_type = Box::from(task_type);
        }
    } else {
        if state.service.is_empty() && !service.is_empty() {
            state.service = Box::from(service);
        }
        if state.task_type.is_empty() && !task_type.is_empty() {
            state.task_type = Box::from(task_type);
        }
    }
}

/// Keeps the `n` items with the largest key (unordered).
fn top_n<T>(items: &mut Vec<T>, n: usize, key: impl Fn(&T) -> i64) {
    if items.len() > n {
        if n == 0 {
            items.clear();
            return;
        }
        items.select_nth_unstable_by(n - 1, |a, b| key(b).cmp(&key(a)));
        items.truncate(n);
    }
}

#[cfg(test)]
mod tests;
