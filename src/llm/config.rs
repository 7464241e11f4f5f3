//! `[pricing]`: the price table users edit, and how LLM spans are enriched.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use super::money::{Fraction, Price};

/// `[pricing]`: the price table and enrichment settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PricingConfig {
    /// Include the price table shipped in the binary (Anthropic, OpenAI and Google models). Entries
    /// in `[[pricing.models]]` with the same name replace shipped ones.
    #[serde(default = "default_true")]
    pub builtin: bool,
    /// When a span already carries a cost (`llm.cost.total` or `gen_ai.usage.cost`), keep the
    /// reported value under `tollgate.cost.reported_usd` and replace the cost attributes with
    /// tollgate's. With `false`, the reported cost attributes are left as they are and tollgate's
    /// total goes to `tollgate.cost.total_usd`.
    #[serde(default = "default_true")]
    pub replace_reported_cost: bool,
    /// Discount for batch-API calls (fraction, 0.5 = 50 % off), unless a model sets its own.
    #[serde(default = "default_batch_discount")]
    pub batch_discount: Fraction,
    /// How many recent LLM calls to remember to recognise one call reported by two spans.
    #[serde(default = "default_dedupe_capacity")]
    pub dedupe_capacity: usize,
    /// How long to remember a call for that purpose (e.g. `"10m"`).
    #[serde(
        default = "default_dedupe_ttl",
        deserialize_with = "crate::config::duration::positive"
    )]
    pub dedupe_ttl: Duration,
    /// Prices for models no entry matches. Without it, such spans are `unknown_model`.
    #[serde(default)]
    pub fallback: Option<FallbackPrice>,
    /// Model price entries; they add to (and, by name, replace) the shipped table.
    #[serde(default)]
    pub models: Vec<ModelPrice>,
    /// Negotiated discounts selected by span or resource attributes; the first match applies.
    #[serde(default)]
    pub overrides: Vec<PriceOverride>,
}

fn default_true() -> bool {
    true
}
fn default_batch_discount() -> Fraction {
    Fraction(500_000)
}
fn default_dedupe_capacity() -> usize {
    50_000
}
fn default_dedupe_ttl() -> Duration {
    Duration::from_secs(600)
}

impl Default for PricingConfig {
    fn default() -> Self {
        Self {
            builtin: true,
            replace_reported_cost: true,
            batch_discount: default_batch_discount(),
            dedupe_capacity: default_dedupe_capacity(),
            dedupe_ttl: default_dedupe_ttl(),
            fallback: None,
            models: Vec::new(),
            overrides: Vec::new(),
        }
    }
}

/// `[[pricing.models]]`: one model's prices, USD per million tokens.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelPrice {
    /// The entry's name (written to `tollgate.pricing.entry`); a model id equal to it (ignoring
    /// case, dates, provider/region prefixes and `@version` suffixes) matches exactly.
    pub name: String,
    /// The provider (`anthropic`, `openai`, `google`, …), for display.
    #[serde(default)]
    pub provider: Option<String>,
    /// Extra patterns, case-insensitive: globs (`claude-sonnet-4-6*`) or `regex:`-prefixed regexes.
    #[serde(default, rename = "match")]
    pub patterns: Vec<String>,
    /// Uncached input.
    pub input: Price,
    /// Output (reasoning included).
    pub output: Price,
    /// Cache reads; without it, a span with cache reads is `incomplete_price`.
    #[serde(default)]
    pub cache_read: Option<Price>,
    /// 5-minute cache writes (and writes whose duration is unknown).
    #[serde(default)]
    pub cache_write: Option<Price>,
    /// 1-hour cache writes.
    #[serde(default)]
    pub cache_write_1h: Option<Price>,
    /// Date (`YYYY-MM-DD`, UTC) from which these prices apply; the span's start time picks the
    /// entry in force among entries with the same name.
    #[serde(default)]
    pub effective_from: Option<String>,
    /// This model's batch discount, overriding `[pricing] batch_discount`.
    #[serde(default)]
    pub batch_discount: Option<Fraction>,
    /// Long-context tiers: when input incl. cache exceeds a threshold, the whole request is billed
    /// at the tier's prices.
    #[serde(default)]
    pub tiers: Vec<PriceTier>,
}

/// `[[pricing.models.tiers]]`: prices for the whole request above an input size.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriceTier {
    /// Applies when input tokens incl. cache are strictly greater than this.
    pub above_input_tokens: u64,
    /// Uncached input.
    pub input: Price,
    /// Output.
    pub output: Price,
    /// Cache reads.
    #[serde(default)]
    pub cache_read: Option<Price>,
    /// 5-minute cache writes.
    #[serde(default)]
    pub cache_write: Option<Price>,
    /// 1-hour cache writes.
    #[serde(default)]
    pub cache_write_1h: Option<Price>,
}

/// `[pricing.fallback]`: prices for models no entry matches.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FallbackPrice {
    /// The name written to `tollgate.pricing.entry` for such spans.
    #[serde(default = "default_fallback_name")]
    pub name: String,
    /// Uncached input.
    pub input: Price,
    /// Output.
    pub output: Price,
    /// Cache reads.
    #[serde(default)]
    pub cache_read: Option<Price>,
    /// 5-minute cache writes.
    #[serde(default)]
    pub cache_write: Option<Price>,
    /// 1-hour cache writes.
    #[serde(default)]
    pub cache_write_1h: Option<Price>,
}

fn default_fallback_name() -> String {
    "fallback".into()
}

/// `[[pricing.overrides]]`: a discount for spans whose attributes match.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriceOverride {
    /// Attribute key → exact string value; all must match (span attributes first, then resource
    /// attributes).
    pub when: BTreeMap<String, String>,
    /// Fraction off every component (0.22 = 22 % off).
    pub discount: Fraction,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_issue_example() {
        let text = r#"
            builtin = true
            [[models]]
            name = "claude-sonnet-4-6"
            provider = "anthropic"
            match = ["claude-sonnet-4-6*", "anthropic.claude-sonnet-4-6*", "*.anthropic.claude-sonnet-4-6*"]
            input = 3.00
            output = 15.00
            cache_read = 0.30
            cache_write = 3.75
            cache_write_1h = 6.00
            effective_from = "2026-01-01"
            [[models.tiers]]
            above_input_tokens = 200000
            input = 6.00
            output = 22.50
            cache_read = 0.60
            cache_write = 7.50
            cache_write_1h = 12.00
            [[overrides]]
            when = { "service.name" = "checkout-agent" }
            discount = 0.22
        "#;
        let c: PricingConfig = toml::from_str(text).unwrap();
        assert_eq!(c.models[0].input, Price(3_000_000));
        assert_eq!(c.models[0].tiers[0].output, Price(22_500_000));
        assert_eq!(c.overrides[0].discount, Fraction(220_000));
        assert_eq!(c.batch_discount, Fraction(500_000));
        assert_eq!(c.dedupe_ttl, Duration::from_secs(600));
        assert!(toml::from_str::<PricingConfig>("unknown = 1").is_err());
    }
}
