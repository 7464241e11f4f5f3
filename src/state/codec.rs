//! The durable store's file formats: CRC-checked records holding one batch (the log) or the
//! whole store (the snapshot), in a small explicit little-endian encoding.
//!
//! A record is `magic u32 | body length u32 | crc32(body) u32 | body`.

use std::sync::Arc;

use super::memory::{BudgetSnap, Snapshot};
use super::{BudgetKey, ContributionId, Firing, Op, StateBatch, Window};
use crate::units::{NanoUsd, TaskTotals, Tokens, Unpriced};

/// A log record ("TGS2").
pub(super) const LOG_MAGIC: u32 = 0x3253_4754;
/// A snapshot record ("TGP2").
pub(super) const SNAP_MAGIC: u32 = 0x3250_4754;
/// Header bytes before a record's body.
pub(super) const HEADER: usize = 12;

/// Frames `body` as one record.
pub(super) fn record(magic: u32, body: &[u8]) -> Vec<u8> {
    let mut rec = Vec::with_capacity(HEADER + body.len());
    rec.extend_from_slice(&magic.to_le_bytes());
    rec.extend_from_slice(&(body.len() as u32).to_le_bytes());
    rec.extend_from_slice(&crc32fast::hash(body).to_le_bytes());
    rec.extend_from_slice(body);
    rec
}

/// What reading one record from `buf` found.
pub(super) enum Read<'a> {
    /// A whole, intact record: its body and the bytes it took.
    Record(&'a [u8], usize),
    /// Nothing left.
    End,
    /// A record that is cut short or fails its checksum.
    Damaged,
}

/// Reads the record at the start of `buf`.
pub(super) fn read(buf: &[u8], magic: u32) -> Read<'_> {
    if buf.is_empty() {
        return Read::End;
    }
    if buf.len() < HEADER {
        return Read::Damaged;
    }
    let word = |i: usize| u32::from_le_bytes([buf[i], buf[i + 1], buf[i + 2], buf[i + 3]]);
    let len = word(4) as usize;
    if word(0) != magic || buf.len() - HEADER < len {
        return Read::Damaged;
    }
    let body = &buf[HEADER..HEADER + len];
    if crc32fast::hash(body) != word(8) {
        return Read::Damaged;
    }
    Read::Record(body, HEADER + len)
}

struct W(Vec<u8>);

impl W {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn u128(&mut self, v: u128) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn i64(&mut self, v: i64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn len(&mut self, n: usize) {
        self.u64(n as u64);
    }
    fn str(&mut self, s: &str) {
        self.len(s.len());
        self.0.extend_from_slice(s.as_bytes());
    }
    fn strs(&mut self, v: &[String]) {
        self.len(v.len());
        for s in v {
            self.str(s);
        }
    }
    fn opt(&mut self, v: Option<u64>) {
        match v {
            Some(v) => {
                self.u8(1);
                self.u64(v);
            }
            None => self.u8(0),
        }
    }
    fn id(&mut self, id: &ContributionId) {
        self.0.extend_from_slice(&id.trace);
        self.0.extend_from_slice(&id.span);
    }
    fn totals(&mut self, t: &TaskTotals) {
        self.i64(t.cost_nano_usd);
        let Tokens {
            input_uncached,
            cache_read,
            cache_write,
            output,
        } = t.tokens;
        for v in [input_uncached, cache_read, cache_write, output] {
            self.u64(v);
        }
        self.u64(t.llm_calls);
        let Unpriced {
            unknown_model,
            incomplete_price,
            invalid_usage,
            no_usage,
        } = t.unpriced;
        for v in [unknown_model, incomplete_price, invalid_usage, no_usage] {
            self.u64(v);
        }
        self.u64(t.errors);
        self.u64(t.spans);
        self.u64(t.first_seen_unix_nano);
        self.u64(t.last_seen_unix_nano);
    }
    fn key(&mut self, key: &BudgetKey) {
        self.str(&key.budget);
        self.len(key.key_values.len());
        for v in &key.key_values {
            self.str(v);
        }
        self.u64(key.period_start_ms);
    }
    fn window(&mut self, w: &Option<Window>) {
        match w {
            None => self.u8(0),
            Some(w) => {
                self.u8(1);
                self.u64(w.bucket_ms);
                self.u64(w.buckets);
            }
        }
    }
    fn digests(&mut self, v: &[u64]) {
        self.len(v.len());
        for d in v {
            self.u64(*d);
        }
    }
}

struct R<'a>(&'a [u8]);

impl R<'_> {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        if self.0.len() < n {
            return None;
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Some(a)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
    fn u128(&mut self) -> Option<u128> {
        Some(u128::from_le_bytes(self.take(16)?.try_into().ok()?))
    }
    fn i64(&mut self) -> Option<i64> {
        Some(i64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
    /// A count of items of at least `min` bytes each (refuses counts the rest cannot hold).
    fn len(&mut self, min: usize) -> Option<usize> {
        let n = usize::try_from(self.u64()?).ok()?;
        (n.saturating_mul(min) <= self.0.len()).then_some(n)
    }
    fn string(&mut self) -> Option<String> {
        let n = self.len(1)?;
        String::from_utf8(self.take(n)?.to_vec()).ok()
    }
    fn str(&mut self) -> Option<Arc<str>> {
        self.string().map(Arc::from)
    }
    fn strs(&mut self) -> Option<Vec<String>> {
        let n = self.len(8)?;
        (0..n).map(|_| self.string()).collect()
    }
    fn opt(&mut self) -> Option<Option<u64>> {
        match self.u8()? {
            0 => Some(None),
            1 => Some(Some(self.u64()?)),
            _ => None,
        }
    }
    fn id(&mut self) -> Option<ContributionId> {
        let mut id = ContributionId::default();
        id.trace.copy_from_slice(self.take(16)?);
        id.span.copy_from_slice(self.take(8)?);
        Some(id)
    }
    fn totals(&mut self) -> Option<TaskTotals> {
        Some(TaskTotals {
            cost_nano_usd: self.i64()?,
            tokens: Tokens {
                input_uncached: self.u64()?,
                cache_read: self.u64()?,
                cache_write: self.u64()?,
                output: self.u64()?,
            },
            llm_calls: self.u64()?,
            unpriced: Unpriced {
                unknown_model: self.u64()?,
                incomplete_price: self.u64()?,
                invalid_usage: self.u64()?,
                no_usage: self.u64()?,
            },
            errors: self.u64()?,
            spans: self.u64()?,
            first_seen_unix_nano: self.u64()?,
            last_seen_unix_nano: self.u64()?,
        })
    }
    fn key(&mut self) -> Option<BudgetKey> {
        let budget = self.str()?;
        let k = self.len(8)?;
        let key_values = (0..k).map(|_| self.str()).collect::<Option<_>>()?;
        Some(BudgetKey {
            budget,
            key_values,
            period_start_ms: self.u64()?,
        })
    }
    fn window(&mut self) -> Option<Option<Window>> {
        match self.u8()? {
            0 => Some(None),
            1 => Some(Some(Window {
                bucket_ms: self.u64()?,
                buckets: self.u64()?,
            })),
            _ => None,
        }
    }
    fn digests(&mut self) -> Option<Vec<u64>> {
        let n = self.len(8)?;
        (0..n).map(|_| self.u64()).collect()
    }
}

/// The body of a log record for `batch`.
pub(super) fn encode_batch(batch: &StateBatch) -> Vec<u8> {
    let mut w = W(Vec::with_capacity(160 * batch.ops.len() + 16));
    w.u64(batch.now_ms);
    w.len(batch.ops.len());
    for op in &batch.ops {
        match op {
            Op::AddToTask { task, id, delta } => {
                w.u8(1);
                w.str(task);
                w.id(id);
                w.totals(delta);
            }
            Op::EndTask { task } => {
                w.u8(2);
                w.str(task);
            }
            Op::FireOnce {
                scope,
                marker,
                ttl_ms,
            } => {
                w.u8(3);
                w.str(scope);
                w.u64(*marker);
                w.opt(*ttl_ms);
            }
            Op::ClaimCall {
                fingerprint,
                ttl_ms,
            } => {
                w.u8(4);
                w.u128(*fingerprint);
                w.u64(*ttl_ms);
            }
            Op::AddToBudget {
                key,
                id,
                cost,
                limit,
                expires_ms,
                window,
            } => {
                // 5 was the same op without expiry and window (still read).
                w.u8(7);
                w.key(key);
                w.id(id);
                w.i64(cost.0);
                w.opt(limit.map(|l| l.0 as u64));
                w.opt(*expires_ms);
                w.window(window);
            }
            Op::SetFiring {
                rule,
                group,
                since_ms,
            } => {
                w.u8(6);
                w.str(rule);
                w.strs(group);
                w.opt(*since_ms);
            }
        }
    }
    w.0
}

/// The batch in a log record's body; `None` when it does not decode.
pub(super) fn decode_batch(body: &[u8]) -> Option<StateBatch> {
    let mut r = R(body);
    let now_ms = r.u64()?;
    let n = r.len(1)?;
    let mut ops = Vec::with_capacity(n);
    for _ in 0..n {
        let op = match r.u8()? {
            1 => Op::AddToTask {
                task: r.str()?,
                id: r.id()?,
                delta: r.totals()?,
            },
            2 => Op::EndTask { task: r.str()? },
            3 => Op::FireOnce {
                scope: r.str()?,
                marker: r.u64()?,
                ttl_ms: r.opt()?,
            },
            4 => Op::ClaimCall {
                fingerprint: r.u128()?,
                ttl_ms: r.u64()?,
            },
            5 => Op::AddToBudget {
                key: r.key()?,
                id: r.id()?,
                cost: NanoUsd(r.i64()?),
                limit: r.opt()?.map(|l| NanoUsd(l as i64)),
                expires_ms: None,
                window: None,
            },
            7 => Op::AddToBudget {
                key: r.key()?,
                id: r.id()?,
                cost: NanoUsd(r.i64()?),
                limit: r.opt()?.map(|l| NanoUsd(l as i64)),
                expires_ms: r.opt()?,
                window: r.window()?,
            },
            6 => Op::SetFiring {
                rule: r.str()?,
                group: r.strs()?,
                since_ms: r.opt()?,
            },
            _ => return None,
        };
        ops.push(op);
    }
    r.0.is_empty().then_some(StateBatch { now_ms, ops })
}

/// The body of a snapshot record: the log generation it precedes, then the store.
pub(super) fn encode_snapshot(generation: u64, s: &Snapshot) -> Vec<u8> {
    let mut w = W(Vec::with_capacity(
        64 + s.tasks.len() * 200 + s.claims.len() * 24,
    ));
    w.u64(generation);
    w.u64(s.seed);
    w.len(s.tasks.len());
    for (task, totals, last_ms, seen) in &s.tasks {
        w.str(task);
        w.totals(totals);
        w.u64(*last_ms);
        w.digests(seen);
    }
    w.len(s.markers.len());
    for (scope, marks) in &s.markers {
        w.str(scope);
        w.len(marks.len());
        for (m, until) in marks {
            w.u64(*m);
            w.opt(*until);
        }
    }
    w.len(s.claims.len());
    for (f, until) in &s.claims {
        w.u128(*f);
        w.u64(*until);
    }
    // The first budget section (key, total, digests) is left empty: budgets follow the window
    // alerts in the extended form (older snapshots have only the first section).
    w.len(0);
    w.len(s.firing.len());
    for f in &s.firing {
        w.str(&f.rule);
        w.strs(&f.group);
        w.u64(f.since_ms);
    }
    w.len(s.budgets.len());
    for b in &s.budgets {
        w.key(&b.key);
        w.i64(b.total.0);
        w.digests(&b.seen);
        w.opt(b.until_ms);
        w.window(&b.window);
        w.len(b.buckets.len());
        for (start, total, seen) in &b.buckets {
            w.u64(*start);
            w.i64(total.0);
            w.digests(seen);
        }
    }
    w.0
}

/// The generation and store in a snapshot record's body; `None` when it does not decode.
pub(super) fn decode_snapshot(body: &[u8]) -> Option<(u64, Snapshot)> {
    let mut r = R(body);
    let generation = r.u64()?;
    let mut s = Snapshot {
        seed: r.u64()?,
        ..Snapshot::default()
    };
    for _ in 0..r.len(8)? {
        s.tasks
            .push((r.str()?, r.totals()?, r.u64()?, r.digests()?));
    }
    for _ in 0..r.len(8)? {
        let scope = r.str()?;
        let n = r.len(9)?;
        let marks = (0..n)
            .map(|_| Some((r.u64()?, r.opt()?)))
            .collect::<Option<_>>()?;
        s.markers.push((scope, marks));
    }
    for _ in 0..r.len(24)? {
        s.claims.push((r.u128()?, r.u64()?));
    }
    for _ in 0..r.len(8)? {
        s.budgets.push(BudgetSnap {
            key: r.key()?,
            total: NanoUsd(r.i64()?),
            seen: r.digests()?,
            until_ms: None,
            window: None,
            buckets: Vec::new(),
        });
    }
    for _ in 0..r.len(8)? {
        s.firing.push(Firing {
            rule: r.str()?,
            group: r.strs()?,
            since_ms: r.u64()?,
        });
    }
    if !r.0.is_empty() {
        for _ in 0..r.len(8)? {
            let key = r.key()?;
            let total = NanoUsd(r.i64()?);
            let seen = r.digests()?;
            let until_ms = r.opt()?;
            let window = r.window()?;
            let n = r.len(16)?;
            let buckets = (0..n)
                .map(|_| Some((r.u64()?, NanoUsd(r.i64()?), r.digests()?)))
                .collect::<Option<_>>()?;
            s.budgets.push(BudgetSnap {
                key,
                total,
                seen,
                until_ms,
                window,
                buckets,
            });
        }
    }
    r.0.is_empty().then_some((generation, s))
}
