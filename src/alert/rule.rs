//! Rules compiled from config: scope, metric, operator, filters; and how a metric is read from
//! a span, a task or a window.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use crate::task::SpanInput;
use crate::wire::AttrValue;

pub(crate) use super::measure::{Measures, Value};
pub use super::measure::{Metric, Op, Scope};
use super::window::WindowState;
use super::{AlertsError, RuleConfig};

/// One compiled rule. Shared (`Arc`) across reloads while its config is unchanged, so window
/// state survives.
#[derive(Debug)]
pub(crate) struct Rule {
    pub(crate) cfg: RuleConfig,
    pub(crate) name: Arc<str>,
    pub(crate) severity: Arc<str>,
    pub(crate) scope: Scope,
    pub(crate) metric: Metric,
    pub(crate) op: Op,
    threshold_nano: i64,
    pub(crate) id: u64,
    filters: Vec<(String, Match)>,
    pub(crate) group_by: Vec<String>,
    pub(crate) window: Option<Mutex<WindowState>>,
}

/// One `where` value a span attribute must equal (shared with `[[budgets]]`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Match {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
}

/// Compiles a `where` table (attribute = string, number or boolean); errors name the key.
pub(crate) fn compile_where(
    where_: &std::collections::BTreeMap<String, toml::Value>,
) -> Result<Vec<(String, Match)>, Vec<String>> {
    let mut filters = Vec::new();
    let mut errors = Vec::new();
    for (k, v) in where_ {
        let m = match v {
            toml::Value::String(s) => Match::Str(s.clone()),
            toml::Value::Integer(i) => Match::Int(*i),
            toml::Value::Float(f) => Match::Float(*f),
            toml::Value::Boolean(b) => Match::Bool(*b),
            other => {
                errors.push(format!(
                    "where.{k}: expected a string, number or boolean, got {}",
                    other.type_str()
                ));
                continue;
            }
        };
        filters.push((k.clone(), m));
    }
    if errors.is_empty() {
        Ok(filters)
    } else {
        Err(errors)
    }
}

impl Match {
    /// True when `v` equals the value.
    pub(crate) fn matches(&self, v: &AttrValue<'_>) -> bool {
        match self {
            Match::Str(s) => match v {
                AttrValue::Str(x) => x == s,
                AttrValue::Int(i) => s.parse::<i64>().is_ok_and(|p| p == *i),
                AttrValue::Bool(b) => s.parse::<bool>().is_ok_and(|p| p == *b),
                _ => false,
            },
            Match::Int(i) => v.as_i64() == Some(*i),
            Match::Float(f) => v.as_f64() == Some(*f),
            Match::Bool(b) => v.as_bool() == Some(*b),
        }
    }
}

impl Rule {
    /// Compiles `[[alerts.rules]]` entry number `index` (0-based; errors name it).
    pub(crate) fn compile(index: usize, cfg: &RuleConfig) -> Result<Rule, Vec<AlertsError>> {
        let mut errors = Vec::new();
        let err = |key: &'static str, reason: String| AlertsError::Rule {
            index,
            key: Some(key),
            rule: cfg.name.clone(),
            reason,
        };
        if cfg.name.trim().is_empty() {
            errors.push(err("name", "name must not be empty".into()));
        }
        let scope = match cfg.scope.as_str() {
            "span" => Some(Scope::Span),
            "task" => Some(Scope::Task),
            "window" => Some(Scope::Window),
            other => {
                errors.push(err(
                    "scope",
                    format!("unknown scope {other:?} (use span, task or window)"),
                ));
                None
            }
        };
        let metric = Metric::parse(&cfg.metric);
        if metric.is_none() {
            let known: Vec<_> = Metric::ALL.iter().map(|(n, _)| *n).collect();
            errors.push(err(
                "metric",
                format!(
                    "unknown metric {:?} (known: {})",
                    cfg.metric,
                    known.join(", ")
                ),
            ));
        }
        if let (Some(m), Some(s)) = (metric, scope) {
            if !m.valid_in(s) {
                errors.push(err(
                    "metric",
                    format!(
                        "metric {} is not valid for scope {}",
                        m.as_str(),
                        s.as_str()
                    ),
                ));
            }
        }
        let op = Op::parse(&cfg.op);
        if op.is_none() {
            errors.push(err(
                "op",
                format!("unknown operator {:?} (use >, >=, <, <=, == or !=)", cfg.op),
            ));
        }
        if !cfg.threshold.is_finite() {
            errors.push(err("threshold", "threshold must be a finite number".into()));
        }
        let window = match (&cfg.window, scope) {
            (Some(w), Some(Scope::Window)) => match crate::config::duration::parse(w) {
                Ok(d) if d >= Duration::from_secs(1) => Some(d),
                Ok(_) => {
                    errors.push(err("window", format!("window {w:?} must be at least 1s")));
                    None
                }
                Err(e) => {
                    errors.push(err("window", format!("`window`: {e}")));
                    None
                }
            },
            (None, Some(Scope::Window)) => {
                errors.push(err(
                    "scope",
                    "scope window needs `window` (e.g. \"15m\")".into(),
                ));
                None
            }
            (Some(_), Some(_)) => {
                errors.push(err(
                    "window",
                    "`window` only applies to scope window".into(),
                ));
                None
            }
            _ => None,
        };
        let for_ = match &cfg.for_ {
            Some(f) => match crate::config::duration::parse(f) {
                Ok(d) if scope == Some(Scope::Window) => d,
                Ok(_) => {
                    errors.push(err("for", "`for` only applies to scope window".into()));
                    Duration::ZERO
                }
                Err(e) => {
                    errors.push(err("for", format!("`for`: {e}")));
                    Duration::ZERO
                }
            },
            None => Duration::ZERO,
        };
        if !cfg.group_by.is_empty() && scope != Some(Scope::Window) {
            errors.push(err(
                "group_by",
                "`group_by` only applies to scope window".into(),
            ));
        }
        let filters = compile_where(&cfg.where_).unwrap_or_else(|e| {
            errors.extend(e.into_iter().map(|m| err("where", m)));
            Vec::new()
        });
        for k in cfg.labels.keys().chain(cfg.group_by.iter()) {
            if sanitize_label(k).is_empty() {
                errors.push(err("labels", format!("label name {k:?} is empty")));
            }
        }
        let (Some(scope), Some(metric), Some(op), true) = (scope, metric, op, errors.is_empty())
        else {
            return Err(errors);
        };
        // The rule's fire-once marker in the state store outlives the process (a disk store),
        // so it must not depend on std's hasher, which may change between Rust releases.
        let id = {
            use sha2::Digest;
            let digest = sha2::Sha256::digest(cfg.name.as_bytes());
            let mut first = [0u8; 8];
            first.copy_from_slice(&digest[..8]);
            u64::from_be_bytes(first)
        };
        Ok(Rule {
            name: Arc::from(cfg.name.as_str()),
            severity: Arc::from(cfg.severity.as_str()),
            scope,
            metric,
            op,
            threshold_nano: (cfg.threshold * 1e9).round() as i64,
            id,
            filters,
            group_by: cfg.group_by.clone(),
            window: window.map(|w| Mutex::new(WindowState::new(w, for_, metric.needs_histogram()))),
            cfg: cfg.clone(),
        })
    }

    /// True when every `where` filter matches the span.
    pub(crate) fn matches(&self, span: &SpanInput<'_>) -> bool {
        self.filters.iter().all(|(k, m)| match lookup(span, k) {
            Some(v) => m.matches(&v),
            None => false,
        })
    }

    /// The metric's value, or `None` when it is undefined or below `min_input_tokens`.
    pub(crate) fn value(&self, m: &Measures) -> Option<Value> {
        if let Some(min) = self.cfg.min_input_tokens {
            if m.input() < min {
                return None;
            }
        }
        let num = |x: u64| Some(Value::Num(x as f64));
        match self.metric {
            Metric::CostUsd => Some(Value::Nano(m.cost_nano_usd)),
            Metric::InputTokens => num(m.input()),
            Metric::OutputTokens => num(m.tokens.output),
            Metric::TotalTokens => num(m.input() + m.tokens.output),
            Metric::CacheReadTokens => num(m.tokens.cache_read),
            Metric::CacheWriteTokens => num(m.tokens.cache_write),
            Metric::CacheHitRatio => m.tokens.cache_hit_ratio().map(Value::Num),
            Metric::LlmCalls => num(m.llm_calls),
            Metric::SpanCount => num(m.spans),
            Metric::ErrorCount => num(m.errors),
            Metric::ErrorRate => {
                (m.spans > 0).then(|| Value::Num(m.errors as f64 / m.spans as f64))
            }
            Metric::DurationMs => m.duration_ms.map(Value::Num),
            Metric::P95DurationMs => m.p95_ms.map(Value::Num),
            Metric::P99DurationMs => m.p99_ms.map(Value::Num),
        }
    }

    /// True when the value satisfies the condition.
    pub(crate) fn holds(&self, v: Value) -> bool {
        match v {
            Value::Nano(n) => self.op.holds(n, self.threshold_nano),
            Value::Num(x) => self.op.holds(x, self.cfg.threshold),
        }
    }

    /// Appends the span's group key to `out` as one string (see [`split_group_key`]); allocates
    /// nothing for string-valued attributes.
    pub(crate) fn write_group_key(&self, span: &SpanInput<'_>, out: &mut String) {
        for k in &self.group_by {
            match lookup(span, k) {
                Some(AttrValue::Str(s)) => push_part(out, s),
                Some(v) => push_part(out, &render(&v)),
                None => push_part(out, ""),
            }
        }
    }
}

/// One value of a group key: its length in bytes, `:`, the value (so that any values, separators
/// included, map to distinct keys).
pub(crate) fn push_part(out: &mut String, v: &str) {
    use std::fmt::Write;
    // Writing to a String cannot fail.
    write!(out, "{}:", v.len()).expect("writing to a String");
    out.push_str(v);
}

/// The values of a key written by [`Rule::write_group_key`], in `group_by` order.
pub(crate) fn split_group_key(mut key: &str) -> Vec<String> {
    let mut out = Vec::new();
    while let Some((len, rest)) = key.split_once(':') {
        let n = len.parse::<usize>().unwrap_or(rest.len()).min(rest.len());
        let (value, tail) = rest.split_at_checked(n).unwrap_or((rest, ""));
        out.push(value.to_owned());
        key = tail;
    }
    out
}

/// The attribute a rule references: the pre-extracted map first, then the span's own fields for
/// `service.name` and `agent.task_type`.
fn lookup<'a>(span: &SpanInput<'a>, key: &str) -> Option<AttrValue<'a>> {
    if let Some((_, v)) = span.attributes.iter().rev().find(|(k, _)| *k == key) {
        return Some(*v);
    }
    match key {
        "service.name" if !span.service.is_empty() => Some(AttrValue::Str(span.service)),
        "agent.task_type" if !span.task_type.is_empty() => Some(AttrValue::Str(span.task_type)),
        _ => None,
    }
}

fn render(v: &AttrValue<'_>) -> String {
    match v {
        AttrValue::Str(s) => (*s).to_string(),
        AttrValue::Int(i) => i.to_string(),
        AttrValue::Double(d) => d.to_string(),
        AttrValue::Bool(b) => b.to_string(),
        _ => String::new(),
    }
}

/// Turns an attribute key into a legacy Prometheus label name (`[a-zA-Z_][a-zA-Z0-9_]*`):
/// `service.name` → `service_name`.
pub(crate) fn sanitize_label(key: &str) -> String {
    let mut out: String = key
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

/// The compiled rule set (swapped whole on reload).
#[derive(Debug, Default)]
pub struct AlertRules {
    pub(crate) rules: Vec<Arc<Rule>>,
    keys: Vec<String>,
}

impl AlertRules {
    pub(crate) fn compile(
        cfgs: &[RuleConfig],
        previous: Option<&AlertRules>,
    ) -> Result<AlertRules, Vec<AlertsError>> {
        let mut errors = Vec::new();
        let mut names = BTreeSet::new();
        let mut rules = Vec::new();
        for (index, cfg) in cfgs.iter().enumerate() {
            if !names.insert(cfg.name.as_str()) {
                errors.push(AlertsError::Rule {
                    index,
                    key: Some("name"),
                    rule: cfg.name.clone(),
                    reason: "duplicate rule name".into(),
                });
                continue;
            }
            if let Some(old) = previous.and_then(|p| p.rules.iter().find(|r| r.cfg == *cfg)) {
                rules.push(old.clone());
                continue;
            }
            match Rule::compile(index, cfg) {
                Ok(r) => rules.push(Arc::new(r)),
                Err(e) => errors.extend(e),
            }
        }
        if errors.is_empty() {
            let mut rules = AlertRules {
                rules,
                keys: Vec::new(),
            };
            rules.keys = rules.referenced_keys();
            Ok(rules)
        } else {
            Err(errors)
        }
    }

    /// The attribute keys rules reference in `where` and `group_by`: the pipeline extracts only
    /// these (span, then resource) into [`SpanInput::attributes`].
    pub fn referenced_keys(&self) -> Vec<String> {
        let mut keys = BTreeSet::new();
        for r in self.rules.iter() {
            keys.extend(r.cfg.where_.keys().cloned());
            keys.extend(r.group_by.iter().cloned());
        }
        keys.into_iter().collect()
    }

    /// Collects the referenced attributes of a span into `out` (span attributes first, then
    /// resource attributes for keys the span lacks), ready for [`SpanInput::attributes`].
    /// Borrowed from the request; allocates only if `out` must grow.
    pub fn extract_attributes<'a, S: crate::wire::SpanAttrs<'a>>(
        &self,
        span: &S,
        out: &mut Vec<(&'a str, AttrValue<'a>)>,
    ) {
        out.clear();
        if self.keys.is_empty() {
            return;
        }
        for key in &self.keys {
            if let Some(entry) = span
                .attribute_entry(key)
                .or_else(|| span.resource_attribute_entry(key))
            {
                out.push(entry);
            }
        }
    }

    /// The rule names, in config order.
    pub fn names(&self) -> Vec<String> {
        self.rules.iter().map(|r| r.name.to_string()).collect()
    }

    /// Number of rules.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// True when there are no rules.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}

#[cfg(test)]
mod tests;
