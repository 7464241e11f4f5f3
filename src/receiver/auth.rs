//! Optional bearer-token authentication shared by both receivers.

use std::sync::Arc;

use http::HeaderMap;
use subtle::ConstantTimeEq;

use crate::config::Secret;

/// The accepted tokens; empty means authentication is off.
#[derive(Debug, Clone, Default)]
pub struct BearerAuth {
    tokens: Arc<[Secret]>,
}

impl BearerAuth {
    /// Builds the check from the configured tokens (empty tokens are never accepted).
    pub fn new(tokens: &[Secret]) -> Self {
        Self {
            tokens: tokens.iter().filter(|t| !t.is_empty()).cloned().collect(),
        }
    }

    /// True when requests must carry a token.
    pub fn is_enabled(&self) -> bool {
        !self.tokens.is_empty()
    }

    /// True when the request may pass: auth is off, or its `Authorization: Bearer` token is one of
    /// the configured tokens. Every token is compared in constant time, and all are compared, so
    /// timing reveals neither the token nor which one matched.
    pub fn allows(&self, headers: &HeaderMap) -> bool {
        if !self.is_enabled() {
            return true;
        }
        let Some(presented) = bearer_token(headers) else {
            return false;
        };
        let mut matched = subtle::Choice::from(0);
        for token in self.tokens.iter() {
            matched |= token.expose().as_bytes().ct_eq(presented);
        }
        matched.into()
    }
}

/// The token of an `Authorization: Bearer <token>` header (scheme case-insensitive).
fn bearer_token(headers: &HeaderMap) -> Option<&[u8]> {
    let value = headers.get(http::header::AUTHORIZATION)?.as_bytes();
    let (scheme, rest) = value.split_at_checked(7)?;
    if !scheme.eq_ignore_ascii_case(b"bearer ") {
        return None;
    }
    let token = rest.trim_ascii();
    (!token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(auth: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(a) = auth {
            h.insert(http::header::AUTHORIZATION, a.parse().unwrap());
        }
        h
    }

    #[test]
    fn off_when_no_tokens() {
        let auth = BearerAuth::new(&[]);
        assert!(!auth.is_enabled());
        assert!(auth.allows(&headers(None)));
        // Empty tokens (an unset env var) never turn into "accept anything".
        let auth = BearerAuth::new(&[Secret::new("")]);
        assert!(!auth.is_enabled());
    }

    #[test]
    fn checks_every_token() {
        let auth = BearerAuth::new(&[Secret::new("alpha"), Secret::new("beta")]);
        assert!(auth.allows(&headers(Some("Bearer alpha"))));
        assert!(auth.allows(&headers(Some("bearer beta"))));
        assert!(!auth.allows(&headers(Some("Bearer gamma"))));
        assert!(!auth.allows(&headers(Some("Bearer alph"))));
        assert!(!auth.allows(&headers(Some("Bearer alphaa"))));
        assert!(!auth.allows(&headers(Some("Basic alpha"))));
        assert!(!auth.allows(&headers(Some("Bearer "))));
        assert!(!auth.allows(&headers(None)));
    }
}
