//! Exact money: prices as integer micro-USD per million tokens, costs as integer nano-USD.
//!
//! A price of `p` USD per million tokens is `p × 10⁶` micro-USD per million tokens, which is the
//! same number as pico-USD per token. Prices are read from their decimal text (at most six decimal
//! places), never through float arithmetic, so `0.075` is exactly 75 000 and one token at that
//! price costs exactly 75 nano-USD.
//!
//! A cost component is computed exactly as a fraction (tokens × price × batch factor × discount
//! factor) and rounded once, half up, to whole nano-USD. A total is the sum of its rounded
//! components, so the parts always add up to the total shown.

use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

/// Micro-units per unit: prices and fractions carry six decimal places.
pub const MICRO: u64 = 1_000_000;

/// Largest accepted price, USD per million tokens (keeps every product inside `i128`/`i64`).
pub const MAX_PRICE_USD: u64 = 1_000_000;

/// A price in USD per million tokens, held exactly as micro-USD per million tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Price(pub u64);

/// A fraction in `[0, 1]` (a discount), held exactly as parts per million.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Fraction(pub u64);

/// Why a decimal could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecimalError {
    /// Not a plain non-negative decimal number.
    #[error("`{0}` is not a non-negative decimal number")]
    NotDecimal(String),
    /// More than six digits after the decimal point.
    #[error("`{0}` has more than 6 decimal places")]
    TooPrecise(String),
    /// Above the allowed maximum.
    #[error("`{0}` is larger than {1}")]
    TooLarge(String, u64),
}

/// Parses a non-negative decimal text (`3`, `0.075`, `1e-3` is refused) into millionths.
pub fn parse_micro(text: &str, max_units: u64) -> Result<u64, DecimalError> {
    let t = text.trim();
    let (int, frac) = match t.split_once('.') {
        Some((i, f)) => (i, f),
        None => (t, ""),
    };
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if int.is_empty() && frac.is_empty() || !digits(int) || !digits(frac) {
        return Err(DecimalError::NotDecimal(t.to_string()));
    }
    let frac = frac.trim_end_matches('0');
    if frac.len() > 6 {
        return Err(DecimalError::TooPrecise(t.to_string()));
    }
    let int = int.trim_start_matches('0');
    if int.len() > 12 {
        return Err(DecimalError::TooLarge(t.to_string(), max_units));
    }
    let whole: u64 = if int.is_empty() {
        0
    } else {
        int.parse()
            .map_err(|_| DecimalError::NotDecimal(t.to_string()))?
    };
    let mut f: u64 = if frac.is_empty() {
        0
    } else {
        frac.parse()
            .map_err(|_| DecimalError::NotDecimal(t.to_string()))?
    };
    for _ in frac.len()..6 {
        f *= 10;
    }
    if whole > max_units || (whole == max_units && f > 0) {
        return Err(DecimalError::TooLarge(t.to_string(), max_units));
    }
    Ok(whole * MICRO + f)
}

/// The shortest decimal text of a TOML float: Rust prints the shortest string that reads back as
/// the same `f64`, which is the literal the user wrote whenever it has at most 15 significant
/// digits (always the case for prices with six decimal places).
fn float_text(v: f64) -> Result<String, DecimalError> {
    if !v.is_finite() || v < 0.0 {
        return Err(DecimalError::NotDecimal(v.to_string()));
    }
    let s = format!("{v}");
    if s.contains('e') {
        return Err(DecimalError::TooPrecise(s));
    }
    Ok(s)
}

struct MicroVisitor {
    max: u64,
    what: &'static str,
}

impl Visitor<'_> for MicroVisitor {
    type Value = u64;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (a non-negative number with at most 6 decimal places)",
            self.what
        )
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<u64, E> {
        parse_micro(&v.to_string(), self.max).map_err(E::custom)
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<u64, E> {
        parse_micro(&v.to_string(), self.max).map_err(E::custom)
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<u64, E> {
        let text = float_text(v).map_err(E::custom)?;
        parse_micro(&text, self.max).map_err(E::custom)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<u64, E> {
        parse_micro(v, self.max).map_err(E::custom)
    }
}

impl<'de> Deserialize<'de> for Price {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(MicroVisitor {
            max: MAX_PRICE_USD,
            what: "a price in USD per million tokens",
        })
        .map(Price)
    }
}

impl<'de> Deserialize<'de> for Fraction {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(MicroVisitor {
            max: 1,
            what: "a fraction between 0 and 1",
        })
        .map(Fraction)
    }
}

impl Price {
    /// A price from its decimal text (for tests and tools).
    pub fn parse(text: &str) -> Result<Self, DecimalError> {
        parse_micro(text, MAX_PRICE_USD).map(Price)
    }
}

impl Fraction {
    /// A fraction from its decimal text (for tests and tools).
    pub fn parse(text: &str) -> Result<Self, DecimalError> {
        parse_micro(text, 1).map(Fraction)
    }
    /// `1 - self`, in parts per million.
    pub fn complement(self) -> u64 {
        MICRO.saturating_sub(self.0)
    }
}

impl fmt::Display for Price {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_scaled(f, u128::from(self.0), 6)
    }
}

/// Cost of `tokens` at `price`, after keeping `keep_ppm` parts per million twice (batch factor and
/// discount factor), rounded half up to whole nano-USD. `None` on overflow.
pub fn cost_nanos(tokens: u64, price: Price, keep_a_ppm: u64, keep_b_ppm: u64) -> Option<i64> {
    // tokens × price is pico-USD; × two ppm factors adds 10¹²; pico → nano is 10³.
    let num = u128::from(tokens)
        .checked_mul(u128::from(price.0))?
        .checked_mul(u128::from(keep_a_ppm))?
        .checked_mul(u128::from(keep_b_ppm))?;
    const DEN: u128 = 1_000_000_000_000_000; // 10¹⁵
    let rounded = (num + DEN / 2) / DEN;
    i64::try_from(rounded).ok()
}

fn write_scaled(f: &mut fmt::Formatter<'_>, v: u128, places: u32) -> fmt::Result {
    let unit = 10u128.pow(places);
    let frac = format!("{:0width$}", v % unit, width = places as usize);
    let frac = frac.trim_end_matches('0');
    let frac = if frac.is_empty() { "0" } else { frac };
    write!(f, "{}.{}", v / unit, frac)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_decimal_text_exactly() {
        assert_eq!(Price::parse("0.075").unwrap(), Price(75_000));
        assert_eq!(Price::parse("3").unwrap(), Price(3_000_000));
        assert_eq!(Price::parse("22.50").unwrap(), Price(22_500_000));
        assert_eq!(Price::parse("0.000001").unwrap(), Price(1));
        assert!(matches!(
            Price::parse("0.0000001"),
            Err(DecimalError::TooPrecise(_))
        ));
        assert!(Price::parse("-1").is_err());
        assert!(Price::parse("abc").is_err());
        assert!(Price::parse(".").is_err());
        assert!(Price::parse("1e3").is_err());
        assert!(Price::parse("1000001").is_err());
        assert_eq!(Fraction::parse("0.22").unwrap(), Fraction(220_000));
        assert!(Fraction::parse("1.5").is_err());
    }

    #[test]
    fn toml_floats_read_without_float_error() {
        #[derive(Deserialize)]
        struct P {
            a: Price,
            b: Price,
            c: Price,
            d: Price,
            e: Fraction,
        }
        let p: P = toml::from_str("a = 0.075\nb = 0.1\nc = 3\nd = \"0.0375\"\ne = 0.22").unwrap();
        assert_eq!(p.a, Price(75_000));
        // 0.1 is not representable as a double; read through its text it is exact.
        assert_eq!(p.b, Price(100_000));
        assert_eq!(p.c, Price(3_000_000));
        assert_eq!(p.d, Price(37_500));
        assert_eq!(p.e, Fraction(220_000));
        assert!(toml::from_str::<P>("a = 0.0000001\nb=1\nc=1\nd=1\ne=0").is_err());
        assert!(toml::from_str::<P>("a = -1.0\nb=1\nc=1\nd=1\ne=0").is_err());
    }

    #[test]
    fn one_token_costs_exact_nanos() {
        let full = MICRO;
        // 0.075 $/M × 1 token = 0.000000075 $ = 75 nano-USD.
        assert_eq!(cost_nanos(1, Price(75_000), full, full), Some(75));
        // 0.005 $/M × 1 token = 5 nano-USD.
        assert_eq!(cost_nanos(1, Price(5_000), full, full), Some(5));
        // 0.0375 $/M × 1 token = 37.5 nano-USD → 38 (half up); × 2 tokens = 75 exactly.
        assert_eq!(cost_nanos(1, Price(37_500), full, full), Some(38));
        assert_eq!(cost_nanos(2, Price(37_500), full, full), Some(75));
        // Batch 50 %: 3 $/M × 1 000 000 tokens × 0.5 = 1.5 $.
        assert_eq!(
            cost_nanos(1_000_000, Price(3_000_000), 500_000, full),
            Some(1_500_000_000)
        );
        // Overflow is reported, not wrapped.
        assert_eq!(cost_nanos(u64::MAX, Price(u64::MAX), full, full), None);
    }

    #[test]
    fn formats_prices() {
        assert_eq!(Price(75_000).to_string(), "0.075");
        assert_eq!(Price(3_000_000).to_string(), "3.0");
    }
}
