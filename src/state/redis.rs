//! The Redis (or Valkey) [`StateStore`]: state shared by every replica of a fleet.
//!
//! One batch is **one** round trip: a Lua script (`redis.lua`, sent once and then called by its
//! SHA) applies every op of the batch atomically, so a check and its increment are one step
//! for every replica. Money and token counts are added by `HINCRBY` (exact 64-bit integers on
//! the server) and summed here in integers; no float ever holds an amount.
//!
//! Keys (all under the configured prefix, default `tollgate:`):
//! - `t:{task}` hash of totals, `ts:{task}` set of contribution ids, `m:{scope}` hash of
//!   fire-once markers: expire after no replica added to the task for `task_idle_ms`
//!   (refreshed by every add). [`Op::EndTask`] is not sent: one replica ending a task (its own
//!   idle timeout or root grace) must not wipe what the others still add to it.
//! - `c:{fingerprint}`: a call claim, `SET NX PX`.
//! - `b:{budget}\0{len}:{value}…\0{period start}` hash (`t` the total; a rolling window's
//!   buckets by start and `w`), `bs:…` sorted set of contribution ids by bucket: expire when
//!   the period ends (a rolling window: when its last contribution leaves it).
//! - `f` hash of firing window alerts.
//!
//! The span path calls [`StateStore::apply`] synchronously; this store then waits for Redis up
//! to the batch's deadline (on a tokio multi-thread runtime inside `block_in_place`, so other
//! tasks keep running) and answers [`StateError::Deadline`] or [`StateError::Unavailable`]
//! when it cannot: the stages carry on without the answer (spans always flow) and count it in
//! `tollgate_state_failed_batches_total`.
//!
//! **An outage.** The first batch that fails marks the store degraded
//! (`tollgate_state_degraded` 1, the status page says so): from then on batches do not wait
//! for Redis at all. Their task and budget adds and window firing records are kept in order
//! (at most `backlog_max_ops`, `tollgate_state_backlog_ops`; past it they are lost and counted
//! in `tollgate_state_lost_ops_total{reason="backlog_full"}`), and housekeeping replays them
//! once Redis answers (`tollgate_state_replayed_ops_total`). Replays are idempotent by
//! contribution id, so a batch Redis applied just before the timeout is not counted twice. A
//! budget threshold crossed by replayed adds is alerted at the key's next live call. Claims
//! and fire-once markers cannot wait: during the outage each replica decides them alone.
//!
//! Redis Cluster is not supported (one batch's keys span hash slots).

use std::collections::{HashSet, VecDeque};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use redis::Value;

use super::{
    Applied, BudgetKey, ContributionId, Firing, Op, OpResult, StateBatch, StateError, StateStore,
    Window,
};
use crate::units::{NanoUsd, TaskTotals, Tokens, Unpriced};

const SCRIPT: &str = include_str!("redis.lua");

/// How a [`RedisStore`] connects.
#[derive(Debug, Clone)]
pub struct RedisOptions {
    /// `redis://[user:password@]host:port[/db]`.
    pub url: String,
    /// Prefix of every key (default `tollgate:`): several tollgate fleets may share a server.
    pub prefix: String,
    /// Connections kept open for reuse.
    pub pool: usize,
    /// Most time to connect.
    pub connect_timeout: Duration,
    /// Most time a batch waits for Redis (earlier if the caller's deadline is earlier).
    pub timeout: Duration,
    /// A task's keys live this long after its last add (ms).
    pub task_idle_ms: u64,
    /// Most updates kept for replay while Redis is unreachable (past it they are lost,
    /// counted).
    pub backlog_max_ops: usize,
}

/// The Redis state store (see the module docs).
pub struct RedisStore {
    client: redis::Client,
    options: RedisOptions,
    script: redis::Script,
    idle: Mutex<Vec<redis::Connection>>,
    outage: Mutex<Outage>,
    has_recheck: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may carry a password: never printed.
        f.debug_struct("RedisStore")
            .field("prefix", &self.options.prefix)
            .finish_non_exhaustive()
    }
}

fn unavailable(e: impl std::error::Error + Send + Sync + 'static) -> StateError {
    StateError::Unavailable(Box::new(e))
}

fn from_redis(e: redis::RedisError) -> StateError {
    if e.is_timeout() {
        StateError::Deadline
    } else {
        unavailable(e)
    }
}

/// Runs blocking I/O without stalling a tokio multi-thread worker's other tasks.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Malformed(String);

fn malformed(what: &str) -> StateError {
    unavailable(Malformed(format!("unexpected answer from Redis: {what}")))
}

impl RedisStore {
    /// A store on `options.url`. Does not connect yet (a Redis that is down at start is not an
    /// error: batches fail and are counted until it is up).
    pub fn open(options: RedisOptions) -> Result<Self, StateError> {
        let client = redis::Client::open(options.url.as_str()).map_err(unavailable)?;
        Ok(Self {
            client,
            options,
            script: redis::Script::new(SCRIPT),
            idle: Mutex::new(Vec::new()),
            outage: Mutex::new(Outage::default()),
            has_recheck: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// True while Redis is unreachable (updates go to the replay backlog).
    pub fn degraded(&self) -> bool {
        self.outage.lock().down_since.is_some()
    }

    /// Updates kept for replay now.
    pub fn backlog_ops(&self) -> usize {
        self.outage.lock().ops
    }

    /// Runs `f` on a pooled connection with I/O timeouts at `deadline`; a connection that
    /// failed is dropped, not pooled.
    fn with_connection<T>(
        &self,
        deadline: Instant,
        f: impl FnOnce(&mut redis::Connection) -> redis::RedisResult<T>,
    ) -> Result<T, StateError> {
        let deadline = deadline.min(Instant::now() + self.options.timeout);
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(StateError::Deadline);
        }
        blocking(|| {
            let pooled = self.idle.lock().pop();
            let mut con = match pooled {
                Some(c) => c,
                None => self
                    .client
                    .get_connection_with_timeout(left.min(self.options.connect_timeout))
                    .map_err(from_redis)?,
            };
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(StateError::Deadline);
            }
            con.set_read_timeout(Some(left)).map_err(from_redis)?;
            con.set_write_timeout(Some(left)).map_err(from_redis)?;
            let out = f(&mut con).map_err(from_redis)?;
            let mut idle = self.idle.lock();
            if idle.len() < self.options.pool {
                idle.push(con);
            }
            Ok(out)
        })
    }

    /// Reads (task and budget APIs, restoring window alerts) are off the span path: they may
    /// take up to a second.
    fn read_deadline(&self) -> Instant {
        Instant::now() + READ_DEADLINE
    }

    fn key(&self, kind: &str, name: &[u8]) -> Vec<u8> {
        let mut k = Vec::with_capacity(self.options.prefix.len() + kind.len() + 1 + name.len());
        k.extend_from_slice(self.options.prefix.as_bytes());
        k.extend_from_slice(kind.as_bytes());
        k.push(b':');
        k.extend_from_slice(name);
        k
    }

    fn budget_name(key: &BudgetKey) -> Vec<u8> {
        let mut n = key.budget.as_bytes().to_vec();
        for v in &key.key_values {
            n.push(0);
            n.extend_from_slice(v.len().to_string().as_bytes());
            n.push(b':');
            n.extend_from_slice(v.as_bytes());
        }
        n.push(0);
        n.extend_from_slice(key.period_start_ms.to_string().as_bytes());
        n
    }

    fn firing_field(rule: &str, group: &[String]) -> String {
        serde_json::json!([rule, group]).to_string()
    }

    /// The script invocation for `batch` and, per op, how to read its answer.
    fn invocation(&self, batch: &StateBatch) -> (redis::ScriptInvocation<'_>, Vec<Kind>) {
        let mut inv = self.script.prepare_invoke();
        inv.arg(batch.now_ms);
        let idle = self.options.task_idle_ms.max(1);
        let mut kinds = Vec::with_capacity(batch.ops.len());
        for op in &batch.ops {
            match op {
                Op::AddToTask { task, id, delta } => {
                    inv.key(self.key("t", task.as_bytes()))
                        .key(self.key("ts", task.as_bytes()));
                    inv.arg("T").arg(&id_bytes(id)[..]).arg(idle);
                    let t = delta.tokens;
                    let u = delta.unpriced;
                    inv.arg(delta.cost_nano_usd);
                    for v in [
                        t.input_uncached,
                        t.cache_read,
                        t.cache_write,
                        t.output,
                        delta.llm_calls,
                        u.unknown_model,
                        u.incomplete_price,
                        u.invalid_usage,
                        u.no_usage,
                        delta.errors,
                        delta.spans,
                        delta.first_seen_unix_nano,
                        delta.last_seen_unix_nano,
                    ] {
                        inv.arg(v);
                    }
                    kinds.push(Kind::Task);
                }
                Op::EndTask { .. } => {
                    // A replica ending a task (its own idle timeout, root grace) must not wipe
                    // what the other replicas still add to: shared task keys are forgotten when
                    // no replica added to them for `task_idle_ms`.
                    kinds.push(Kind::Local(OpResult::Done));
                }
                Op::FireOnce {
                    scope,
                    marker,
                    ttl_ms,
                } => {
                    inv.key(self.key("m", scope.as_bytes()));
                    let until = ttl_ms.map_or(0, |t| batch.now_ms.saturating_add(t).max(1));
                    inv.arg("F").arg(*marker).arg(until).arg(idle);
                    kinds.push(Kind::Fired);
                }
                Op::ClaimCall {
                    fingerprint,
                    ttl_ms,
                } => {
                    inv.key(self.key("c", format!("{fingerprint:032x}").as_bytes()));
                    inv.arg("C").arg((*ttl_ms).max(1));
                    kinds.push(Kind::Claimed);
                }
                Op::AddToBudget {
                    key,
                    id,
                    cost,
                    limit,
                    expires_ms,
                    window,
                } => {
                    let name = Self::budget_name(key);
                    inv.key(self.key("b", &name)).key(self.key("bs", &name));
                    inv.arg("B").arg(&id_bytes(id)[..]).arg(cost.0);
                    match expires_ms {
                        Some(e) => inv.arg((*e).max(1)),
                        None => inv.arg(""),
                    };
                    match window {
                        Some(w) => inv
                            .arg(w.bucket_start(batch.now_ms))
                            .arg(w.first_counted(batch.now_ms))
                            .arg(format!("{}:{}", w.bucket_ms, w.buckets)),
                        None => inv.arg("").arg("").arg(""),
                    };
                    kinds.push(Kind::Budget {
                        cost: *cost,
                        limit: *limit,
                    });
                }
                Op::SetFiring {
                    rule,
                    group,
                    since_ms,
                } => {
                    inv.key(self.key("f", b""));
                    inv.arg("W").arg(Self::firing_field(rule, group));
                    match since_ms {
                        Some(s) => inv.arg(*s),
                        None => inv.arg(""),
                    };
                    kinds.push(Kind::Done);
                }
            }
        }
        (inv, kinds)
    }
}

/// How to read one op's answer.
#[derive(Debug, Clone, Copy)]
enum Kind {
    /// Answered here, not sent.
    Local(OpResult),
    Task,
    Done,
    Fired,
    Claimed,
    Budget {
        cost: NanoUsd,
        limit: Option<NanoUsd>,
    },
}

fn id_bytes(id: &ContributionId) -> [u8; 24] {
    let mut b = [0u8; 24];
    b[..16].copy_from_slice(&id.trace);
    b[16..].copy_from_slice(&id.span);
    b
}

fn int(v: &Value) -> Option<i64> {
    match v {
        Value::Int(i) => Some(*i),
        Value::BulkString(b) => std::str::from_utf8(b).ok()?.parse().ok(),
        Value::SimpleString(s) => s.parse().ok(),
        Value::Nil => Some(0),
        _ => None,
    }
}

fn text(v: &Value) -> Option<&[u8]> {
    match v {
        Value::BulkString(b) => Some(b),
        Value::SimpleString(s) => Some(s.as_bytes()),
        _ => None,
    }
}

/// Task totals from the 14 fields the script answers (`HMGET`), `None` when none is set.
fn totals(fields: &[Value]) -> Option<TaskTotals> {
    if fields.len() != 14 {
        return None;
    }
    let n: Vec<i64> = fields.iter().map(int).collect::<Option<_>>()?;
    let u = |i: usize| n[i].max(0) as u64;
    Some(TaskTotals {
        cost_nano_usd: n[0],
        tokens: Tokens {
            input_uncached: u(1),
            cache_read: u(2),
            cache_write: u(3),
            output: u(4),
        },
        llm_calls: u(5),
        unpriced: Unpriced {
            unknown_model: u(6),
            incomplete_price: u(7),
            invalid_usage: u(8),
            no_usage: u(9),
        },
        errors: u(10),
        spans: u(11),
        first_seen_unix_nano: u(12),
        last_seen_unix_nano: u(13),
    })
}

/// A budget hash's total at `now_ms`: `t`, or a rolling window's buckets still counted.
fn budget_sum(flat: &[Value], now_ms: Option<u64>) -> Option<NanoUsd> {
    let mut window = None;
    let mut fields = Vec::new();
    for pair in flat.chunks(2) {
        let [k, v] = pair else { return None };
        let k = text(k)?;
        if k == b"w" {
            let w = std::str::from_utf8(text(v)?).ok()?;
            let (b, n) = w.split_once(':')?;
            window = Some(Window {
                bucket_ms: b.parse().ok()?,
                buckets: n.parse().ok()?,
            });
        } else {
            fields.push((k, int(v)?));
        }
    }
    let first = match (window, now_ms) {
        (Some(w), Some(now)) => Some(w.first_counted(now)),
        _ => None,
    };
    let mut sum = NanoUsd::ZERO;
    for (k, v) in fields {
        if let Some(first) = first {
            let start: u64 = std::str::from_utf8(k).ok()?.parse().ok()?;
            if start < first {
                continue;
            }
        }
        sum = sum.saturating_add(NanoUsd(v));
    }
    Some(sum)
}

fn read(kind: Kind, v: &Value) -> Option<OpResult> {
    Some(match kind {
        Kind::Local(r) => r,
        Kind::Done => OpResult::Done,
        Kind::Fired => OpResult::Fired(int(v)? == 1),
        Kind::Claimed => OpResult::Claimed(int(v)? == 1),
        Kind::Task => {
            let Value::Array(parts) = v else { return None };
            let [replayed, Value::Array(fields)] = &parts[..] else {
                return None;
            };
            OpResult::Task {
                totals: totals(fields)?,
                replayed: int(replayed)? == 1,
            }
        }
        Kind::Budget { cost, limit } => {
            let Value::Array(parts) = v else { return None };
            let [replayed, Value::Array(flat)] = &parts[..] else {
                return None;
            };
            let replayed = int(replayed)? == 1;
            // The script dropped the buckets that left the window: every field counts.
            let after = budget_sum(flat, None)?;
            let before = if replayed {
                after
            } else {
                NanoUsd(after.0.saturating_sub(cost.0))
            };
            OpResult::Budget {
                before,
                after,
                crossed: limit.is_some_and(|l| before <= l && after > l),
                replayed,
            }
        }
    })
}

/// How long a read-side query (task API, budget API, restore) may take.
const READ_DEADLINE: Duration = Duration::from_secs(1);

impl RedisStore {
    /// Sends `batch` as one script call and reads its answers.
    fn send(&self, batch: &StateBatch, deadline: Instant) -> Result<Vec<OpResult>, StateError> {
        let (inv, kinds) = self.invocation(batch);
        let sent = kinds
            .iter()
            .filter(|k| !matches!(k, Kind::Local(_)))
            .count();
        if sent == 0 {
            return Ok(kinds
                .iter()
                .map(|k| read(*k, &Value::Nil).unwrap_or(OpResult::Done))
                .collect());
        }
        let v = self.with_connection(deadline, |con| inv.invoke::<Value>(con))?;
        let Value::Array(items) = v else {
            return Err(malformed("the batch's answer is not an array"));
        };
        if items.len() != sent {
            return Err(malformed("one answer per op"));
        }
        let mut items = items.iter();
        kinds
            .iter()
            .map(|k| {
                let v = match k {
                    Kind::Local(_) => &Value::Nil,
                    _ => items.next().ok_or_else(|| malformed("one answer per op"))?,
                };
                read(*k, v).ok_or_else(|| malformed("an op's answer"))
            })
            .collect()
    }

    /// Keeps what of `batch` can be replayed (task and budget adds, window firing records:
    /// idempotent by contribution id, so a batch Redis did apply before timing out is not
    /// counted twice). Claims and fire-once markers are decisions made now: the stage made
    /// them alone (see `tollgate_state_failed_batches_total`).
    fn keep(&self, outage: &mut Outage, mut batch: StateBatch) {
        batch.ops.retain(|op| {
            matches!(
                op,
                Op::AddToTask { .. } | Op::AddToBudget { .. } | Op::SetFiring { .. }
            )
        });
        let n = batch.ops.len();
        if n == 0 {
            return;
        }
        if outage.ops + n > self.options.backlog_max_ops {
            let lost = super::metrics::METRICS
                .lost_ops
                .with_label_values(&["backlog_full"]);
            lost.inc_by(n as u64);
            if !outage.full_logged {
                outage.full_logged = true;
                tracing::error!(
                    kept = outage.ops,
                    limit = self.options.backlog_max_ops,
                    "Redis is still unreachable and the replay backlog is full: further task and budget updates are lost (counted in tollgate_state_lost_ops_total{{reason=\"backlog_full\"}})."
                );
            }
            return;
        }
        outage.ops += n;
        super::metrics::METRICS.backlog_ops.set(outage.ops as i64);
        outage.backlog.push_back(batch);
    }

    fn went_down(&self, outage: &mut Outage, error: &StateError) {
        if outage.down_since.is_some() {
            return;
        }
        outage.down_since = Some(Instant::now());
        outage.full_logged = false;
        let m = &super::metrics::METRICS;
        m.degraded.set(1);
        m.degraded_since_ms.store(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64),
            std::sync::atomic::Ordering::Relaxed,
        );
        tracing::warn!(
            %error,
            limit = self.options.backlog_max_ops,
            "Redis is unreachable: spans keep flowing and are priced; task and budget updates are kept here and replayed when it answers again."
        );
    }

    /// Replays the backlog in order while Redis answers; marks the store up once it is empty
    /// (and Redis answers a PING).
    fn recover(&self) {
        let mut replayed = 0u64;
        loop {
            let next = {
                let mut o = self.outage.lock();
                if o.down_since.is_none() {
                    return;
                }
                match o.backlog.pop_front() {
                    Some(b) => {
                        o.ops -= b.ops.len();
                        Some(b)
                    }
                    None => None,
                }
            };
            let Some(batch) = next else {
                let ping: Result<String, _> =
                    self.with_connection(self.read_deadline(), |con| redis::cmd("PING").query(con));
                if ping.is_err() {
                    return;
                }
                let mut o = self.outage.lock();
                if !o.backlog.is_empty() {
                    continue;
                }
                let down = o.down_since.take().map(|t| t.elapsed());
                drop(o);
                let m = &super::metrics::METRICS;
                m.degraded.set(0);
                m.backlog_ops.set(0);
                tracing::info!(
                    replayed,
                    down_for = ?down.unwrap_or_default(),
                    "Redis answers again: the kept state updates are replayed."
                );
                return;
            };
            match self.send(&batch, self.read_deadline()) {
                Ok(results) => {
                    replayed += batch.ops.len() as u64;
                    super::metrics::METRICS
                        .replayed_ops
                        .inc_by(batch.ops.len() as u64);
                    let mut o = self.outage.lock();
                    for (op, r) in batch.ops.iter().zip(results) {
                        if let (
                            Op::AddToBudget { key, .. },
                            OpResult::Budget {
                                replayed: false, ..
                            },
                        ) = (op, r)
                        {
                            if o.recheck.len() < RECHECK_MAX {
                                o.recheck.insert(key.clone());
                            }
                        }
                    }
                    self.has_recheck
                        .store(!o.recheck.is_empty(), std::sync::atomic::Ordering::Relaxed);
                    super::metrics::METRICS.backlog_ops.set(o.ops as i64);
                }
                Err(_) => {
                    let mut o = self.outage.lock();
                    o.ops += batch.ops.len();
                    o.backlog.push_front(batch);
                    return;
                }
            }
        }
    }
}

/// Budget keys remembered for a recheck after a replay (more are not rechecked).
const RECHECK_MAX: usize = 100_000;

/// What the store keeps while Redis is unreachable.
#[derive(Default)]
struct Outage {
    /// Set while Redis is unreachable: batches go to the backlog without trying it.
    down_since: Option<Instant>,
    backlog: VecDeque<StateBatch>,
    /// Ops in `backlog`.
    ops: usize,
    full_logged: bool,
    /// Budget keys whose replayed adds no live call saw.
    recheck: HashSet<BudgetKey>,
}

impl StateStore for RedisStore {
    fn apply(&self, batch: StateBatch, deadline: Instant) -> Applied {
        if batch.is_empty() {
            return Applied::Ready(Ok(Vec::new()));
        }
        {
            // While Redis is unreachable, do not wait for it on every batch: keep the
            // updates and let housekeeping find out when it is back.
            let mut o = self.outage.lock();
            if let Some(since) = o.down_since {
                let kept = o.ops;
                self.keep(&mut o, batch);
                return Applied::Ready(Err(unavailable(Malformed(format!(
                    "Redis unreachable for {:?}; {kept} updates kept for replay",
                    since.elapsed()
                )))));
            }
        }
        match self.send(&batch, deadline) {
            Ok(r) => Applied::Ready(Ok(r)),
            Err(e) => {
                let mut o = self.outage.lock();
                self.went_down(&mut o, &e);
                self.keep(&mut o, batch);
                Applied::Ready(Err(e))
            }
        }
    }

    fn maintain(&self, _now_ms: u64) {
        self.recover();
    }

    fn shutdown(&self, _now_ms: u64) {
        self.recover();
        let mut o = self.outage.lock();
        if o.ops > 0 {
            super::metrics::METRICS
                .lost_ops
                .with_label_values(&["shutdown"])
                .inc_by(o.ops as u64);
            tracing::error!(
                lost = o.ops,
                "tollgate stops while Redis is unreachable: kept task and budget updates are lost (counted in tollgate_state_lost_ops_total{{reason=\"shutdown\"}})."
            );
            o.ops = 0;
            o.backlog.clear();
            super::metrics::METRICS.backlog_ops.set(0);
        }
    }

    fn recheck_budget(&self, key: &BudgetKey) -> bool {
        if !self.has_recheck.load(std::sync::atomic::Ordering::Relaxed) {
            return false;
        }
        let mut o = self.outage.lock();
        let hit = o.recheck.remove(key);
        self.has_recheck
            .store(!o.recheck.is_empty(), std::sync::atomic::Ordering::Relaxed);
        hit
    }

    fn shared(&self) -> bool {
        true
    }

    fn task_totals(&self, task: &str) -> Option<TaskTotals> {
        let key = self.key("t", task.as_bytes());
        let fields = [
            "c", "iu", "cr", "cw", "o", "n", "um", "ip", "iv", "nu", "e", "s", "f", "l",
        ];
        let v: Vec<Value> = self
            .with_connection(self.read_deadline(), |con| {
                redis::cmd("HMGET").arg(&key).arg(&fields[..]).query(con)
            })
            .ok()?;
        if v.iter().all(|v| matches!(v, Value::Nil)) {
            return None;
        }
        totals(&v)
    }

    fn budget_total(&self, key: &BudgetKey, now_ms: u64) -> NanoUsd {
        let k = self.key("b", &Self::budget_name(key));
        let flat: Result<Vec<Value>, _> = self.with_connection(self.read_deadline(), |con| {
            redis::cmd("HGETALL").arg(&k).query(con)
        });
        flat.ok()
            .and_then(|f| budget_sum(&f, Some(now_ms)))
            .unwrap_or(NanoUsd::ZERO)
    }

    fn firing(&self) -> Vec<Firing> {
        let k = self.key("f", b"");
        let all: Vec<(String, u64)> = match self.with_connection(self.read_deadline(), |con| {
            redis::cmd("HGETALL").arg(&k).query(con)
        }) {
            Ok(v) => v,
            Err(error) => {
                tracing::warn!(%error, "Window alerts recorded in Redis could not be read.");
                return Vec::new();
            }
        };
        let mut out: Vec<Firing> = all
            .into_iter()
            .filter_map(|(field, since_ms)| {
                let (rule, group): (String, Vec<String>) = serde_json::from_str(&field).ok()?;
                Some(Firing {
                    rule: rule.into(),
                    group,
                    since_ms,
                })
            })
            .collect();
        out.sort();
        out
    }
}
