//! The state interface: what tollgate must remember between spans, behind one narrow trait.
//!
//! The stages (llm dedupe, task roll-ups, alert rules, budgets) describe what one request does
//! to shared state as a [`StateBatch`] of [`Op`]s and apply it with one
//! [`StateStore::apply`] call; the store answers one [`OpResult`] per op. The in-memory store
//! ([`MemoryStore`]) completes synchronously; a durable store (snapshot + log) or a Redis fleet
//! store implements the same trait.
//!
//! Everything here is integer: money is exact nano-USD ([`NanoUsd`]), tokens are counts
//! (`Tokens`), time is milliseconds of the caller's clock (passed in the batch, so stores and
//! their tests never read a wall clock of their own).

mod codec;
mod config;
mod durable;
mod memory;
mod metrics;
mod redis;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

pub use config::{Backend, StateConfig};
pub use durable::{DurableOptions, DurableStore};
pub use memory::{MemoryStore, StateLimits};
pub(crate) use metrics::set_backend;
pub use metrics::{failed_batch, health, StateHealth};
pub use redis::{RedisOptions, RedisStore};

use crate::units::{NanoUsd, TaskTotals};

/// Identifies one contribution (one span): its trace id and span id. A contribution is counted
/// at most once per key it adds to, however often it is replayed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct ContributionId {
    /// The trace id (16 bytes; shorter ids are zero-padded).
    pub trace: [u8; 16],
    /// The span id (8 bytes; shorter ids are zero-padded).
    pub span: [u8; 8],
}

impl ContributionId {
    /// The id of the span `span_id` in trace `trace_id` (longer inputs are cut).
    pub fn new(trace_id: &[u8], span_id: &[u8]) -> Self {
        let mut id = ContributionId::default();
        let t = trace_id.len().min(16);
        let s = span_id.len().min(8);
        id.trace[..t].copy_from_slice(&trace_id[..t]);
        id.span[..s].copy_from_slice(&span_id[..s]);
        id
    }
}

/// A budget period: the budget's name, the values of its key attributes, and the start of the
/// period (unix milliseconds) it counts in.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BudgetKey {
    /// The budget's name.
    pub budget: Arc<str>,
    /// The values of its key attributes, in the budget's order.
    pub key_values: Vec<Arc<str>>,
    /// Start of the period, unix milliseconds.
    pub period_start_ms: u64,
}

/// A rolling window of a budget: its total is what was added in the last `buckets` buckets of
/// `bucket_ms` each, the current one included (so a contribution counts for between
/// `(buckets - 1) × bucket_ms` and `buckets × bucket_ms` after it was added).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Window {
    /// One bucket, milliseconds (above zero).
    pub bucket_ms: u64,
    /// Buckets in the window (above zero).
    pub buckets: u64,
}

impl Window {
    /// Start (unix ms) of the bucket `now_ms` falls in.
    pub fn bucket_start(&self, now_ms: u64) -> u64 {
        now_ms - now_ms % self.bucket_ms.max(1)
    }

    /// Start of the oldest bucket still counted at `now_ms`.
    pub fn first_counted(&self, now_ms: u64) -> u64 {
        self.bucket_start(now_ms).saturating_sub(
            self.buckets
                .saturating_sub(1)
                .saturating_mul(self.bucket_ms),
        )
    }

    /// End (exclusive) of the bucket `now_ms` falls in.
    pub fn bucket_end(&self, now_ms: u64) -> u64 {
        self.bucket_start(now_ms).saturating_add(self.bucket_ms)
    }

    /// When something added at `now_ms` stops counting.
    pub fn counted_until(&self, now_ms: u64) -> u64 {
        self.bucket_start(now_ms)
            .saturating_add(self.buckets.saturating_mul(self.bucket_ms))
    }
}

/// One operation of a batch.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// Adds `delta` to task `task` unless `id` was already added to it; answers
    /// [`OpResult::Task`] with the totals after (the same totals, `replayed: true`, for a
    /// replay).
    AddToTask {
        /// The task id.
        task: Arc<str>,
        /// The contribution.
        id: ContributionId,
        /// What it adds (the span's own totals).
        delta: TaskTotals,
    },
    /// Forgets a task's totals, its contributions and its markers (the task ended).
    EndTask {
        /// The task id.
        task: Arc<str>,
    },
    /// Sets marker `marker` on `scope` if it is not set yet (SET NX): answers
    /// [`OpResult::Fired`] `true` exactly once per (scope, marker) until the scope ends (a task
    /// scope ends with [`Op::EndTask`]) or `ttl_ms` passes. "Task already alerted for rule r" is
    /// `scope = task id, marker = r`.
    FireOnce {
        /// The task id (or another scope name).
        scope: Arc<str>,
        /// What fired (e.g. a rule id).
        marker: u64,
        /// Forget the marker after this long; `None` keeps it until the scope ends.
        ttl_ms: Option<u64>,
    },
    /// Claims a call fingerprint for `ttl_ms` (SET NX PX): answers [`OpResult::Claimed`]
    /// `true` for the first claim, `false` while an earlier claim is alive.
    ClaimCall {
        /// A hash of what identifies the call (see `llm::dedupe`).
        fingerprint: u128,
        /// How long the claim lives.
        ttl_ms: u64,
    },
    /// Adds `cost` to a budget period unless `id` was already added to it, and answers
    /// [`OpResult::Budget`] with the totals before and after, checked against `limit` in the
    /// same atomic step (check-and-increment).
    AddToBudget {
        /// The budget period.
        key: BudgetKey,
        /// The contribution.
        id: ContributionId,
        /// What it adds.
        cost: NanoUsd,
        /// The budget's limit, if any: `OpResult::Budget::crossed` is true when this add took
        /// the total from at or below it to above it.
        limit: Option<NanoUsd>,
        /// Forget the key (its total and contributions) from this moment on (unix ms): the end
        /// of its calendar period, or when the last contribution leaves a rolling window.
        /// `None` keeps it.
        expires_ms: Option<u64>,
        /// `Some` for a rolling window: the totals before and after are the window's at the
        /// batch's time. `None`: a calendar period, whose key names it.
        window: Option<Window>,
    },
    /// Records a window alert as firing since `since_ms` (or clears it with `None`). Answers
    /// [`OpResult::Done`].
    SetFiring {
        /// The rule name.
        rule: Arc<str>,
        /// The window group: the values of the rule's `group_by` keys (so a restarted
        /// collector can resolve an alert that fired before the restart).
        group: Vec<String>,
        /// Firing since (unix ms), or `None` to resolve.
        since_ms: Option<u64>,
    },
}

/// The answer to one [`Op`], in batch order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpResult {
    /// [`Op::AddToTask`]: the task's totals after the op.
    Task {
        /// The totals.
        totals: TaskTotals,
        /// True when the contribution had been added before (nothing was added now).
        replayed: bool,
    },
    /// [`Op::FireOnce`]: true the first time.
    Fired(bool),
    /// [`Op::ClaimCall`]: true for the first claim.
    Claimed(bool),
    /// [`Op::AddToBudget`].
    Budget {
        /// The period's total before the op.
        before: NanoUsd,
        /// The period's total after it.
        after: NanoUsd,
        /// True when this op took the total over the limit.
        crossed: bool,
        /// True when the contribution had been added before (nothing was added now).
        replayed: bool,
    },
    /// An op without an answer ([`Op::EndTask`], [`Op::SetFiring`]).
    Done,
}

/// A window alert recorded as firing ([`Op::SetFiring`]).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Firing {
    /// The rule name.
    pub rule: Arc<str>,
    /// The group's `group_by` values.
    pub group: Vec<String>,
    /// Firing since (unix ms).
    pub since_ms: u64,
}

/// The operations one request applies to shared state, with the time they happen at.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StateBatch {
    /// Milliseconds of the caller's clock (TTLs and periods are measured against it).
    pub now_ms: u64,
    /// The operations, applied in order.
    pub ops: Vec<Op>,
}

impl StateBatch {
    /// An empty batch at `now_ms`.
    pub fn new(now_ms: u64) -> Self {
        Self {
            now_ms,
            ops: Vec::new(),
        }
    }

    /// Appends `op`; returns its index in the results.
    pub fn push(&mut self, op: Op) -> usize {
        self.ops.push(op);
        self.ops.len() - 1
    }

    /// True when there is nothing to apply.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }
}

/// Why a batch was not applied. The caller keeps serving either way: spans are never held back
/// by state, and a failed batch is counted and logged by the stage.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The store did not answer within the batch's deadline.
    #[error("the state store did not answer within the deadline")]
    Deadline,
    /// The store is unreachable or refused the batch.
    #[error("state store unavailable: {0}")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// A boxed future of a batch's results.
pub type Pending = Pin<Box<dyn Future<Output = Result<Vec<OpResult>, StateError>> + Send>>;

/// The answer to [`StateStore::apply`]: at once (in-memory stores) or later (networked ones).
pub enum Applied {
    /// Done synchronously: no allocation, no await on the receive path.
    Ready(Result<Vec<OpResult>, StateError>),
    /// Completes later; the store enforces the deadline it was given.
    Later(Pending),
}

impl std::fmt::Debug for Applied {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Applied::Ready(r) => f.debug_tuple("Ready").field(r).finish(),
            Applied::Later(_) => f.write_str("Later(..)"),
        }
    }
}

impl Applied {
    /// The results, awaiting them when they are not ready.
    pub async fn wait(self) -> Result<Vec<OpResult>, StateError> {
        match self {
            Applied::Ready(r) => r,
            Applied::Later(f) => f.await,
        }
    }

    /// The results when the store answered synchronously, else the pending future back.
    pub fn now(self) -> Result<Result<Vec<OpResult>, StateError>, Pending> {
        match self {
            Applied::Ready(r) => Ok(r),
            Applied::Later(f) => Err(f),
        }
    }
}

/// Shared state: task totals, the dedupe memory, fire-once markers, firing window alerts and
/// budget totals.
///
/// # Contract (every backend, tested for [`MemoryStore`] in `state::memory`)
///
/// - **Batch-oriented.** A stage collects one request's operations into one [`StateBatch`] and
///   calls [`apply`](Self::apply) once: never one call per span. A networked backend sends the
///   batch as one pipelined round trip (Redis: one `EVALSHA` per key group, pipelined).
/// - **Atomic per op.** Each op is applied as one indivisible step: the check-and-increment of
///   [`Op::AddToBudget`] and the "add unless already added" of [`Op::AddToTask`] happen in one
///   step (Redis: one Lua script), so two collectors never both see the total under a limit
///   and both cross it.
/// - **Idempotent by contribution.** [`Op::AddToTask`] and [`Op::AddToBudget`] add a
///   [`ContributionId`] (trace id + span id) at most once per key: a retried request, a replay
///   after a restart or a second collector of the fleet never adds twice, and the answer of a
///   replay carries `replayed: true` with the current totals.
/// - **Fire once.** [`Op::FireOnce`] answers `Fired(true)` exactly once per (scope, marker)
///   while the marker lives (Redis: `SET NX`).
/// - **Dedupe with TTL.** [`Op::ClaimCall`] answers `Claimed(true)` for the first claim of a
///   fingerprint and `false` until `ttl_ms` after it (Redis: `SET NX PX`); after the TTL the
///   fingerprint may be claimed again.
/// - **Exact money.** Totals are integer nano-USD, summed saturating, never through floats.
/// - **Never blocks the receive path beyond a deadline.** `apply` itself does not wait: it
///   returns [`Applied::Ready`] (in-memory: synchronous, no allocation beyond the results) or
///   [`Applied::Later`] with a future that resolves by `deadline` at the latest, with
///   [`StateError::Deadline`] when the backend did not answer in time. The stage then carries
///   on without the answer (spans flow; the miss is counted).
/// - **Durable backends** make every applied batch survive `kill -9` (snapshot + append-only
///   log, or an embedded store) and restore it at start; [`MemoryStore`] forgets on restart.
pub trait StateStore: Send + Sync + 'static {
    /// Applies `batch` (see the contract above); results are in op order.
    fn apply(&self, batch: StateBatch, deadline: Instant) -> Applied;

    /// A task's totals, if the store holds the task (the read side; not on the span path).
    fn task_totals(&self, task: &str) -> Option<TaskTotals>;

    /// A budget period's total at `now_ms` (zero when nothing was added, or the key expired;
    /// a rolling window's counts the buckets still in the window at `now_ms`).
    fn budget_total(&self, key: &BudgetKey, now_ms: u64) -> NanoUsd;

    /// Every window alert recorded as firing, for restoring window state after a restart.
    fn firing(&self) -> Vec<Firing>;

    /// True when other collectors (a fleet's replicas) write to the same state: the read side
    /// then answers task totals from the store rather than from what this process saw.
    fn shared(&self) -> bool {
        false
    }

    /// Housekeeping, called every few seconds off the span path: forget idle tasks and expired
    /// claims and markers; a durable store may compact its log here. A store whose entries
    /// expire by themselves (Redis TTLs) does nothing.
    fn maintain(&self, _now_ms: u64) {}

    /// The last housekeeping when tollgate stops: updates still kept for replay are counted
    /// as lost.
    fn shutdown(&self, now_ms: u64) {
        self.maintain(now_ms);
    }

    /// True (once) when updates to `key` were replayed after an outage since the last call:
    /// a threshold they crossed was not seen by any live call, so the next live call checks
    /// `after >= threshold` instead of a crossing (the fire-once marker still guards it).
    fn recheck_budget(&self, _key: &BudgetKey) -> bool {
        false
    }
}
