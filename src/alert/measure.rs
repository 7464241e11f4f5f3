//! The vocabulary of rules: where a rule looks ([`Scope`]), what it reads ([`Metric`]), how it
//! compares ([`Op`]), and the measures of a span, a task or a window it reads them from.

use crate::task::{SpanInput, TaskTotals};
use crate::units::{NanoUsd, Tokens};

/// Where a rule looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// Each span on its own.
    Span,
    /// A task's running totals; fires once per task.
    Task,
    /// A rolling window over matching spans, per group; fires and resolves.
    Window,
    /// A `[[budgets]]` threshold reached by a key in a period (once per key, period and
    /// threshold; not a rule scope).
    Budget,
}

impl Scope {
    /// The scope as written in the config.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Span => "span",
            Scope::Task => "task",
            Scope::Window => "window",
            Scope::Budget => "budget",
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
    pub(super) const ALL: [(&'static str, Metric); 14] = [
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

    pub(super) fn needs_histogram(self) -> bool {
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
