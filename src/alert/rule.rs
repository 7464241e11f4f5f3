//! Rules compiled from config: scope, metric, operator, filters; and how a metric is read from
//! a span, a task or a window.

use std::collections::BTreeSet;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use crate::task::{SpanInput, TaskTotals};
use crate::units::{NanoUsd, Tokens};
use crate::wire::AttrValue;

use super::window::WindowState;
use super::{ConfigError, RuleConfig};

/// Where a rule looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// Each span on its own.
    Span,
    /// A task's running totals; fires once per task.
    Task,
    /// A rolling window over matching spans, per group; fires and resolves.
    Window,
}

impl Scope {
    /// The scope as written in the config.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Span => "span",
            Scope::Task => "task",
            Scope::Window => "window",
        }
    }
}

/// What a rule measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Metric {
    /// Cost in USD (compared exactly, in nano-USD).
    CostUsd,
    /// Input tokens, cache reads and writes included.
    InputTokens,
    /// Output tokens.
    OutputTokens,
    /// Input plus output tokens.
    TotalTokens,
    /// Input tokens read from a cache.
    CacheReadTokens,
    /// Input tokens written to a cache.
    CacheWriteTokens,
    /// Cache reads over all input tokens (undefined without input).
    CacheHitRatio,
    /// Priced LLM calls.
    LlmCalls,
    /// Spans.
    SpanCount,
    /// Spans with error status.
    ErrorCount,
    /// Error spans over all spans.
    ErrorRate,
    /// The span's duration in milliseconds.
    DurationMs,
    /// 95th percentile of span durations in the window.
    P95DurationMs,
    /// 99th percentile of span durations in the window.
    P99DurationMs,
}

impl Metric {
    const ALL: [(&'static str, Metric); 14] = [
        ("cost_usd", Metric::CostUsd),
        ("input_tokens", Metric::InputTokens),
        ("output_tokens", Metric::OutputTokens),
        ("total_tokens", Metric::TotalTokens),
        ("cache_read_tokens", Metric::CacheReadTokens),
        ("cache_write_tokens", Metric::CacheWriteTokens),
        ("cache_hit_ratio", Metric::CacheHitRatio),
        ("llm_calls", Metric::LlmCalls),
        ("span_count", Metric::SpanCount),
        ("error_count", Metric::ErrorCount),
        ("error_rate", Metric::ErrorRate),
        ("duration_ms", Metric::DurationMs),
        ("p95_duration_ms", Metric::P95DurationMs),
        ("p99_duration_ms", Metric::P99DurationMs),
    ];

    /// Parses a metric name.
    pub fn parse(s: &str) -> Option<Metric> {
        Self::ALL.iter().find(|(n, _)| *n == s).map(|(_, m)| *m)
    }

    /// The metric's name.
    pub fn as_str(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, m)| *m == self)
            .map_or("unknown", |(n, _)| n)
    }

    /// True when the metric can be judged in `scope`.
    pub fn valid_in(self, scope: Scope) -> bool {
        match self {
            Metric::DurationMs => scope == Scope::Span,
            Metric::ErrorRate => scope != Scope::Span,
            Metric::P95DurationMs | Metric::P99DurationMs => scope == Scope::Window,
            _ => true,
        }
    }

    fn needs_histogram(self) -> bool {
        matches!(self, Metric::P95DurationMs | Metric::P99DurationMs)
    }
}

/// A comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `==`
    Eq,
    /// `!=`
    Ne,
}

impl Op {
    /// Parses an operator.
    pub fn parse(s: &str) -> Option<Op> {
        Some(match s.trim() {
            ">" => Op::Gt,
            ">=" => Op::Ge,
            "<" => Op::Lt,
            "<=" => Op::Le,
            "==" => Op::Eq,
            "!=" => Op::Ne,
            _ => return None,
        })
    }

    /// The operator as written.
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Eq => "==",
            Op::Ne => "!=",
        }
    }

    /// Compares `a op b`.
    pub fn holds<T: PartialOrd>(self, a: T, b: T) -> bool {
        match self {
            Op::Gt => a > b,
            Op::Ge => a >= b,
            Op::Lt => a < b,
            Op::Le => a <= b,
            Op::Eq => a == b,
            Op::Ne => a != b,
        }
    }
}

/// The quantities a metric is read from; the same for a span, a task and a window.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Measures {
    pub(crate) cost_nano_usd: i64,
    pub(crate) tokens: Tokens,
    pub(crate) llm_calls: u64,
    pub(crate) spans: u64,
    pub(crate) errors: u64,
    pub(crate) duration_ms: Option<f64>,
    pub(crate) p95_ms: Option<f64>,
    pub(crate) p99_ms: Option<f64>,
}

impl Measures {
    pub(crate) fn of_span(span: &SpanInput<'_>) -> Self {
        let llm = span.llm.unwrap_or_default();
        Measures {
            cost_nano_usd: llm.cost_nano_usd,
            tokens: llm.tokens,
            llm_calls: u64::from(span.llm.is_some()),
            spans: 1,
            errors: u64::from(span.error),
            duration_ms: Some(span.duration_ms()),
            p95_ms: None,
            p99_ms: None,
        }
    }

    pub(crate) fn of_task(t: &TaskTotals) -> Self {
        Measures {
            cost_nano_usd: t.cost_nano_usd,
            tokens: t.tokens,
            llm_calls: t.llm_calls,
            spans: t.spans,
            errors: t.errors,
            ..Measures::default()
        }
    }

    pub(crate) fn input(&self) -> u64 {
        self.tokens.input()
    }
}

/// A metric's value: exact nano-USD for cost, a number otherwise.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Value {
    Nano(i64),
    Num(f64),
}

impl Value {
    pub(crate) fn as_f64(self) -> f64 {
        match self {
            Value::Nano(n) => NanoUsd(n).as_usd_f64(),
            Value::Num(x) => x,
        }
    }

    pub(crate) fn text(self) -> String {
        match self {
            Value::Nano(n) => NanoUsd(n).to_string(),
            Value::Num(x) if x.fract() == 0.0 && x.abs() < 1e15 => format!("{x:.0}"),
            Value::Num(x) => format!("{x:.4}")
                .trim_end_matches('0')
                .trim_end_matches('.')
                .to_string(),
        }
    }
}

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

#[derive(Debug, Clone, PartialEq)]
enum Match {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
}

impl Match {
    fn matches(&self, v: &AttrValue<'_>) -> bool {
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
    pub(crate) fn compile(cfg: &RuleConfig) -> Result<Rule, Vec<ConfigError>> {
        let mut errors = Vec::new();
        let err = |reason: String| ConfigError::Rule {
            rule: cfg.name.clone(),
            reason,
        };
        if cfg.name.trim().is_empty() {
            errors.push(err("name must not be empty".into()));
        }
        let scope = match cfg.scope.as_str() {
            "span" => Some(Scope::Span),
            "task" => Some(Scope::Task),
            "window" => Some(Scope::Window),
            other => {
                errors.push(err(format!(
                    "unknown scope {other:?} (use span, task or window)"
                )));
                None
            }
        };
        let metric = Metric::parse(&cfg.metric);
        if metric.is_none() {
            let known: Vec<_> = Metric::ALL.iter().map(|(n, _)| *n).collect();
            errors.push(err(format!(
                "unknown metric {:?} (known: {})",
                cfg.metric,
                known.join(", ")
            )));
        }
        if let (Some(m), Some(s)) = (metric, scope) {
            if !m.valid_in(s) {
                errors.push(err(format!(
                    "metric {} is not valid for scope {}",
                    m.as_str(),
                    s.as_str()
                )));
            }
        }
        let op = Op::parse(&cfg.op);
        if op.is_none() {
            errors.push(err(format!(
                "unknown operator {:?} (use >, >=, <, <=, == or !=)",
                cfg.op
            )));
        }
        if !cfg.threshold.is_finite() {
            errors.push(err("threshold must be a finite number".into()));
        }
        let window = match (&cfg.window, scope) {
            (Some(w), Some(Scope::Window)) => match crate::config::duration::parse(w) {
                Ok(d) if d >= Duration::from_secs(1) => Some(d),
                Ok(_) => {
                    errors.push(err(format!("window {w:?} must be at least 1s")));
                    None
                }
                Err(e) => {
                    errors.push(err(format!("bad window {w:?}: {e}")));
                    None
                }
            },
            (None, Some(Scope::Window)) => {
                errors.push(err("scope window needs `window` (e.g. \"15m\")".into()));
                None
            }
            (Some(_), Some(_)) => {
                errors.push(err("`window` only applies to scope window".into()));
                None
            }
            _ => None,
        };
        let for_ = match &cfg.for_ {
            Some(f) => match crate::config::duration::parse(f) {
                Ok(d) if scope == Some(Scope::Window) => d,
                Ok(_) => {
                    errors.push(err("`for` only applies to scope window".into()));
                    Duration::ZERO
                }
                Err(e) => {
                    errors.push(err(format!("bad duration for `for` {f:?}: {e}")));
                    Duration::ZERO
                }
            },
            None => Duration::ZERO,
        };
        if !cfg.group_by.is_empty() && scope != Some(Scope::Window) {
            errors.push(err("`group_by` only applies to scope window".into()));
        }
        let mut filters = Vec::new();
        for (k, v) in &cfg.where_ {
            let m = match v {
                toml::Value::String(s) => Match::Str(s.clone()),
                toml::Value::Integer(i) => Match::Int(*i),
                toml::Value::Float(f) => Match::Float(*f),
                toml::Value::Boolean(b) => Match::Bool(*b),
                other => {
                    errors.push(err(format!(
                        "where.{k}: expected a string, number or boolean, got {}",
                        other.type_str()
                    )));
                    continue;
                }
            };
            filters.push((k.clone(), m));
        }
        for k in cfg.labels.keys().chain(cfg.group_by.iter()) {
            if sanitize_label(k).is_empty() {
                errors.push(err(format!("label name {k:?} is empty")));
            }
        }
        let (Some(scope), Some(metric), Some(op), true) = (scope, metric, op, errors.is_empty())
        else {
            return Err(errors);
        };
        let mut h = DefaultHasher::new();
        cfg.name.hash(&mut h);
        Ok(Rule {
            name: Arc::from(cfg.name.as_str()),
            severity: Arc::from(cfg.severity.as_str()),
            scope,
            metric,
            op,
            threshold_nano: (cfg.threshold * 1e9).round() as i64,
            id: h.finish(),
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
fn push_part(out: &mut String, v: &str) {
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
pub fn sanitize_label(key: &str) -> String {
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
    ) -> Result<AlertRules, Vec<ConfigError>> {
        let mut errors = Vec::new();
        let mut names = BTreeSet::new();
        let mut rules = Vec::new();
        for cfg in cfgs {
            if !names.insert(cfg.name.as_str()) {
                errors.push(ConfigError::Rule {
                    rule: cfg.name.clone(),
                    reason: "duplicate rule name".into(),
                });
                continue;
            }
            if let Some(old) = previous.and_then(|p| p.rules.iter().find(|r| r.cfg == *cfg)) {
                rules.push(old.clone());
                continue;
            }
            match Rule::compile(cfg) {
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
mod tests {
    use super::*;

    fn rule(toml_src: &str) -> Result<Rule, Vec<ConfigError>> {
        let cfg: RuleConfig = toml::from_str(toml_src).unwrap();
        Rule::compile(&cfg)
    }

    fn reasons(r: Result<Rule, Vec<ConfigError>>) -> String {
        r.err()
            .unwrap()
            .iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join("; ")
    }

    #[test]
    fn config_errors_name_the_rule() {
        let e = reasons(rule(
            "name='r1'\nscope='task'\nmetric='bogus'\nop='>'\nthreshold=1.0",
        ));
        assert!(e.contains("\"r1\"") && e.contains("unknown metric"), "{e}");
        let e = reasons(rule(
            "name='r2'\nscope='task'\nmetric='cost_usd'\nop='=>'\nthreshold=1.0",
        ));
        assert!(e.contains("\"r2\"") && e.contains("operator"), "{e}");
        let e = reasons(rule(
            "name='r3'\nscope='window'\nwindow='fifteen'\nmetric='cost_usd'\nop='>'\nthreshold=1.0",
        ));
        assert!(e.contains("\"r3\"") && e.contains("bad window"), "{e}");
        let e = reasons(rule(
            "name='r4'\nscope='task'\nmetric='duration_ms'\nop='>'\nthreshold=1.0",
        ));
        assert!(e.contains("not valid for scope task"), "{e}");
        let e = reasons(rule(
            "name='r5'\nscope='span'\nmetric='p95_duration_ms'\nop='>'\nthreshold=1.0",
        ));
        assert!(e.contains("not valid for scope span"), "{e}");
        let e = reasons(rule(
            "name='r6'\nscope='forever'\nmetric='cost_usd'\nop='>'\nthreshold=1.0",
        ));
        assert!(e.contains("unknown scope"), "{e}");
        let e = reasons(rule(
            "name='r7'\nscope='window'\nwindow='1m'\nfor='a while'\nmetric='cost_usd'\nop='>'\nthreshold=1.0",
        ));
        assert!(e.contains("`for`"), "{e}");
    }

    #[test]
    fn group_keys_split_back_into_their_values() {
        for values in [
            vec![],
            vec![""],
            vec!["svc", ""],
            vec!["a:1", "2:b", "é:ü", "12"],
            vec!["", "", "x"],
        ] {
            let mut key = String::new();
            for v in &values {
                super::push_part(&mut key, v);
            }
            assert_eq!(super::split_group_key(&key), values, "{key}");
        }
        // Distinct values never share a key.
        let mut a = String::new();
        let mut b = String::new();
        for v in ["a:", "b"] {
            super::push_part(&mut a, v);
        }
        for v in ["a", ":b"] {
            super::push_part(&mut b, v);
        }
        assert_ne!(a, b);
    }

    #[test]
    fn referenced_attributes_come_from_the_span_then_the_resource() {
        use crate::otlp::common::v1::{any_value, AnyValue, KeyValue};
        use crate::otlp::resource::v1::Resource;
        use crate::otlp::trace::v1::Span;
        let kv = |k: &str, v: &str| KeyValue {
            key: k.into(),
            value: Some(AnyValue {
                value: Some(any_value::Value::StringValue(v.into())),
            }),
            ..Default::default()
        };
        let cfgs: Vec<RuleConfig> = vec![
            toml::from_str("name='a'\nscope='span'\nmetric='llm_calls'\nop='>'\nthreshold=0.0\nwhere={ env = 'prod' }").unwrap(),
            toml::from_str("name='b'\nscope='window'\nwindow='1m'\ngroup_by=['service.name']\nmetric='llm_calls'\nop='>'\nthreshold=0.0").unwrap(),
        ];
        let rules = AlertRules::compile(&cfgs, None).unwrap();
        let span = Span {
            attributes: vec![kv("env", "prod"), kv("other", "x")],
            ..Default::default()
        };
        let resource = Resource {
            attributes: vec![kv("env", "dev"), kv("service.name", "svc")],
            ..Default::default()
        };
        let view = crate::wire::prost_view::ProstSpan::new(&span, Some(&resource), None);
        let mut out = Vec::new();
        rules.extract_attributes(&view, &mut out);
        assert_eq!(
            out,
            vec![
                ("env", AttrValue::Str("prod")),
                ("service.name", AttrValue::Str("svc"))
            ]
        );
    }

    #[test]
    fn ops_compare() {
        assert!(Op::parse(">").unwrap().holds(2, 1));
        assert!(Op::parse(">=").unwrap().holds(1, 1));
        assert!(Op::parse("<").unwrap().holds(0.4, 0.7));
        assert!(Op::parse("<=").unwrap().holds(0.7, 0.7));
        assert!(Op::parse("==").unwrap().holds(3, 3));
        assert!(Op::parse("!=").unwrap().holds(3, 4));
        assert!(Op::parse("~").is_none());
    }

    #[test]
    fn cost_compares_exactly_in_nano_usd() {
        let r = rule("name='c'\nscope='task'\nmetric='cost_usd'\nop='>'\nthreshold=0.5").unwrap();
        let at = |n| {
            r.holds(
                r.value(&Measures {
                    cost_nano_usd: n,
                    ..Measures::default()
                })
                .unwrap(),
            )
        };
        assert!(!at(500_000_000));
        assert!(at(500_000_001));
        assert_eq!(Value::Nano(600_000_000).text(), "0.6");
    }

    #[test]
    fn where_filters_and_min_input_tokens() {
        let r = rule(
            "name='w'\nscope='span'\nmetric='duration_ms'\nop='>'\nthreshold=1.0\nmin_input_tokens=10\nwhere={ 'gen_ai.provider.name' = 'anthropic', 'retries' = 2 }",
        )
        .unwrap();
        let attrs = [
            ("gen_ai.provider.name", AttrValue::Str("anthropic")),
            ("retries", AttrValue::Int(2)),
        ];
        let mut span = SpanInput {
            attributes: &attrs,
            ..SpanInput::default()
        };
        assert!(r.matches(&span));
        let other = [("gen_ai.provider.name", AttrValue::Str("openai"))];
        span.attributes = &other;
        assert!(!r.matches(&span));
        assert_eq!(r.value(&Measures::default()), None);
        assert_eq!(sanitize_label("service.name"), "service_name");
        assert_eq!(sanitize_label("9x"), "_9x");
    }
}
