//! `${env:NAME}` and `${env:NAME:-default}` expansion in string values.
//!
//! Syntax (only inside TOML string values, never in keys or comments):
//! - `${env:NAME}`: the value of `NAME`; an error if it is unset.
//! - `${env:NAME:-default}`: the value of `NAME`, or `default` when it is unset or empty.
//! - `$${`: a literal `${`. Any other `$` is kept as written.

use std::collections::HashMap;

/// Where `${env:NAME}` looks names up. Implemented for the process environment ([`ProcessEnv`])
/// and for maps, so tests never need to set process variables.
pub trait EnvSource {
    /// The value of `name`, or `None` when it is unset.
    fn get(&self, name: &str) -> Option<String>;
}

/// The real process environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessEnv;

impl EnvSource for ProcessEnv {
    fn get(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

impl<K, V, S> EnvSource for HashMap<K, V, S>
where
    K: std::borrow::Borrow<str> + std::hash::Hash + Eq,
    V: AsRef<str>,
    S: std::hash::BuildHasher,
{
    fn get(&self, name: &str) -> Option<String> {
        HashMap::get(self, name).map(|v| v.as_ref().to_owned())
    }
}

/// Why a string could not be expanded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExpandError {
    /// `${env:NAME}` without a default, and `NAME` is unset.
    #[error("environment variable `{0}` is not set (use `${{env:{0}:-default}}` for a default)")]
    Missing(String),
    /// `${` without a closing `}`, or a reference that is not `env:NAME`.
    #[error("bad reference `{0}`: expected `${{env:NAME}}` or `${{env:NAME:-default}}` (write `$${{` for a literal `${{`)")]
    Syntax(String),
}

/// Expands every reference in `input`. Returns `Ok(None)` when `input` has nothing to expand (the
/// common case, so callers can keep the borrowed string), and every error found otherwise.
pub fn expand(input: &str, env: &dyn EnvSource) -> Result<Option<String>, Vec<ExpandError>> {
    if !input.contains("${") {
        return Ok(None);
    }
    let mut out = String::with_capacity(input.len());
    let mut errors = Vec::new();
    let mut rest = input;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let tail = &rest[pos..];
        if let Some(after) = tail.strip_prefix("$${") {
            out.push_str("${");
            rest = after;
        } else if let Some(body_start) = tail.strip_prefix("${") {
            let Some(end) = body_start.find('}') else {
                errors.push(ExpandError::Syntax(tail.to_owned()));
                rest = "";
                break;
            };
            let body = &body_start[..end];
            match resolve(body, env) {
                Ok(value) => out.push_str(&value),
                Err(e) => errors.push(e),
            }
            rest = &body_start[end + 1..];
        } else {
            out.push('$');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    if errors.is_empty() {
        Ok(Some(out))
    } else {
        Err(errors)
    }
}

/// Resolves the inside of one `${…}`.
fn resolve(body: &str, env: &dyn EnvSource) -> Result<String, ExpandError> {
    let syntax = || ExpandError::Syntax(format!("${{{body}}}"));
    let spec = body.strip_prefix("env:").ok_or_else(syntax)?;
    let (name, default) = match spec.split_once(":-") {
        Some((name, default)) => (name, Some(default)),
        None => (spec, None),
    };
    let valid_name = !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid_name {
        return Err(syntax());
    }
    match (env.get(name), default) {
        (Some(value), Some(default)) if value.is_empty() => Ok(default.to_owned()),
        (Some(value), _) => Ok(value),
        (None, Some(default)) => Ok(default.to_owned()),
        (None, None) => Err(ExpandError::Missing(name.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> HashMap<&'static str, &'static str> {
        HashMap::from([("HOST", "tempo:4317"), ("EMPTY", ""), ("KEY", "sk-1")])
    }

    fn ok(input: &str) -> String {
        expand(input, &env())
            .expect("expands")
            .unwrap_or_else(|| input.to_owned())
    }

    #[test]
    fn plain_strings_are_untouched() {
        assert_eq!(expand("no refs $HOME $ {x}", &env()), Ok(None));
    }

    #[test]
    fn expands_set_variables_anywhere_in_the_string() {
        assert_eq!(ok("http://${env:HOST}/v1"), "http://tempo:4317/v1");
        assert_eq!(ok("${env:KEY}${env:KEY}"), "sk-1sk-1");
    }

    #[test]
    fn defaults_apply_when_unset_or_empty() {
        assert_eq!(ok("${env:NOPE:-fallback}"), "fallback");
        assert_eq!(ok("${env:EMPTY:-fallback}"), "fallback");
        assert_eq!(ok("${env:HOST:-fallback}"), "tempo:4317");
        assert_eq!(ok("${env:NOPE:-}"), "");
        assert_eq!(ok("${env:NOPE:-a:-b}"), "a:-b");
    }

    #[test]
    fn set_but_empty_without_default_is_empty() {
        assert_eq!(ok("x${env:EMPTY}y"), "xy");
    }

    #[test]
    fn double_dollar_brace_is_a_literal() {
        assert_eq!(ok("$${env:HOST}"), "${env:HOST}");
        // `$$${` is a `$` then the escape: a literal `$${`.
        assert_eq!(ok("a$$${env:KEY}"), "a$${env:KEY}");
        assert_eq!(ok("cost $5 ${env:KEY}"), "cost $5 sk-1");
    }

    #[test]
    fn missing_variables_are_all_reported() {
        let errors = expand("${env:A}-${env:HOST}-${env:B}", &env()).unwrap_err();
        assert_eq!(
            errors,
            vec![
                ExpandError::Missing("A".into()),
                ExpandError::Missing("B".into())
            ]
        );
        assert!(errors[0].to_string().contains("`A`"));
    }

    #[test]
    fn malformed_references_are_errors() {
        for bad in [
            "${HOST}",
            "${env:}",
            "${env:1X}",
            "${env:A-B}",
            "x ${env:HOST",
        ] {
            let errors = expand(bad, &env()).unwrap_err();
            assert!(
                matches!(errors[0], ExpandError::Syntax(_)),
                "{bad}: {errors:?}"
            );
        }
    }
}
