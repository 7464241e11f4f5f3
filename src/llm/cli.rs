//! `tollgate price MODEL …`: a price breakdown from the configured table, to check by hand.

use super::config::PricingConfig;
use super::money::Fraction;
use super::price_table::{validate, PriceRequest, PricingError, Unpriced};
use super::usage::Usage;
use crate::units::NanoUsd;

/// Arguments of `tollgate price`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct PriceArgs {
    /// Model id, in any spelling a span would carry (dated, Bedrock, Vertex, provider-prefixed).
    pub model: String,
    /// Uncached input tokens.
    #[arg(long, default_value_t = 0)]
    pub input: u64,
    /// Output tokens (reasoning included).
    #[arg(long, default_value_t = 0)]
    pub output: u64,
    /// Cache-read tokens.
    #[arg(long, default_value_t = 0)]
    pub cache_read: u64,
    /// 5-minute cache-write tokens.
    #[arg(long, default_value_t = 0)]
    pub cache_write: u64,
    /// 1-hour cache-write tokens.
    #[arg(long = "cache-write-1h", default_value_t = 0)]
    pub cache_write_1h: u64,
    /// Price as of this date (`YYYY-MM-DD`, UTC); default: the latest prices.
    #[arg(long)]
    pub at: Option<String>,
    /// Price as a batch-API call.
    #[arg(long)]
    pub batch: bool,
}

/// Why `tollgate price` failed.
#[derive(Debug, thiserror::Error)]
pub enum PriceCliError {
    /// The `[pricing]` section is invalid.
    #[error("invalid [pricing] section: {}", .0.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; "))]
    Config(Vec<PricingError>),
    /// `--at` is not a date.
    #[error("--at `{0}` is not a YYYY-MM-DD date")]
    BadDate(String),
    /// No entry matches and there is no fallback.
    #[error("no price-table entry matches `{0}` (and no [pricing.fallback] is set)")]
    UnknownModel(String),
    /// The entry lacks a needed price.
    #[error("entry `{entry}` has no `{missing}` price, so these tokens cannot be priced")]
    IncompletePrice {
        /// Entry name.
        entry: String,
        /// Missing price.
        missing: &'static str,
    },
    /// A token count is above 10⁹ or the amounts overflow.
    #[error("token counts are too large")]
    TooLarge,
}

fn line(out: &mut String, text: String) {
    out.push_str(&text);
    out.push('\n');
}

fn fmt_fraction(f: Fraction) -> String {
    format!("{}%", f.0 as f64 / 10_000.0)
}

/// Prices `args` from `config` and renders the breakdown: entry, tier, each component with its
/// price and tokens, and the total in USD with all nine decimals.
pub fn price_breakdown(config: &PricingConfig, args: &PriceArgs) -> Result<String, PriceCliError> {
    let table = validate(config).map_err(PriceCliError::Config)?;
    let at = match &args.at {
        None => 0,
        Some(d) => {
            let fmt = time::macros::format_description!("[year]-[month]-[day]");
            let date =
                time::Date::parse(d.trim(), &fmt).map_err(|_| PriceCliError::BadDate(d.clone()))?;
            u64::try_from(date.midnight().assume_utc().unix_timestamp_nanos())
                .map_err(|_| PriceCliError::BadDate(d.clone()))?
                .saturating_add(1)
        }
    };
    let max = super::usage::MAX_TOKENS;
    if [
        args.input,
        args.output,
        args.cache_read,
        args.cache_write,
        args.cache_write_1h,
    ]
    .iter()
    .any(|n| *n > max)
    {
        return Err(PriceCliError::TooLarge);
    }
    let usage = Usage {
        input: args.input,
        cache_read: args.cache_read,
        cache_write_5m: args.cache_write,
        cache_write_1h: args.cache_write_1h,
        output: args.output,
        reasoning: 0,
    };
    let q = table
        .price(&PriceRequest {
            model: &args.model,
            usage: &usage,
            at_unix_nano: at,
            batch: args.batch,
            discount: None,
        })
        .map_err(|e| match e {
            Unpriced::UnknownModel => PriceCliError::UnknownModel(args.model.clone()),
            Unpriced::IncompletePrice { entry, missing, .. } => PriceCliError::IncompletePrice {
                entry: entry.name.to_string(),
                missing,
            },
            Unpriced::Overflow => PriceCliError::TooLarge,
        })?;
    let mut s = String::new();
    let provider = q.entry.provider.as_deref().unwrap_or("-");
    line(&mut s, format!("model           {}", args.model));
    line(
        &mut s,
        format!("entry           {} (provider {provider})", q.entry.name),
    );
    if let Some(d) = &q.entry.effective_from {
        line(&mut s, format!("effective from  {d}"));
    }
    match q.tier {
        Some(t) => {
            line(
                &mut s,
                format!(
                    "tier            above {t} input tokens (input incl. cache: {})",
                    usage.input_with_cache()
                ),
            );
        }
        None => {
            line(&mut s, "tier            base".to_string());
        }
    }
    if let Some(b) = q.batch_discount {
        line(&mut s, format!("batch discount  {}", fmt_fraction(b)));
    }
    let rows = [
        ("input", usage.input, Some(q.rates.input), q.cost.input),
        (
            "cache read",
            usage.cache_read,
            q.rates.cache_read,
            q.cost.cache_read,
        ),
        (
            "cache write 5m",
            usage.cache_write_5m,
            q.rates.cache_write,
            q.cost.cache_write_5m,
        ),
        (
            "cache write 1h",
            usage.cache_write_1h,
            q.rates.cache_write_1h,
            q.cost.cache_write_1h,
        ),
        ("output", usage.output, Some(q.rates.output), q.cost.output),
    ];
    for (what, tokens, price, cost) in rows {
        let price = price.map_or_else(|| "-".to_string(), |p| format!("${p}/M"));
        line(
            &mut s,
            format!(
                "{what:<15} {tokens:>12} tokens × {price:<12} = ${}",
                NanoUsd(cost).fixed9()
            ),
        );
    }
    line(
        &mut s,
        format!("total           ${}", NanoUsd(q.cost.total()).fixed9()),
    );
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(clap::Parser)]
    struct Cmd {
        #[command(flatten)]
        args: PriceArgs,
    }

    #[test]
    fn parses_the_documented_flags() {
        use clap::Parser;
        let c = Cmd::try_parse_from([
            "price",
            "claude-sonnet-4",
            "--input",
            "100000",
            "--output",
            "2000",
            "--cache-read",
            "100000",
            "--cache-write-1h",
            "10000",
            "--at",
            "2026-11-01",
        ])
        .unwrap();
        assert_eq!(c.args.cache_write_1h, 10_000);
        let out = price_breakdown(&PricingConfig::default(), &c.args).unwrap();
        // Tier above 200 000 (input incl. cache 210 000): 100 000 × 6 + 100 000 × 0.60
        // + 10 000 × 12 + 2000 × 22.50 = 600 000 + 60 000 + 120 000 + 45 000 µ$ = $0.825.
        assert!(
            out.contains("tier            above 200000 input tokens"),
            "{out}"
        );
        assert!(out.contains("total           $0.825000000"), "{out}");
    }

    #[test]
    fn breakdown_shows_each_component_and_exact_total() {
        let args = PriceArgs {
            model: "claude-sonnet-4-6".into(),
            input: 1200,
            output: 340,
            cache_read: 800,
            cache_write: 100,
            ..PriceArgs::default()
        };
        let out = price_breakdown(&PricingConfig::default(), &args).unwrap();
        // 1200×3 + 800×0.30 + 100×3.75 + 340×15 = 3600 + 240 + 375 + 5100 = 9315 µ$ = $0.009315
        assert!(out.contains("entry           claude-sonnet-4-6"), "{out}");
        assert!(out.contains("= $0.003600000"), "{out}");
        assert!(out.contains("= $0.000240000"), "{out}");
        assert!(out.contains("= $0.000375000"), "{out}");
        assert!(out.contains("= $0.005100000"), "{out}");
        assert!(out.contains("total           $0.009315000"), "{out}");

        let batch = PriceArgs {
            batch: true,
            ..args.clone()
        };
        let out = price_breakdown(&PricingConfig::default(), &batch).unwrap();
        assert!(out.contains("batch discount  50%"), "{out}");
        assert!(out.contains("total           $0.004657500"), "{out}");

        let unknown = PriceArgs {
            model: "llama-9".into(),
            ..args
        };
        assert!(matches!(
            price_breakdown(&PricingConfig::default(), &unknown),
            Err(PriceCliError::UnknownModel(_))
        ));
    }
}
