//! Spend in the last hour, for the status page: exact nano-USD and input tokens by model and
//! service in one-minute buckets.
//!
//! The hot path ([`RecentSpend::record`]) takes one short mutex, looks the key up in the current
//! minute's map by borrowed `&str` (allocating only the first time a key appears in a minute)
//! and adds integers. Each minute holds at most `max_keys` distinct (model, service) pairs; past
//! that the call is counted under `__other__`/`__other__`, so memory is bounded by
//! `BUCKETS * max_keys` entries whatever the traffic.

use std::collections::{HashMap, VecDeque};

use parking_lot::Mutex;
use serde::Serialize;

use super::cardinality::OTHER;
use crate::units::{Tokens, Unpriced};

/// One-minute buckets kept: one hour.
pub const BUCKETS: usize = 60;
const MINUTE_MS: u64 = 60_000;
/// Default cap on distinct (model, service) pairs per minute.
pub const DEFAULT_MAX_KEYS: usize = 256;

/// What one call adds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Usage {
    /// Exact cost in nano-USD (0 when unpriced).
    pub cost_nano_usd: i64,
    /// LLM calls.
    pub calls: u64,
    /// Tokens by kind.
    pub tokens: Tokens,
    /// Of the calls, those without a cost, by reason.
    pub unpriced: Unpriced,
}

impl Usage {
    fn add(&mut self, other: &Usage) {
        self.cost_nano_usd = self.cost_nano_usd.saturating_add(other.cost_nano_usd);
        self.calls += other.calls;
        self.tokens += other.tokens;
        self.unpriced += other.unpriced;
    }

    /// Cache reads over all input; `None` without input.
    pub fn cache_hit_ratio(&self) -> Option<f64> {
        self.tokens.cache_hit_ratio()
    }
}

#[derive(Debug, Default)]
struct Bucket {
    minute: u64,
    keys: usize,
    by_model: HashMap<Box<str>, HashMap<Box<str>, Usage>>,
}

/// The last hour of LLM spend. Thread-safe; share it as `Arc<RecentSpend>`.
#[derive(Debug)]
pub struct RecentSpend {
    max_keys: usize,
    buckets: Mutex<VecDeque<Bucket>>,
}

impl Default for RecentSpend {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_KEYS)
    }
}

/// A (model, service) pair and its usage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyUsage {
    /// The model (`unknown` when empty).
    pub model: String,
    /// The service (`unknown` when empty).
    pub service: String,
    /// Its usage over the last hour.
    pub usage: Usage,
}

/// The last hour at a glance.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RecentSnapshot {
    /// Start of each of the last 60 minutes (unix ms), oldest first, with that minute's cost.
    pub per_minute: Vec<(u64, i64)>,
    /// By (model, service), costliest first.
    pub by_key: Vec<KeyUsage>,
    /// By model, costliest first.
    pub by_model: Vec<(String, Usage)>,
    /// By service, costliest first.
    pub by_service: Vec<(String, Usage)>,
    /// Everything.
    pub total: Usage,
}

fn or_unknown(s: &str) -> &str {
    if s.is_empty() {
        "unknown"
    } else {
        s
    }
}

impl RecentSpend {
    /// At most `max_keys` distinct (model, service) pairs per minute (at least 1).
    pub fn new(max_keys: usize) -> Self {
        Self {
            max_keys: max_keys.max(1),
            buckets: Mutex::new(VecDeque::with_capacity(BUCKETS + 1)),
        }
    }

    /// Adds one call observed at `now_ms` (unix milliseconds).
    pub fn record(&self, now_ms: u64, model: &str, service: &str, usage: &Usage) {
        let minute = now_ms / MINUTE_MS;
        let (model, service) = (or_unknown(model), or_unknown(service));
        let mut buckets = self.buckets.lock();
        // Clocks may step back a little; a late call lands in the newest bucket.
        if buckets.back().is_none_or(|b| b.minute < minute) {
            buckets.push_back(Bucket {
                minute,
                ..Bucket::default()
            });
            while buckets.len() > BUCKETS {
                buckets.pop_front();
            }
        }
        let Some(bucket) = buckets.back_mut() else {
            return;
        };
        if let Some(u) = bucket
            .by_model
            .get_mut(model)
            .and_then(|m| m.get_mut(service))
        {
            u.add(usage);
            return;
        }
        let (model, service) = if bucket.keys >= self.max_keys {
            (OTHER, OTHER)
        } else {
            (model, service)
        };
        let services = bucket.by_model.entry(model.into()).or_default();
        if let Some(u) = services.get_mut(service) {
            u.add(usage);
        } else {
            services.insert(service.into(), *usage);
            bucket.keys += 1;
        }
    }

    /// The 60 minutes up to and including the one holding `now_ms`.
    pub fn snapshot(&self, now_ms: u64) -> RecentSnapshot {
        let now_minute = now_ms / MINUTE_MS;
        let first = now_minute.saturating_sub(BUCKETS as u64 - 1);
        let mut per_minute: Vec<(u64, i64)> =
            (first..=now_minute).map(|m| (m * MINUTE_MS, 0)).collect();
        let mut by_key: HashMap<(String, String), Usage> = HashMap::new();
        let buckets = self.buckets.lock();
        for b in buckets
            .iter()
            .filter(|b| b.minute >= first && b.minute <= now_minute)
        {
            let slot = &mut per_minute[(b.minute - first) as usize].1;
            for (model, services) in &b.by_model {
                for (service, u) in services {
                    *slot = slot.saturating_add(u.cost_nano_usd);
                    by_key
                        .entry((model.to_string(), service.to_string()))
                        .or_default()
                        .add(u);
                }
            }
        }
        drop(buckets);

        let mut total = Usage::default();
        let mut by_model: HashMap<String, Usage> = HashMap::new();
        let mut by_service: HashMap<String, Usage> = HashMap::new();
        for ((model, service), u) in &by_key {
            total.add(u);
            by_model.entry(model.clone()).or_default().add(u);
            by_service.entry(service.clone()).or_default().add(u);
        }
        let mut by_key: Vec<KeyUsage> = by_key
            .into_iter()
            .map(|((model, service), usage)| KeyUsage {
                model,
                service,
                usage,
            })
            .collect();
        by_key.sort_by(|a, b| {
            b.usage
                .cost_nano_usd
                .cmp(&a.usage.cost_nano_usd)
                .then_with(|| (&a.model, &a.service).cmp(&(&b.model, &b.service)))
        });
        RecentSnapshot {
            per_minute,
            by_key,
            by_model: sorted(by_model),
            by_service: sorted(by_service),
            total,
        }
    }
}

fn sorted(map: HashMap<String, Usage>) -> Vec<(String, Usage)> {
    let mut v: Vec<(String, Usage)> = map.into_iter().collect();
    v.sort_by(|a, b| {
        b.1.cost_nano_usd
            .cmp(&a.1.cost_nano_usd)
            .then_with(|| a.0.cmp(&b.0))
    });
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(cost: i64, read: u64, input: u64) -> Usage {
        Usage {
            cost_nano_usd: cost,
            calls: 1,
            tokens: Tokens {
                input_uncached: input - read,
                cache_read: read,
                ..Tokens::default()
            },
            ..Default::default()
        }
    }

    const T0: u64 = 1_764_000_000_000; // a minute boundary is not required

    #[test]
    fn sums_exactly_by_model_and_service_over_the_hour() {
        let r = RecentSpend::new(10);
        r.record(T0, "m1", "a", &usage(333_333_333, 10, 100));
        r.record(T0 + 1, "m1", "a", &usage(333_333_333, 0, 100));
        r.record(T0 + 61_000, "m2", "b", &usage(1, 50, 100));
        r.record(T0 + 61_000, "", "a", &usage(5, 0, 0));
        let s = r.snapshot(T0 + 61_000);
        assert_eq!(s.total.cost_nano_usd, 666_666_672);
        assert_eq!(s.total.calls, 4);
        assert_eq!(s.total.cache_hit_ratio(), Some(60.0 / 300.0));
        assert_eq!(
            s.by_model[0],
            ("m1".into(), {
                let mut u = usage(666_666_666, 10, 200);
                u.calls = 2;
                u
            })
        );
        assert_eq!(s.by_service[0].0, "a");
        assert_eq!(s.by_service[0].1.cost_nano_usd, 666_666_671);
        assert!(s.by_model.iter().any(|(m, _)| m == "unknown"));
        assert_eq!(s.per_minute.len(), BUCKETS);
        let last_two: Vec<i64> = s.per_minute[BUCKETS - 2..].iter().map(|p| p.1).collect();
        assert_eq!(last_two, vec![666_666_666, 6]);
    }

    #[test]
    fn forgets_calls_older_than_an_hour() {
        let r = RecentSpend::new(10);
        r.record(T0, "m1", "a", &usage(7, 0, 0));
        r.record(T0 + 30 * MINUTE_MS, "m1", "a", &usage(11, 0, 0));
        assert_eq!(r.snapshot(T0 + 30 * MINUTE_MS).total.cost_nano_usd, 18);
        let later = T0 + 61 * MINUTE_MS;
        assert_eq!(r.snapshot(later).total.cost_nano_usd, 11);
        // Many minutes of traffic keep at most an hour of buckets.
        for m in 0..200 {
            r.record(T0 + m * MINUTE_MS, "m1", "a", &usage(1, 0, 0));
        }
        assert!(r.buckets.lock().len() <= BUCKETS);
    }

    #[test]
    fn folds_keys_past_the_cap_into_other() {
        let r = RecentSpend::new(2);
        for i in 0..100 {
            r.record(T0, &format!("model-{i}"), "svc", &usage(1, 0, 0));
        }
        let s = r.snapshot(T0);
        assert_eq!(s.by_key.len(), 3);
        assert_eq!(s.total.cost_nano_usd, 100);
        let other = s.by_key.iter().find(|k| k.model == OTHER).unwrap();
        assert_eq!(other.service, OTHER);
        assert_eq!(other.usage.cost_nano_usd, 98);
    }
}
