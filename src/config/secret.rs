//! A string that must never be printed: API keys, tokens, passwords.

use std::fmt;

use serde::{Deserialize, Deserializer};

/// A secret value from the config (usually `${env:VAR}`). `Debug` and `Display` print
/// `**REDACTED**`; read it with [`Secret::expose`] only where it goes on the wire.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself, for building a request header.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// True when the secret is the empty string.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("**REDACTED**")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("**REDACTED**")
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Secret)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_redact() {
        let s = Secret::new("sk-lf-123");
        assert_eq!(format!("{s:?}"), "**REDACTED**");
        assert_eq!(format!("{s}"), "**REDACTED**");
        assert_eq!(s.expose(), "sk-lf-123");
    }
}
