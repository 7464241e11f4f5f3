//! The shared vocabulary of money and usage: exact nano-USD ([`NanoUsd`]), token counts by kind
//! ([`Tokens`]), what one priced LLM call adds ([`LlmUsage`]) and a task's totals
//! ([`TaskTotals`]). A leaf: it imports nothing of
//! tollgate, and every component (llm, task, alert, telemetry, the read side) speaks it.

use std::fmt;
use std::ops::{Add, AddAssign, SubAssign};

use serde::{Deserialize, Serialize};

/// Nano-USD per USD.
const NANOS_PER_USD: u64 = 1_000_000_000;

/// An exact amount of money in nano-USD (10⁻⁹ USD). Sums are integer; a float appears only when
/// a value is presented ([`Self::as_usd_f64`]).
///
/// `Display` writes exact decimal USD without trailing zeros (`600000000` → `0.6`, `0` → `0`,
/// `-1` → `-0.000000001`): the task API, the status page and alert texts. [`Self::fixed9`] writes
/// all nine decimals (`0.600000000`), the column format of the `price` command.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct NanoUsd(pub i64);

impl NanoUsd {
    /// Zero.
    pub const ZERO: NanoUsd = NanoUsd(0);

    /// The amount in nano-USD.
    pub fn nanos(self) -> i64 {
        self.0
    }

    /// USD as a double, for presentation only (span attributes, Prometheus); never summed.
    pub fn as_usd_f64(self) -> f64 {
        self.0 as f64 / 1e9
    }

    /// Exact decimal USD with all nine decimals, e.g. `0.000000075`, `1.500000000`.
    pub fn fixed9(self) -> impl fmt::Display {
        struct Fixed(i64);
        impl fmt::Display for Fixed {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let (sign, whole, frac) = split(self.0);
                write!(f, "{sign}{whole}.{frac:09}")
            }
        }
        Fixed(self.0)
    }

    /// The saturating sum.
    pub fn saturating_add(self, other: NanoUsd) -> NanoUsd {
        NanoUsd(self.0.saturating_add(other.0))
    }
}

fn split(nanos: i64) -> (&'static str, u64, u64) {
    let sign = if nanos < 0 { "-" } else { "" };
    let abs = nanos.unsigned_abs();
    (sign, abs / NANOS_PER_USD, abs % NANOS_PER_USD)
}

impl fmt::Display for NanoUsd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (sign, whole, frac) = split(self.0);
        if frac == 0 {
            return write!(f, "{sign}{whole}");
        }
        let mut digits = [0u8; 9];
        let mut rest = frac;
        for d in digits.iter_mut().rev() {
            *d = b'0' + (rest % 10) as u8;
            rest /= 10;
        }
        let end = digits.iter().rposition(|&d| d != b'0').map_or(0, |i| i + 1);
        let digits = std::str::from_utf8(&digits[..end]).map_err(|_| fmt::Error)?;
        write!(f, "{sign}{whole}.{digits}")
    }
}

/// Token counts by kind. `input_uncached` excludes both cache kinds, so the four never overlap.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize)]
pub struct Tokens {
    /// Input tokens neither read from nor written to a prompt cache.
    pub input_uncached: u64,
    /// Input tokens read from a prompt cache.
    pub cache_read: u64,
    /// Input tokens written to a prompt cache (all TTLs).
    pub cache_write: u64,
    /// Output tokens (reasoning included).
    pub output: u64,
}

impl Tokens {
    /// All input tokens, cache reads and writes included.
    pub fn input(&self) -> u64 {
        self.input_uncached + self.cache_read + self.cache_write
    }

    /// Cache reads over all input; `None` without input.
    pub fn cache_hit_ratio(&self) -> Option<f64> {
        let input = self.input();
        (input > 0).then(|| self.cache_read as f64 / input as f64)
    }

    /// The counts in the order input_uncached, cache_read, cache_write, output.
    pub fn by_kind(&self) -> [u64; 4] {
        [
            self.input_uncached,
            self.cache_read,
            self.cache_write,
            self.output,
        ]
    }
}

impl AddAssign for Tokens {
    fn add_assign(&mut self, o: Tokens) {
        self.input_uncached = self.input_uncached.saturating_add(o.input_uncached);
        self.cache_read = self.cache_read.saturating_add(o.cache_read);
        self.cache_write = self.cache_write.saturating_add(o.cache_write);
        self.output = self.output.saturating_add(o.output);
    }
}

impl SubAssign for Tokens {
    fn sub_assign(&mut self, o: Tokens) {
        self.input_uncached = self.input_uncached.saturating_sub(o.input_uncached);
        self.cache_read = self.cache_read.saturating_sub(o.cache_read);
        self.cache_write = self.cache_write.saturating_sub(o.cache_write);
        self.output = self.output.saturating_sub(o.output);
    }
}

impl Add for Tokens {
    type Output = Tokens;
    fn add(mut self, o: Tokens) -> Tokens {
        self += o;
        self
    }
}

/// A task's running totals (what rules judge, the roll-up reports and state stores hold). The
/// totals of one span are what it adds to its task ([`Self::merge`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TaskTotals {
    /// Exact cost so far, nano-USD.
    pub cost_nano_usd: i64,
    /// Tokens by kind.
    pub tokens: Tokens,
    /// LLM calls, priced or not.
    pub llm_calls: u64,
    /// Of them, the calls without a cost, by reason.
    pub unpriced: Unpriced,
    /// Spans with error status.
    pub errors: u64,
    /// Spans seen.
    pub spans: u64,
    /// Earliest span start, nanoseconds since the epoch (0 when unknown).
    pub first_seen_unix_nano: u64,
    /// Latest span end, nanoseconds since the epoch.
    pub last_seen_unix_nano: u64,
}

impl TaskTotals {
    /// Adds `other` (e.g. one span's totals): sums saturate; first/last seen take the earliest
    /// start (ignoring unknown zeros) and the latest end.
    pub fn merge(&mut self, other: &TaskTotals) {
        self.cost_nano_usd = self.cost_nano_usd.saturating_add(other.cost_nano_usd);
        self.tokens += other.tokens;
        self.llm_calls = self.llm_calls.saturating_add(other.llm_calls);
        self.unpriced += other.unpriced;
        self.errors = self.errors.saturating_add(other.errors);
        self.spans = self.spans.saturating_add(other.spans);
        if other.first_seen_unix_nano > 0
            && (self.first_seen_unix_nano == 0
                || other.first_seen_unix_nano < self.first_seen_unix_nano)
        {
            self.first_seen_unix_nano = other.first_seen_unix_nano;
        }
        self.last_seen_unix_nano = self.last_seen_unix_nano.max(other.last_seen_unix_nano);
    }

    /// The cost as money.
    pub fn cost(&self) -> NanoUsd {
        NanoUsd(self.cost_nano_usd)
    }
}

/// LLM calls tollgate could not price, by reason (the `tollgate.pricing.status` values). Their
/// cost is unknown — never $0: wherever a cost is shown, these are shown beside it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Unpriced {
    /// No price-table entry matches the model and no fallback is set.
    pub unknown_model: u64,
    /// The entry lacks a price for tokens the call used (e.g. cache writes).
    pub incomplete_price: u64,
    /// A token count is not valid.
    pub invalid_usage: u64,
    /// The call reported no token counts.
    pub no_usage: u64,
}

impl Unpriced {
    /// One call unpriced for `reason` (a `tollgate.pricing.status` value); `None` for a reason
    /// that is not one of the four (`priced`, `aggregate`).
    pub fn one(reason: &str) -> Option<Unpriced> {
        let mut u = Unpriced::default();
        *match reason {
            "unknown_model" => &mut u.unknown_model,
            "incomplete_price" => &mut u.incomplete_price,
            "invalid_usage" => &mut u.invalid_usage,
            "no_usage" => &mut u.no_usage,
            _ => return None,
        } += 1;
        Some(u)
    }

    /// All unpriced calls.
    pub fn total(&self) -> u64 {
        self.by_reason().iter().map(|(_, n)| n).sum()
    }

    /// `(reason, calls)` for every reason, most frequent first.
    pub fn by_reason(&self) -> [(&'static str, u64); 4] {
        let mut r = [
            ("unknown_model", self.unknown_model),
            ("incomplete_price", self.incomplete_price),
            ("invalid_usage", self.invalid_usage),
            ("no_usage", self.no_usage),
        ];
        r.sort_by_key(|(_, n)| std::cmp::Reverse(*n));
        r
    }

    /// `"4 unpriced (unknown_model 3, no_usage 1)"`, or `""` when every call was priced.
    pub fn describe(&self) -> String {
        let total = self.total();
        if total == 0 {
            return String::new();
        }
        let reasons: Vec<String> = self
            .by_reason()
            .iter()
            .filter(|(_, n)| *n > 0)
            .map(|(r, n)| format!("{r} {n}"))
            .collect();
        format!("{total} unpriced ({})", reasons.join(", "))
    }
}

impl AddAssign for Unpriced {
    fn add_assign(&mut self, o: Unpriced) {
        self.unknown_model = self.unknown_model.saturating_add(o.unknown_model);
        self.incomplete_price = self.incomplete_price.saturating_add(o.incomplete_price);
        self.invalid_usage = self.invalid_usage.saturating_add(o.invalid_usage);
        self.no_usage = self.no_usage.saturating_add(o.no_usage);
    }
}

/// What one LLM call adds: its exact cost and its tokens, or (unpriced) why it has no cost.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LlmUsage {
    /// The call's cost in nano-USD (exact; 0 when unpriced).
    pub cost_nano_usd: i64,
    /// Its tokens by kind.
    pub tokens: Tokens,
    /// Set (one reason, one call) when the call could not be priced.
    pub unpriced: Unpriced,
}

impl LlmUsage {
    /// The cost as money.
    pub fn cost(&self) -> NanoUsd {
        NanoUsd(self.cost_nano_usd)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_is_exact_without_trailing_zeros() {
        let d = |n| NanoUsd(n).to_string();
        assert_eq!(d(600_000_000), "0.6");
        assert_eq!(d(0), "0");
        assert_eq!(d(1), "0.000000001");
        assert_eq!(d(-1), "-0.000000001");
        assert_eq!(d(-1_500_000_000), "-1.5");
        assert_eq!(d(12_000_000_000), "12");
        assert_eq!(d(i64::MIN), "-9223372036.854775808");
    }

    #[test]
    fn fixed9_keeps_nine_decimals() {
        let f = |n| NanoUsd(n).fixed9().to_string();
        assert_eq!(f(75), "0.000000075");
        assert_eq!(f(1_500_000_000), "1.500000000");
        assert_eq!(f(0), "0.000000000");
        assert_eq!(f(-75), "-0.000000075");
    }

    #[test]
    fn unpriced_counts_by_reason() {
        assert_eq!(Unpriced::one("priced"), None);
        let mut u = Unpriced::one("unknown_model").unwrap();
        u += Unpriced::one("unknown_model").unwrap();
        u += Unpriced::one("no_usage").unwrap();
        assert_eq!(u.total(), 3);
        assert_eq!(u.describe(), "3 unpriced (unknown_model 2, no_usage 1)");
        assert_eq!(Unpriced::default().describe(), "");
    }

    #[test]
    fn tokens_add_and_ratio() {
        let a = Tokens {
            input_uncached: 100,
            cache_read: 300,
            cache_write: 100,
            output: 7,
        };
        let s = a + a;
        assert_eq!(s.input(), 1000);
        assert_eq!(s.output, 14);
        assert_eq!(s.cache_hit_ratio(), Some(0.6));
        assert_eq!(Tokens::default().cache_hit_ratio(), None);
    }
}

/// Longest name (model, service, task id, task type) the read side keeps, in bytes.
pub const MAX_KEY_BYTES: usize = 256;

/// `s` itself when it is at most [`MAX_KEY_BYTES`] long; otherwise its first ~230 bytes (cut at
/// a character boundary), `…` and a 16-hex-digit hash of the whole, so distinct long names stay
/// distinct. Every name a span gives the read side (task totals, the status page's spend by
/// model and service, alerts, metric labels, the ledger) goes through this: a 1 MiB model name
/// costs 256 bytes wherever it is kept, and `GET /` stays small.
pub fn clip_key(s: &str) -> std::borrow::Cow<'_, str> {
    use std::hash::{Hash, Hasher};
    if s.len() <= MAX_KEY_BYTES {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut end = MAX_KEY_BYTES - 3 - 16 - 8;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    let mut h = std::collections::hash_map::DefaultHasher::new();
    s.hash(&mut h);
    std::borrow::Cow::Owned(format!("{}…{:016x}", &s[..end], h.finish()))
}

/// [`clip_key`] for a name that may already be owned.
pub fn clip_key_cow(s: std::borrow::Cow<'_, str>) -> std::borrow::Cow<'_, str> {
    if s.len() <= MAX_KEY_BYTES {
        return s;
    }
    std::borrow::Cow::Owned(clip_key(&s).into_owned())
}

#[cfg(test)]
mod clip_tests {
    use super::*;

    #[test]
    fn long_names_are_clipped_distinct_and_at_char_boundaries() {
        assert_eq!(clip_key("claude-sonnet-4-6"), "claude-sonnet-4-6");
        let a = "é".repeat(1 << 19);
        let mut b = a.clone();
        b.push('x');
        let (ca, cb) = (clip_key(&a), clip_key(&b));
        assert!(ca.len() <= MAX_KEY_BYTES, "{}", ca.len());
        assert_ne!(ca, cb, "distinct long names stay distinct");
        assert!(ca.starts_with("éé") && ca.contains('…'));
        assert_eq!(clip_key_cow(std::borrow::Cow::Owned(a.clone())), ca);
    }
}
