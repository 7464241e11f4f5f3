//! Durations in the config file are human strings: `"500ms"`, `"1s"`, `"5m"`.
//!
//! Use on a field with `#[serde(deserialize_with = "crate::config::duration::deserialize")]`, or
//! `crate::config::duration::positive` where zero makes no sense (a timeout, an interval, a
//! time to remember something): zero is then refused at the key's own line.

use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// Why a duration string was refused; each message quotes the value and shows one that works.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DurationError {
    /// `"-5s"`.
    #[error("{0:?}: durations cannot be negative; write e.g. \"30s\"")]
    Negative(String),
    /// `""`.
    #[error("a duration cannot be empty; write e.g. \"30s\"")]
    Empty,
    /// `"30"`.
    #[error("{0:?} has no unit; write e.g. \"{0}s\" or \"{0}ms\"")]
    NoUnit(String),
    /// `"5x"`.
    #[error("{text:?}: unknown unit {unit:?}; use ms, s, m, h or d, e.g. \"30s\"")]
    UnknownUnit {
        /// The whole value.
        text: String,
        /// The unit as written.
        unit: String,
    },
    /// `"0s"` where zero makes no sense.
    #[error("{0:?}: must be more than zero here; write e.g. \"30s\"")]
    Zero(String),
    /// Anything else (`"abc"`, `"1.5.s"`, too large a number).
    #[error(
        "{0:?} is not a duration: write a number and a unit, e.g. \"30s\", \"500ms\" or \"5m\""
    )]
    Invalid(String),
}

/// Deserializes a human duration such as `"1s"` or `"250ms"` (zero allowed); the one duration
/// reader of every config section.
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(d)?;
    parse(&text).map_err(serde::de::Error::custom)
}

/// Like [`deserialize`], but refuses zero: for timeouts, intervals and times to remember.
pub fn positive<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(d)?;
    parse_positive(&text).map_err(serde::de::Error::custom)
}

/// Parses a human duration (for values read from inside other strings, e.g. rule windows).
pub fn parse(text: &str) -> Result<Duration, DurationError> {
    let trimmed = text.trim();
    if trimmed.starts_with('-') {
        return Err(DurationError::Negative(text.to_owned()));
    }
    humantime::parse_duration(trimmed).map_err(|e| match e {
        humantime::DurationError::Empty => DurationError::Empty,
        humantime::DurationError::UnknownUnit { unit, .. } if unit.is_empty() => {
            DurationError::NoUnit(trimmed.to_owned())
        }
        humantime::DurationError::UnknownUnit { unit, .. } => DurationError::UnknownUnit {
            text: text.to_owned(),
            unit,
        },
        _ => DurationError::Invalid(text.to_owned()),
    })
}

/// Like [`parse`], but refuses zero.
pub fn parse_positive(text: &str) -> Result<Duration, DurationError> {
    match parse(text)? {
        d if d.is_zero() => Err(DurationError::Zero(text.to_owned())),
        d => Ok(d),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct D {
        #[serde(deserialize_with = "deserialize")]
        d: Duration,
    }

    #[derive(Deserialize)]
    struct P {
        #[serde(deserialize_with = "positive")]
        #[allow(dead_code)]
        d: Duration,
    }

    fn error(text: &str) -> String {
        parse(text).unwrap_err().to_string()
    }

    #[test]
    fn parses_human_durations() {
        let d: D = toml::from_str("d = \"250ms\"").unwrap();
        assert_eq!(d.d, Duration::from_millis(250));
        assert_eq!(parse("1h 30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse("0s"), Ok(Duration::ZERO));
    }

    #[test]
    fn refusals_say_what_is_wrong_and_show_a_value_that_works() {
        assert_eq!(
            error("-5s"),
            r#""-5s": durations cannot be negative; write e.g. "30s""#
        );
        assert_eq!(
            error("abc"),
            r#""abc" is not a duration: write a number and a unit, e.g. "30s", "500ms" or "5m""#
        );
        assert_eq!(
            error("30"),
            r#""30" has no unit; write e.g. "30s" or "30ms""#
        );
        assert_eq!(
            error("5x"),
            r#""5x": unknown unit "x"; use ms, s, m, h or d, e.g. "30s""#
        );
        assert_eq!(error(""), r#"a duration cannot be empty; write e.g. "30s""#);
        for bad in ["-5s", "abc", "30", "5x", ""] {
            assert!(!error(bad).contains("expected number at"), "{bad}");
        }
    }

    #[test]
    fn positive_refuses_zero() {
        let err = toml::from_str::<P>("d = \"0s\"").err().unwrap();
        assert!(
            err.message()
                .contains(r#""0s": must be more than zero here; write e.g. "30s""#),
            "{err}"
        );
        assert!(toml::from_str::<P>("d = \"1ms\"").is_ok());
        let err = toml::from_str::<D>("d = \"soon\"").err().unwrap();
        assert!(
            err.message().contains(r#""soon" is not a duration"#),
            "{err}"
        );
    }
}
