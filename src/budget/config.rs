//! `[[budgets]]` as users write it.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::Period;
use crate::units::NanoUsd;

/// One attribute or several.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum KeySpec {
    /// `key = "user.id"`.
    One(String),
    /// `key = ["tenant.id", "user.id"]`.
    Many(Vec<String>),
}

impl KeySpec {
    /// The attributes, in order.
    pub fn to_vec(&self) -> Vec<String> {
        match self {
            KeySpec::One(k) => vec![k.clone()],
            KeySpec::Many(k) => k.clone(),
        }
    }
}

/// A USD amount or fraction: a TOML number or a decimal string (read exactly either way).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum Decimal {
    /// `1.00`
    Float(f64),
    /// `1`
    Int(i64),
    /// `"1.00"`
    Text(String),
}

impl Decimal {
    /// The decimal digits as written (a float's shortest round-trip form).
    fn text(&self) -> String {
        match self {
            Decimal::Float(f) => format!("{f}"),
            Decimal::Int(i) => i.to_string(),
            Decimal::Text(t) => t.trim().to_owned(),
        }
    }

    /// The value scaled by 10^9, exactly (at most nine decimals).
    pub fn nanos(&self) -> Result<i64, String> {
        let t = self.text();
        let bad = || format!("{t:?} is not a decimal number with at most 9 decimals");
        if t.starts_with('-') {
            return Err(format!("{t:?} must not be negative"));
        }
        let (whole, frac) = t.split_once('.').unwrap_or((&t, ""));
        if whole.is_empty() && frac.is_empty()
            || !whole.bytes().all(|b| b.is_ascii_digit())
            || !frac.bytes().all(|b| b.is_ascii_digit())
            || frac.len() > 9
        {
            return Err(bad());
        }
        let whole: i64 = if whole.is_empty() {
            0
        } else {
            whole.parse().map_err(|_| bad())?
        };
        let frac_n: i64 = format!("{frac:0<9}").parse().map_err(|_| bad())?;
        whole
            .checked_mul(1_000_000_000)
            .and_then(|w| w.checked_add(frac_n))
            .ok_or_else(|| format!("{t:?} is too large"))
    }
}

/// One `[[budgets]]` entry.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BudgetConfig {
    /// Unique name; the `budget` label of its alerts and the API path.
    pub name: String,
    /// The attribute(s) spend is split by, looked up on the span, then its resource. A span
    /// without one of them is not counted in this budget.
    pub key: KeySpec,
    /// `day`, `week` (Monday to Monday) or `month`, in `timezone`; or `rolling` (the last
    /// `window`).
    pub period: String,
    /// A rolling period's length (e.g. `"24h"`): spend in the last `window` counts.
    #[serde(default)]
    pub window: Option<String>,
    /// A rolling window's granularity (default a sixtieth of the window): a call counts for
    /// between `window - bucket` and `window` after it.
    #[serde(default)]
    pub bucket: Option<String>,
    /// IANA time zone of the calendar periods (default `UTC`).
    #[serde(default)]
    pub timezone: Option<String>,
    /// The limit per key and period, USD.
    pub limit_usd: Decimal,
    /// Fractions of the limit that raise a warning alert when reached (each in (0, 1)).
    #[serde(default)]
    pub warn_at: Vec<Decimal>,
    /// Only spans whose attributes (span, then resource) equal these values count.
    #[serde(default, rename = "where")]
    pub where_: BTreeMap<String, toml::Value>,
}

/// A checked budget's parts.
#[derive(Debug)]
pub(super) struct Checked {
    pub(super) period: Period,
    pub(super) limit: NanoUsd,
    pub(super) warn: Vec<(String, NanoUsd)>,
}

impl BudgetConfig {
    pub(super) fn check(&self) -> Result<Checked, String> {
        let mut errors = Vec::new();
        if self.name.trim().is_empty() || self.name.contains('/') {
            errors.push("name must be non-empty and contain no '/'".to_owned());
        }
        let keys = self.key.to_vec();
        if keys.is_empty() || keys.iter().any(|k| k.trim().is_empty()) {
            errors.push("key must name at least one attribute, none empty".to_owned());
        }
        let period = Period::parse(
            &self.period,
            self.timezone.as_deref(),
            self.window.as_deref(),
            self.bucket.as_deref(),
        )
        .map_err(|e| errors.push(e))
        .ok();
        let limit = match self.limit_usd.nanos() {
            Ok(0) => {
                errors.push("limit_usd must be above zero".into());
                None
            }
            Ok(n) => Some(NanoUsd(n)),
            Err(e) => {
                errors.push(format!("limit_usd: {e}"));
                None
            }
        };
        let mut warn = Vec::new();
        for w in &self.warn_at {
            match w.nanos() {
                Ok(f) if f > 0 && f < 1_000_000_000 => {
                    if let Some(l) = limit {
                        // Exact: limit × fraction, rounded up to the nano-USD.
                        let t = (i128::from(l.0) * i128::from(f) + 999_999_999) / 1_000_000_000;
                        warn.push((w.text(), NanoUsd(t as i64)));
                    }
                }
                Ok(_) => errors.push(format!(
                    "warn_at {} must be a fraction above 0 and below 1",
                    w.text()
                )),
                Err(e) => errors.push(format!("warn_at: {e}")),
            }
        }
        warn.sort_by_key(|(_, t)| *t);
        warn.dedup_by_key(|(_, t)| *t);
        if let Err(e) = crate::alert::compile_where(&self.where_) {
            errors.extend(e);
        }
        match (period, limit, errors.is_empty()) {
            (Some(period), Some(limit), true) => Ok(Checked {
                period,
                limit,
                warn,
            }),
            _ => Err(format!("budget {:?}: {}", self.name, errors.join("; "))),
        }
    }
}
