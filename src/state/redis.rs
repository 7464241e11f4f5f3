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
//! `tollgate_state_failed_batches_total`. Redis Cluster is not supported (one batch's keys span
//! hash slots).

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
}

/// The Redis state store (see the module docs).
pub struct RedisStore {
    client: redis::Client,
    options: RedisOptions,
    script: redis::Script,
    idle: Mutex<Vec<redis::Connection>>,
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
        })
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

impl StateStore for RedisStore {
    fn apply(&self, batch: StateBatch, deadline: Instant) -> Applied {
        if batch.is_empty() {
            return Applied::Ready(Ok(Vec::new()));
        }
        let (inv, kinds) = self.invocation(&batch);
        let sent = kinds
            .iter()
            .filter(|k| !matches!(k, Kind::Local(_)))
            .count();
        if sent == 0 {
            return Applied::Ready(Ok(kinds
                .iter()
                .map(|k| read(*k, &Value::Nil).unwrap_or(OpResult::Done))
                .collect()));
        }
        let answer = self.with_connection(deadline, |con| inv.invoke::<Value>(con));
        Applied::Ready(answer.and_then(|v| {
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
        }))
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
