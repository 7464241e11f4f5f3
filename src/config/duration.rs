//! Durations in the config file are human strings: `"500ms"`, `"1s"`, `"5m"`.
//!
//! Use on a field with `#[serde(deserialize_with = "crate::config::duration::deserialize")]`.

use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// Deserializes a humantime string such as `"1s"` or `"250ms"`; the one duration reader of every
/// config section.
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(d)?;
    parse(&text).map_err(|e| {
        serde::de::Error::custom(format!(
            "invalid duration `{text}`: {e} (examples: \"500ms\", \"1s\", \"5m\")"
        ))
    })
}

/// Parses a humantime string (for values read from inside other strings, e.g. rule windows).
pub fn parse(text: &str) -> Result<Duration, humantime::DurationError> {
    humantime::parse_duration(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct D {
        #[serde(deserialize_with = "deserialize")]
        d: Duration,
    }

    #[test]
    fn parses_human_durations_and_rejects_garbage() {
        let d: D = toml::from_str("d = \"250ms\"").unwrap();
        assert_eq!(d.d, Duration::from_millis(250));
        let err = toml::from_str::<D>("d = \"soon\"").err().unwrap();
        assert!(err.message().contains("invalid duration `soon`"), "{err}");
    }
}
