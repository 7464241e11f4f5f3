//! Rolling windows: per group, a ring of time buckets (1/60 of the window each) holding exact
//! integer sums and, for percentile rules, a small log-scale histogram of span durations.

use std::collections::HashMap;
use std::time::Duration;

use super::rule::{split_group_key, Measures, Rule, Value};
use crate::task::SpanInput;
use crate::units::Tokens;

/// Buckets per window.
const BUCKETS: u64 = 60;
/// Most groups one window rule keeps; spans of further groups are not judged (logged once).
pub(crate) const MAX_GROUPS: usize = 10_000;
/// Histogram bins: 4 exact bins for 0–3 ms, then 4 per power of two up to ~2^25 ms.
const BINS: usize = 100;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Sums {
    spans: u64,
    errors: u64,
    llm_calls: u64,
    cost_nano_usd: i64,
    tokens: Tokens,
}

impl Sums {
    fn add(&mut self, m: &Measures) {
        self.spans += m.spans;
        self.errors += m.errors;
        self.llm_calls += m.llm_calls;
        self.cost_nano_usd = self.cost_nano_usd.saturating_add(m.cost_nano_usd);
        self.tokens += m.tokens;
    }

    fn sub(&mut self, o: &Sums) {
        self.spans -= o.spans;
        self.errors -= o.errors;
        self.llm_calls -= o.llm_calls;
        self.cost_nano_usd = self.cost_nano_usd.saturating_sub(o.cost_nano_usd);
        self.tokens -= o.tokens;
    }
}

/// A log-scale histogram of durations in milliseconds (relative error under 25 %).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Hist([u32; BINS]);

impl Default for Hist {
    fn default() -> Self {
        Hist([0; BINS])
    }
}

impl Hist {
    fn bin(ms: u64) -> usize {
        if ms < 4 {
            return ms as usize;
        }
        let msb = 63 - ms.leading_zeros() as u64;
        let sub = (ms >> (msb - 2)) & 3;
        ((4 + (msb - 2) * 4 + sub) as usize).min(BINS - 1)
    }

    /// The bin's [low, high) bounds in ms.
    fn bounds(bin: usize) -> (f64, f64) {
        if bin < 4 {
            return (bin as f64, bin as f64 + 1.0);
        }
        let msb = (bin - 4) / 4 + 2;
        let sub = ((bin - 4) % 4) as u64;
        let unit = 1u64 << (msb - 2);
        (((4 + sub) * unit) as f64, ((5 + sub) * unit) as f64)
    }

    fn add(&mut self, ms: u64) {
        let b = Self::bin(ms);
        self.0[b] = self.0[b].saturating_add(1);
    }

    fn sub(&mut self, o: &Hist) {
        for (a, b) in self.0.iter_mut().zip(o.0.iter()) {
            *a = a.saturating_sub(*b);
        }
    }

    fn merge(&mut self, o: &Hist) {
        for (a, b) in self.0.iter_mut().zip(o.0.iter()) {
            *a = a.saturating_add(*b);
        }
    }

    /// The `q` quantile (midpoint of the bin holding it), `None` when empty.
    pub(crate) fn quantile(&self, q: f64) -> Option<f64> {
        let total: u64 = self.0.iter().map(|&c| u64::from(c)).sum();
        if total == 0 {
            return None;
        }
        let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
        let mut seen = 0u64;
        for (bin, &c) in self.0.iter().enumerate() {
            seen += u64::from(c);
            if seen >= rank {
                let (lo, hi) = Self::bounds(bin);
                return Some((lo + hi) / 2.0);
            }
        }
        None
    }
}

#[derive(Debug, Clone, Default)]
struct Bucket {
    epoch: u64,
    sums: Sums,
    hist: Option<Box<Hist>>,
}

/// One group's window and alert state.
#[derive(Debug)]
pub(crate) struct Group {
    buckets: Vec<Bucket>,
    head_epoch: u64,
    total: Sums,
    total_hist: Option<Box<Hist>>,
    firing_since: Option<u64>,
    pending_since: Option<u64>,
    last_value: Option<Value>,
}

impl Group {
    fn new(hist: bool, epoch: u64) -> Self {
        Group {
            buckets: vec![Bucket::default(); BUCKETS as usize],
            head_epoch: epoch,
            total: Sums::default(),
            total_hist: hist.then(Box::default),
            firing_since: None,
            pending_since: None,
            last_value: None,
        }
    }

    /// Drops buckets that fell out of the window ending at `epoch`.
    fn advance(&mut self, epoch: u64) {
        if epoch <= self.head_epoch {
            return;
        }
        let from = if epoch - self.head_epoch >= BUCKETS {
            epoch - BUCKETS + 1
        } else {
            self.head_epoch + 1
        };
        for e in from..=epoch {
            let b = &mut self.buckets[(e % BUCKETS) as usize];
            if b.sums != Sums::default() {
                self.total.sub(&b.sums);
                if let (Some(t), Some(h)) = (self.total_hist.as_mut(), b.hist.as_ref()) {
                    t.sub(h);
                }
            }
            b.sums = Sums::default();
            b.hist = None;
            b.epoch = e;
        }
        self.head_epoch = epoch;
    }

    fn add(&mut self, epoch: u64, m: &Measures) {
        self.advance(epoch);
        let hist = self.total_hist.is_some();
        let b = &mut self.buckets[(epoch % BUCKETS) as usize];
        b.epoch = epoch;
        b.sums.add(m);
        self.total.add(m);
        if let (true, Some(d)) = (hist, m.duration_ms) {
            let ms = d.max(0.0) as u64;
            let mut one = Hist::default();
            one.add(ms);
            b.hist.get_or_insert_with(Box::default).merge(&one);
            if let Some(t) = self.total_hist.as_mut() {
                t.add(ms);
            }
        }
    }

    fn measures(&self) -> Measures {
        let t = &self.total;
        Measures {
            cost_nano_usd: t.cost_nano_usd,
            tokens: t.tokens,
            llm_calls: t.llm_calls,
            spans: t.spans,
            errors: t.errors,
            duration_ms: None,
            p95_ms: self.total_hist.as_ref().and_then(|h| h.quantile(0.95)),
            p99_ms: self.total_hist.as_ref().and_then(|h| h.quantile(0.99)),
        }
    }
}

/// A change of a group's alert state.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Transition {
    /// The condition started holding (for at least `for`).
    Fire { group: Vec<String>, value: Value },
    /// The condition stopped holding; `since_ms` is when it fired.
    Resolve {
        group: Vec<String>,
        value: Value,
        since_ms: u64,
    },
}

/// A window rule's groups.
#[derive(Debug)]
pub(crate) struct WindowState {
    width_ms: u64,
    for_ms: u64,
    hist: bool,
    /// Groups by their key (see `Rule::write_group_key`).
    groups: HashMap<String, Group>,
    /// Reused for the key of each added span.
    scratch: String,
    pub(crate) overflowed: bool,
}

impl WindowState {
    pub(crate) fn new(window: Duration, for_: Duration, hist: bool) -> Self {
        WindowState {
            width_ms: (window.as_millis() as u64 / BUCKETS).max(1),
            for_ms: for_.as_millis() as u64,
            hist,
            groups: HashMap::new(),
            scratch: String::new(),
            overflowed: false,
        }
    }

    /// Adds a span's measures to its group and judges the group. Returns `None` when the group
    /// limit is reached.
    pub(crate) fn add(
        &mut self,
        rule: &Rule,
        span: &SpanInput<'_>,
        now_ms: u64,
        m: &Measures,
    ) -> Option<Transition> {
        let mut key = std::mem::take(&mut self.scratch);
        key.clear();
        rule.write_group_key(span, &mut key);
        let t = self.add_to(rule, &key, now_ms, m);
        self.scratch = key;
        t
    }

    fn add_to(&mut self, rule: &Rule, key: &str, now_ms: u64, m: &Measures) -> Option<Transition> {
        let epoch = now_ms / self.width_ms;
        if !self.groups.contains_key(key) {
            if self.groups.len() >= MAX_GROUPS {
                self.overflowed = true;
                return None;
            }
            self.groups
                .insert(key.to_owned(), Group::new(self.hist, epoch));
        }
        let for_ms = self.for_ms;
        let g = self.groups.get_mut(key)?;
        g.add(epoch, m);
        judge(rule, g, now_ms, for_ms, key)
    }

    /// Advances every group to `now_ms`, judges it, and forgets groups that are empty and
    /// not firing.
    pub(crate) fn tick(&mut self, rule: &Rule, now_ms: u64) -> Vec<Transition> {
        let epoch = now_ms / self.width_ms;
        let for_ms = self.for_ms;
        let mut out = Vec::new();
        self.groups.retain(|key, g| {
            g.advance(epoch);
            if let Some(t) = judge(rule, g, now_ms, for_ms, key) {
                out.push(t);
            }
            g.total.spans > 0 || g.firing_since.is_some()
        });
        out
    }

    /// Marks `group` (its `group_by` values) as firing since `since_ms`, with an empty window
    /// (restored after a restart: the window's sums are not kept, its firing state is).
    pub(crate) fn restore_firing(&mut self, group: &[String], since_ms: u64, now_ms: u64) {
        let mut key = String::new();
        for v in group {
            super::rule::push_part(&mut key, v);
        }
        if !self.groups.contains_key(&key) && self.groups.len() >= MAX_GROUPS {
            return;
        }
        let epoch = now_ms / self.width_ms;
        let hist = self.hist;
        let g = self
            .groups
            .entry(key)
            .or_insert_with(|| Group::new(hist, epoch));
        g.firing_since = Some(since_ms);
    }

    /// Every group that is firing, with its value; used to resolve them when the rule goes away.
    pub(crate) fn drain_firing(&mut self) -> Vec<Transition> {
        let out = self
            .groups
            .iter()
            .filter_map(|(k, g)| {
                g.firing_since.map(|since_ms| Transition::Resolve {
                    group: split_group_key(k),
                    value: g.last_value.unwrap_or(Value::Num(0.0)),
                    since_ms,
                })
            })
            .collect();
        self.groups.clear();
        out
    }
}

fn judge(rule: &Rule, g: &mut Group, now: u64, for_ms: u64, key: &str) -> Option<Transition> {
    let value = rule.value(&g.measures());
    let holds = value.is_some_and(|v| rule.holds(v));
    if let Some(v) = value {
        g.last_value = Some(v);
    }
    if holds {
        let v = value?;
        if g.firing_since.is_some() {
            return None;
        }
        let since = *g.pending_since.get_or_insert(now);
        if now.saturating_sub(since) >= for_ms {
            g.firing_since = Some(now);
            g.pending_since = None;
            return Some(Transition::Fire {
                group: split_group_key(key),
                value: v,
            });
        }
        None
    } else {
        g.pending_since = None;
        let since_ms = g.firing_since.take()?;
        Some(Transition::Resolve {
            group: split_group_key(key),
            value: g.last_value.unwrap_or(Value::Num(0.0)),
            since_ms,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_quantiles_are_within_a_bin() {
        let mut h = Hist::default();
        for ms in 1..=1000u64 {
            h.add(ms);
        }
        let p95 = h.quantile(0.95).unwrap();
        assert!((800.0..=1100.0).contains(&p95), "{p95}");
        let p50 = h.quantile(0.5).unwrap();
        assert!((400.0..=600.0).contains(&p50), "{p50}");
        assert_eq!(Hist::default().quantile(0.5), None);
        for ms in [0u64, 3, 4, 5, 7, 8, 1000, 1 << 30] {
            let (lo, hi) = Hist::bounds(Hist::bin(ms));
            assert!(
                (lo <= ms as f64 && (ms as f64) < hi) || ms >= 1 << 25,
                "{ms}: {lo}..{hi}"
            );
        }
    }

    #[test]
    fn buckets_expire_exactly() {
        let mut g = Group::new(false, 0);
        let m = Measures {
            spans: 1,
            cost_nano_usd: 7,
            ..Measures::default()
        };
        g.add(0, &m);
        g.add(30, &m);
        assert_eq!(g.total.cost_nano_usd, 14);
        g.advance(59);
        assert_eq!(g.total.spans, 2);
        g.advance(60);
        assert_eq!(g.total.spans, 1);
        g.advance(500);
        assert_eq!(g.total, Sums::default());
    }
}
