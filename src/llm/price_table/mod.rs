//! The price table: validation (pure), model matching and exact cost computation.
//!
//! Matching a model id, case-insensitively, in this order (user entries before shipped ones at
//! each step; the first hit wins):
//! 1. the id equals an entry name;
//! 2. the id's canonical form equals an entry name — canonical drops a `provider/` prefix, a
//!    Bedrock region (`us.`, `eu.`, `apac.`, `global.`, …) and vendor (`anthropic.`) prefix, a
//!    Bedrock version (`-v1:0`), a Vertex `@…` suffix and a date (`-20250929`, `-2024-08-06`);
//! 3. a `match` pattern (glob, or `regex:`-prefixed) matches the id, in file order;
//! 4. a pattern matches the canonical form.
//!
//! Among entries with the matched name, the one whose `effective_from` is the latest not after the
//! span's start is used (an entry without a date is in force from the beginning of time).

use std::collections::HashMap;
use std::sync::Arc;

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use parking_lot::Mutex;
use regex::RegexSet;

use super::config::{ModelPrice, PriceOverride, PriceTier, PricingConfig};
use super::money::{cost_nanos, Fraction, Price, MICRO};
use super::usage::Usage;

mod compile;

pub use compile::{builtin_models, validate};
/// The price table shipped in the binary.
pub const BUILTIN_PRICES: &str = include_str!("../builtin_prices.toml");

/// A problem in the `[pricing]` section.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PricingError {
    /// An entry has an empty name.
    #[error("pricing.models[{index}]: name is empty")]
    EmptyName {
        /// Position in `[[pricing.models]]`.
        index: usize,
    },
    /// A pattern does not compile.
    #[error("pricing model `{name}`: bad pattern `{pattern}`: {reason}")]
    BadPattern {
        /// Entry name.
        name: String,
        /// The pattern.
        pattern: String,
        /// Why.
        reason: String,
    },
    /// `effective_from` is not a `YYYY-MM-DD` date.
    #[error("pricing model `{name}`: effective_from `{value}` is not a YYYY-MM-DD date")]
    BadDate {
        /// Entry name.
        name: String,
        /// The value.
        value: String,
    },
    /// Two entries with one name and one `effective_from`.
    #[error("pricing model `{name}` is defined twice for the same effective_from")]
    Duplicate {
        /// Entry name.
        name: String,
    },
    /// Two tiers with one threshold.
    #[error("pricing model `{name}`: two tiers above {threshold} input tokens")]
    DuplicateTier {
        /// Entry name.
        name: String,
        /// The threshold.
        threshold: u64,
    },
    /// An override with an empty `when`.
    #[error("pricing.overrides[{index}]: `when` is empty (it would match every span)")]
    EmptyOverride {
        /// Position in `[[pricing.overrides]]`.
        index: usize,
    },
    /// The shipped table does not parse (a build defect).
    #[error("built-in price table: {0}")]
    Builtin(String),
}

/// Prices of one entry or tier, micro-USD per million tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rates {
    /// Uncached input.
    pub input: Price,
    /// Output.
    pub output: Price,
    /// Cache reads.
    pub cache_read: Option<Price>,
    /// 5-minute cache writes.
    pub cache_write: Option<Price>,
    /// 1-hour cache writes.
    pub cache_write_1h: Option<Price>,
}

impl Rates {
    fn of_model(m: &ModelPrice) -> Self {
        Rates {
            input: m.input,
            output: m.output,
            cache_read: m.cache_read,
            cache_write: m.cache_write,
            cache_write_1h: m.cache_write_1h,
        }
    }
    fn of_tier(t: &PriceTier) -> Self {
        Rates {
            input: t.input,
            output: t.output,
            cache_read: t.cache_read,
            cache_write: t.cache_write,
            cache_write_1h: t.cache_write_1h,
        }
    }
}

#[derive(Debug)]
struct Version {
    from_ns: Option<u64>,
    effective_from: Option<Arc<str>>,
    rates: Rates,
    /// Sorted by threshold, ascending.
    tiers: Vec<(u64, Rates)>,
    batch_discount: Option<Fraction>,
}

#[derive(Debug)]
struct Group {
    name: Arc<str>,
    provider: Option<Arc<str>>,
    /// Sorted by `from_ns` ascending (`None` first).
    versions: Vec<Version>,
}

/// A validated, ready-to-use price table.
#[derive(Debug)]
pub struct ValidatedTable {
    groups: Vec<Group>,
    exact: HashMap<String, usize>,
    globs: GlobSet,
    regexes: RegexSet,
    /// Pattern order → group; `glob_ids[i]` / `regex_ids[i]` give the order of set member `i`.
    pattern_group: Vec<usize>,
    glob_order: Vec<usize>,
    regex_order: Vec<usize>,
    fallback: Option<Group>,
    overrides: Vec<PriceOverride>,
    batch_discount: Fraction,
    /// Reported-cost handling (see [`PricingConfig::replace_reported_cost`]).
    pub replace_reported_cost: bool,
    cache: Mutex<HashMap<Box<str>, Option<usize>>>,
}

const LOOKUP_CACHE_CAP: usize = 4096;

/// Which entry a model id resolved to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryRef {
    /// Entry name.
    pub name: Arc<str>,
    /// Entry provider.
    pub provider: Option<Arc<str>>,
    /// The `effective_from` of the version used.
    pub effective_from: Option<Arc<str>>,
}

/// Exact cost of one call, nano-USD per component.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Cost {
    /// Uncached input.
    pub input: i64,
    /// Cache reads.
    pub cache_read: i64,
    /// 5-minute cache writes.
    pub cache_write_5m: i64,
    /// 1-hour cache writes.
    pub cache_write_1h: i64,
    /// Output (reasoning included).
    pub output: i64,
}

impl Cost {
    /// Cache writes, both lifetimes.
    pub fn cache_write(&self) -> i64 {
        self.cache_write_5m + self.cache_write_1h
    }
    /// Everything billed as prompt: input, cache reads and cache writes.
    pub fn prompt(&self) -> i64 {
        self.input + self.cache_read + self.cache_write()
    }
    /// The total: the sum of the rounded components.
    pub fn total(&self) -> i64 {
        self.prompt() + self.output
    }
}

/// A priced call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quote {
    /// The entry used.
    pub entry: EntryRef,
    /// The tier applied: its `above_input_tokens`.
    pub tier: Option<u64>,
    /// The prices used (tier prices when a tier applied).
    pub rates: Rates,
    /// Batch discount applied (ppm kept is `1 - this`), when the call was a batch call.
    pub batch_discount: Option<Fraction>,
    /// Override discount applied.
    pub discount: Option<Fraction>,
    /// The cost.
    pub cost: Cost,
}

/// Why a call could not be priced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unpriced {
    /// No entry matches and no fallback is configured.
    UnknownModel,
    /// The entry lacks a price for tokens the call used.
    IncompletePrice {
        /// The entry.
        entry: EntryRef,
        /// The tier, if one applied.
        tier: Option<u64>,
        /// Which price is missing (`cache_read`, `cache_write`, `cache_write_1h`).
        missing: &'static str,
    },
    /// The amounts overflowed (cannot happen within the validated bounds).
    Overflow,
}

/// What to price.
#[derive(Debug, Clone, Copy)]
pub struct PriceRequest<'a> {
    /// Model id as reported.
    pub model: &'a str,
    /// Normalised usage.
    pub usage: &'a Usage,
    /// The span's start time (ns since the epoch; 0 = unknown, latest prices).
    pub at_unix_nano: u64,
    /// A batch-API call.
    pub batch: bool,
    /// An override discount.
    pub discount: Option<Fraction>,
}

/// The canonical form of a lower-cased model id (see the module docs).
pub fn canonical_model(lower: &str) -> &str {
    let mut m = lower.rsplit('/').next().unwrap_or(lower);
    if let Some((head, _)) = m.split_once('@') {
        m = head;
    }
    for region in [
        "us.", "eu.", "apac.", "global.", "us-gov.", "jp.", "au.", "ca.",
    ] {
        if let Some(rest) = m.strip_prefix(region) {
            m = rest;
            break;
        }
    }
    for vendor in ["anthropic.", "openai.", "google."] {
        if let Some(rest) = m.strip_prefix(vendor) {
            m = rest;
            break;
        }
    }
    // Bedrock version: `-v1:0`, `-v2`.
    if let Some(pos) = m.rfind("-v") {
        let tail = &m[pos + 2..];
        if !tail.is_empty() && tail.bytes().all(|b| b.is_ascii_digit() || b == b':') {
            m = &m[..pos];
        }
    }
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    // `-20250929`
    if m.len() > 9 && m.as_bytes()[m.len() - 9] == b'-' && all_digits(&m[m.len() - 8..]) {
        m = &m[..m.len() - 9];
    } else if m.len() > 11 {
        // `-2024-08-06`
        let t = &m[m.len() - 11..];
        let b = t.as_bytes();
        if b[0] == b'-'
            && b[5] == b'-'
            && b[8] == b'-'
            && all_digits(&t[1..5])
            && all_digits(&t[6..8])
            && all_digits(&t[9..])
        {
            m = &m[..m.len() - 11];
        }
    }
    m
}

impl ValidatedTable {
    fn match_patterns(&self, s: &str) -> Option<usize> {
        let mut best: Option<usize> = None;
        for i in self.globs.matches(s) {
            let o = self.glob_order[i];
            best = Some(best.map_or(o, |b| b.min(o)));
        }
        for i in self.regexes.matches(s).iter() {
            let o = self.regex_order[i];
            best = Some(best.map_or(o, |b| b.min(o)));
        }
        best.map(|o| self.pattern_group[o])
    }

    fn find_group(&self, model: &str) -> Option<usize> {
        if let Some(hit) = self.cache.lock().get(model) {
            return *hit;
        }
        let lower = model.trim().to_ascii_lowercase();
        let canon = canonical_model(&lower);
        let found = self
            .exact
            .get(&lower)
            .or_else(|| self.exact.get(canon))
            .copied()
            .or_else(|| self.match_patterns(&lower))
            .or_else(|| self.match_patterns(canon));
        let mut cache = self.cache.lock();
        if cache.len() >= LOOKUP_CACHE_CAP {
            cache.clear();
        }
        cache.insert(model.into(), found);
        found
    }

    fn group_for(&self, model: &str) -> Option<&Group> {
        self.find_group(model)
            .map(|i| &self.groups[i])
            .or(self.fallback.as_ref())
    }

    /// The entry a model id resolves to (for the `price` command and tests).
    pub fn resolve(&self, model: &str, at_unix_nano: u64) -> Option<EntryRef> {
        let g = self.group_for(model)?;
        let v = pick_version(g, at_unix_nano);
        Some(entry_ref(g, v))
    }

    /// The discount of the first override whose `when` all match, by `lookup(key)`.
    pub fn override_discount<'v>(
        &self,
        mut lookup: impl FnMut(&str) -> Option<&'v str>,
    ) -> Option<Fraction> {
        self.overrides
            .iter()
            .find(|o| o.when.iter().all(|(k, v)| lookup(k) == Some(v.as_str())))
            .map(|o| o.discount)
    }

    /// True when overrides are configured (so callers read resource attributes only then).
    pub fn has_overrides(&self) -> bool {
        !self.overrides.is_empty()
    }

    /// Prices a call.
    pub fn price(&self, req: &PriceRequest<'_>) -> Result<Quote, Unpriced> {
        let g = self.group_for(req.model).ok_or(Unpriced::UnknownModel)?;
        let v = pick_version(g, req.at_unix_nano);
        let entry = entry_ref(g, v);
        let u = req.usage;
        let with_cache = u.input_with_cache();
        let (tier, rates) = match v.tiers.iter().rev().find(|(t, _)| with_cache > *t) {
            Some((t, r)) => (Some(*t), *r),
            None => (None, v.rates),
        };
        let need = |tokens: u64, p: Option<Price>, what: &'static str| match (tokens, p) {
            (0, p) => Ok(p.unwrap_or_default()),
            (_, Some(p)) => Ok(p),
            (_, None) => Err(Unpriced::IncompletePrice {
                entry: entry.clone(),
                tier,
                missing: what,
            }),
        };
        let read_p = need(u.cache_read, rates.cache_read, "cache_read")?;
        let w5_p = need(u.cache_write_5m, rates.cache_write, "cache_write")?;
        let w1_p = need(u.cache_write_1h, rates.cache_write_1h, "cache_write_1h")?;
        let batch_discount = req
            .batch
            .then(|| v.batch_discount.unwrap_or(self.batch_discount));
        let keep_a = batch_discount.map_or(MICRO, Fraction::complement);
        let keep_b = req.discount.map_or(MICRO, Fraction::complement);
        let c = |tokens, price| cost_nanos(tokens, price, keep_a, keep_b).ok_or(Unpriced::Overflow);
        let cost = Cost {
            input: c(u.input, rates.input)?,
            cache_read: c(u.cache_read, read_p)?,
            cache_write_5m: c(u.cache_write_5m, w5_p)?,
            cache_write_1h: c(u.cache_write_1h, w1_p)?,
            output: c(u.output, rates.output)?,
        };
        Ok(Quote {
            entry,
            tier,
            rates,
            batch_discount,
            discount: req.discount,
            cost,
        })
    }
}

fn pick_version(g: &Group, at: u64) -> &Version {
    let in_force = g
        .versions
        .iter()
        .rev()
        .find(|v| v.from_ns.is_none_or(|f| at == 0 || f <= at));
    // Before every dated version: the earliest one.
    in_force.unwrap_or(&g.versions[0])
}

fn entry_ref(g: &Group, v: &Version) -> EntryRef {
    EntryRef {
        name: g.name.clone(),
        provider: g.provider.clone(),
        effective_from: v.effective_from.clone(),
    }
}

#[cfg(test)]
mod tests;
