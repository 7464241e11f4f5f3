//! Prometheus metrics for LLM calls and agent tasks, with bounded label cardinality.
//!
//! Every metric carries the configured labels (default `provider`, `model`, `service`,
//! `task_type`; task metrics drop `provider` and `model`, which a task may mix). Extra labels map
//! span or resource attributes (e.g. `user.id`) and must declare a cap on distinct values; past a
//! cap a value folds into `__other__` and `tollgate_metrics_label_overflow_total{label}` rises.
//! Each group of metrics (calls, tasks) also holds at most `max_series` label sets; past that the
//! whole set folds into `__other__` and `tollgate_metrics_series_overflow_total{group}` rises.
//!
//! `tollgate_llm_cost_usd_total` is a float counter for dashboards: each call adds its exact
//! nano-USD cost converted to USD once, so the float sum can drift in the last digits. Exact
//! totals live in the task roll-ups (`task::`), which add integer nano-USD.
//!
//! The cache-hit ratio is deliberately not a gauge: it is computed in PromQL from
//! `tollgate_llm_tokens_total` as `cache_read / (input_uncached + cache_read + cache_write)`, so it
//! can be summed across replicas and time ranges correctly (see `deploy/prometheus/rules/`).
//!
//! The label set is fixed at startup: [`LlmMetrics::new`] registers in the process registry once;
//! a later call (a config reload) returns the same metrics and warns if `[metrics]` changed.

use crate::units::Tokens;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use parking_lot::Mutex;
use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, Opts, Registry,
};

use super::cardinality::{SeriesCache, ValueCap, OTHER};

mod config;

pub use config::{AttributeLabel, BuiltinLabel, MetricsConfig, MetricsError};

/// `tollgate_llm_cost_usd_total`: USD spent on priced LLM calls (float, for display).
pub const COST: &str = "tollgate_llm_cost_usd_total";
/// `tollgate_llm_tokens_total{kind}`: tokens by kind.
pub const TOKENS: &str = "tollgate_llm_tokens_total";
/// `tollgate_llm_calls_total`: LLM calls seen, priced or not.
pub const CALLS: &str = "tollgate_llm_calls_total";
/// `tollgate_llm_call_duration_seconds`: LLM call duration.
pub const CALL_DURATION: &str = "tollgate_llm_call_duration_seconds";
/// `tollgate_llm_time_to_first_token_seconds`: time to the first output token (streaming calls).
pub const TTFT: &str = "tollgate_llm_time_to_first_token_seconds";
/// `tollgate_llm_output_tokens_per_second`: output tokens over the generation time (after TTFT).
pub const OUTPUT_TPS: &str = "tollgate_llm_output_tokens_per_second";
/// `tollgate_task_cost_usd`: cost of a finished task.
pub const TASK_COST: &str = "tollgate_task_cost_usd";
/// `tollgate_task_llm_calls`: LLM calls of a finished task.
pub const TASK_CALLS: &str = "tollgate_task_llm_calls";
/// `tollgate_metrics_label_overflow_total{label}`: observations whose label value was folded.
pub const LABEL_OVERFLOW: &str = "tollgate_metrics_label_overflow_total";
/// `tollgate_metrics_series_overflow_total{group}`: observations folded by the series cap.
pub const SERIES_OVERFLOW: &str = "tollgate_metrics_series_overflow_total";

/// The values of the `kind` label of [`TOKENS`]. They partition a call's tokens, so
/// `sum without (kind)` is every token processed; subsets such as reasoning tokens (inside
/// `output`) or 1-hour cache writes (inside `cache_write`) are not kinds, because they would be
/// counted twice by such a sum (their price difference is already in the cost).
pub const TOKEN_KINDS: [&str; 4] = ["input_uncached", "cache_read", "cache_write", "output"];

/// Most labels a metric may carry (built-in plus extra); keeps the hot path on the stack.
pub const MAX_LABELS: usize = 12;

const DURATION_BUCKETS: &[f64] = &[
    0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 7.5, 10.0, 15.0, 20.0, 30.0, 45.0, 60.0, 90.0, 120.0,
    180.0, 300.0,
];
const TTFT_BUCKETS: &[f64] = &[
    0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 7.5, 10.0, 20.0, 30.0, 60.0,
];
const TPS_BUCKETS: &[f64] = &[
    1.0, 5.0, 10.0, 20.0, 30.0, 50.0, 75.0, 100.0, 150.0, 200.0, 300.0, 500.0, 1000.0,
];
const TASK_COST_BUCKETS: &[f64] = &[
    0.0001, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0,
];
const TASK_CALLS_BUCKETS: &[f64] = &[
    1.0, 2.0, 3.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0,
];

/// One LLM call, as the pricing stage saw it. Empty strings export as `unknown`.
#[derive(Debug, Clone, Copy, Default)]
pub struct CallObservation<'a> {
    /// Provider (`anthropic`, `openai`, …).
    pub provider: &'a str,
    /// Model name as priced.
    pub model: &'a str,
    /// `service.name` of the emitting resource.
    pub service: &'a str,
    /// The task type of the call's task.
    pub task_type: &'a str,
    /// Values of the `[metrics] extra_labels` attributes, in their config order (see
    /// [`LlmMetrics::extra_attributes`]); `None` or a missing entry exports as `unknown`.
    pub extra: &'a [Option<&'a str>],
    /// Exact cost in nano-USD; `None` when the call could not be priced.
    pub cost_nano_usd: Option<i64>,
    /// Tokens by kind.
    pub tokens: Tokens,
    /// Span duration.
    pub duration: Option<Duration>,
    /// Time to first token, when the span carries it (streaming calls).
    pub time_to_first_token: Option<Duration>,
}

/// One finished task.
#[derive(Debug, Clone, Copy, Default)]
pub struct TaskObservation<'a> {
    /// `service.name` of the task's root.
    pub service: &'a str,
    /// Task type.
    pub task_type: &'a str,
    /// Extra attribute values, as in [`CallObservation::extra`].
    pub extra: &'a [Option<&'a str>],
    /// Exact total cost in nano-USD.
    pub cost_nano_usd: i64,
    /// LLM calls in the task.
    pub llm_calls: u64,
}

/// Where a label's value comes from.
#[derive(Debug, Clone, Copy)]
enum Source {
    Builtin(BuiltinLabel),
    Extra(usize),
}

/// One exported label: its source and its value cap (shared by the call and task groups).
#[derive(Debug)]
struct Label {
    name: String,
    source: Source,
    cap: Arc<ValueCap>,
    overflow: IntCounter,
}

#[derive(Debug)]
struct CallSeries {
    /// Nano-USD (exact); shown in USD by [`UsdCounterVec`].
    cost: IntCounter,
    tokens: [IntCounter; 4],
    calls: IntCounter,
    duration: Histogram,
    ttft: OnceLock<Histogram>,
    tps: OnceLock<Histogram>,
    values: Box<[Box<str>]>,
}

#[derive(Debug)]
struct TaskSeries {
    cost: Histogram,
    calls: Histogram,
}

#[derive(Debug)]
struct Inner {
    config: MetricsConfig,
    call_labels: Vec<Label>,
    task_labels: Vec<Label>,
    others: Vec<&'static str>,
    cost: UsdCounterVec,
    tokens: IntCounterVec,
    calls: IntCounterVec,
    duration: HistogramVec,
    ttft: HistogramVec,
    tps: HistogramVec,
    task_cost: HistogramVec,
    task_calls: HistogramVec,
    call_series: SeriesCache<CallSeries>,
    task_series: SeriesCache<TaskSeries>,
    call_series_overflow: IntCounter,
    task_series_overflow: IntCounter,
}

/// A USD counter summed exactly as integer nano-USD and divided once, at scrape time: adding
/// millions of small float amounts would drift; this cannot (exact up to 2^53 nano-USD, about
/// $9 million, per series).
#[derive(Debug, Clone)]
struct UsdCounterVec(IntCounterVec);

impl prometheus::core::Collector for UsdCounterVec {
    fn desc(&self) -> Vec<&prometheus::core::Desc> {
        self.0.desc()
    }

    fn collect(&self) -> Vec<prometheus::proto::MetricFamily> {
        let mut families = self.0.collect();
        for family in &mut families {
            for m in family.mut_metric() {
                let mut c = m.get_counter().clone();
                c.set_value(c.get_value() / 1e9);
                m.set_counter(c);
            }
        }
        families
    }
}

/// The LLM and task metrics. Cheap to clone; thread-safe.
#[derive(Debug, Clone)]
pub struct LlmMetrics {
    inner: Arc<Inner>,
}

static GLOBAL: Mutex<Option<LlmMetrics>> = Mutex::new(None);

impl LlmMetrics {
    /// The metrics registered in [`super::registry()`]. The first call registers them; later
    /// calls (config reloads) return the same metrics, and if `[metrics]` changed they warn that
    /// the change needs a restart.
    pub fn new(config: &MetricsConfig) -> Result<Self, MetricsError> {
        let mut global = GLOBAL.lock();
        if let Some(existing) = global.as_ref() {
            if existing.inner.config != *config {
                tracing::warn!(
                    "The [metrics] section changed; the new label set applies after a restart."
                );
            }
            return Ok(existing.clone());
        }
        let metrics = Self::with_registry(config, super::registry())?;
        *global = Some(metrics.clone());
        Ok(metrics)
    }

    /// Metrics registered in `registry` (tests and tools use their own registry).
    pub fn with_registry(
        config: &MetricsConfig,
        registry: &Registry,
    ) -> Result<Self, MetricsError> {
        config.validate()?;
        let label_overflow = IntCounterVec::new(
            Opts::new(
                LABEL_OVERFLOW,
                "Observations whose label value was folded into __other__ by the label's cap.",
            ),
            &["label"],
        )?;
        let series_overflow = IntCounterVec::new(
            Opts::new(
                SERIES_OVERFLOW,
                "Observations folded into the __other__ label set by the series cap.",
            ),
            &["group"],
        )?;

        let mut call_labels = Vec::new();
        let mut task_labels = Vec::new();
        let mut caps = Vec::new();
        for builtin in &config.labels {
            let cap = Arc::new(ValueCap::new(config.max_values_per_label));
            caps.push((builtin.name().to_string(), Source::Builtin(*builtin), cap));
        }
        for (i, extra) in config.extra_labels.iter().enumerate() {
            caps.push((
                extra.name.clone(),
                Source::Extra(i),
                Arc::new(ValueCap::new(extra.max_values)),
            ));
        }
        for (name, source, cap) in caps {
            let label = |cap: &Arc<ValueCap>| Label {
                overflow: label_overflow.with_label_values(&[&name]),
                name: name.clone(),
                source,
                cap: cap.clone(),
            };
            if !matches!(
                source,
                Source::Builtin(BuiltinLabel::Provider | BuiltinLabel::Model)
            ) {
                task_labels.push(label(&cap));
            }
            call_labels.push(label(&cap));
        }

        let names = |labels: &[Label]| labels.iter().map(|l| l.name.clone()).collect::<Vec<_>>();
        let call_names = names(&call_labels);
        let task_names = names(&task_labels);
        let call_refs: Vec<&str> = call_names.iter().map(String::as_str).collect();
        let task_refs: Vec<&str> = task_names.iter().map(String::as_str).collect();
        let mut token_refs = call_refs.clone();
        token_refs.push("kind");
        let hist = |name: &str, help: &str, buckets: &[f64], labels: &[&str]| {
            HistogramVec::new(
                HistogramOpts::new(name, help).buckets(buckets.to_vec()),
                labels,
            )
        };

        let inner = Inner {
            cost: UsdCounterVec(IntCounterVec::new(
                Opts::new(
                    COST,
                    "USD spent on priced LLM calls (summed exactly in nano-USD).",
                ),
                &call_refs,
            )?),
            tokens: IntCounterVec::new(
                Opts::new(
                    TOKENS,
                    "LLM tokens by kind: input_uncached, cache_read, cache_write, output.",
                ),
                &token_refs,
            )?,
            calls: IntCounterVec::new(
                Opts::new(CALLS, "LLM calls seen, priced or not."),
                &call_refs,
            )?,
            duration: hist(
                CALL_DURATION,
                "LLM call duration in seconds.",
                DURATION_BUCKETS,
                &call_refs,
            )?,
            ttft: hist(
                TTFT,
                "Time to the first output token in seconds.",
                TTFT_BUCKETS,
                &call_refs,
            )?,
            tps: hist(
                OUTPUT_TPS,
                "Output tokens per second after the first token.",
                TPS_BUCKETS,
                &call_refs,
            )?,
            task_cost: hist(
                TASK_COST,
                "Cost of a finished task in USD.",
                TASK_COST_BUCKETS,
                &task_refs,
            )?,
            task_calls: hist(
                TASK_CALLS,
                "LLM calls of a finished task.",
                TASK_CALLS_BUCKETS,
                &task_refs,
            )?,
            call_series_overflow: series_overflow.with_label_values(&["llm_call"]),
            task_series_overflow: series_overflow.with_label_values(&["task"]),
            call_series: SeriesCache::new(config.max_series),
            task_series: SeriesCache::new(config.max_series),
            others: vec![OTHER; call_labels.len()],
            config: config.clone(),
            call_labels,
            task_labels,
        };
        registry.register(Box::new(inner.cost.clone()))?;
        registry.register(Box::new(inner.tokens.clone()))?;
        registry.register(Box::new(inner.calls.clone()))?;
        registry.register(Box::new(inner.duration.clone()))?;
        registry.register(Box::new(inner.ttft.clone()))?;
        registry.register(Box::new(inner.tps.clone()))?;
        registry.register(Box::new(inner.task_cost.clone()))?;
        registry.register(Box::new(inner.task_calls.clone()))?;
        registry.register(Box::new(label_overflow))?;
        registry.register(Box::new(series_overflow))?;
        Ok(Self {
            inner: Arc::new(inner),
        })
    }

    /// The attribute keys whose values [`CallObservation::extra`] and
    /// [`TaskObservation::extra`] carry, in order.
    pub fn extra_attributes(&self) -> impl Iterator<Item = &str> {
        self.inner
            .config
            .extra_labels
            .iter()
            .map(|l| l.attribute.as_str())
    }

    /// Records one LLM call.
    pub fn observe_call(&self, obs: &CallObservation<'_>) {
        let inner = &*self.inner;
        let builtin = [obs.provider, obs.model, obs.service, obs.task_type];
        let mut values = [""; MAX_LABELS];
        let n = resolve(&inner.call_labels, &builtin, obs.extra, &mut values);
        let series = inner
            .call_series
            .get(&values[..n], &inner.others[..n], |v| {
                inner.make_call_series(v)
            });
        if series.folded {
            inner.call_series_overflow.inc();
        }
        let s = &*series.handles;
        s.calls.inc();
        if let Some(nano) = obs.cost_nano_usd.filter(|n| *n > 0) {
            s.cost.inc_by(nano.unsigned_abs());
        }
        for (counter, n) in s.tokens.iter().zip(obs.tokens.by_kind()) {
            if n > 0 {
                counter.inc_by(n);
            }
        }
        if let Some(d) = obs.duration {
            s.duration.observe(d.as_secs_f64());
        }
        if let Some(ttft) = obs.time_to_first_token {
            s.ttft
                .get_or_init(|| inner.ttft.with_label_values(&s.value_refs()))
                .observe(ttft.as_secs_f64());
            let generating = obs
                .duration
                .and_then(|d| d.checked_sub(ttft))
                .filter(|g| !g.is_zero());
            if let (Some(g), true) = (generating, obs.tokens.output > 0) {
                s.tps
                    .get_or_init(|| inner.tps.with_label_values(&s.value_refs()))
                    .observe(obs.tokens.output as f64 / g.as_secs_f64());
            }
        }
    }

    /// Records one finished task.
    pub fn observe_task(&self, obs: &TaskObservation<'_>) {
        let inner = &*self.inner;
        let builtin = ["", "", obs.service, obs.task_type];
        let mut values = [""; MAX_LABELS];
        let n = resolve(&inner.task_labels, &builtin, obs.extra, &mut values);
        let series = inner
            .task_series
            .get(&values[..n], &inner.others[..n], |v| TaskSeries {
                cost: inner.task_cost.with_label_values(v),
                calls: inner.task_calls.with_label_values(v),
            });
        if series.folded {
            inner.task_series_overflow.inc();
        }
        series
            .handles
            .cost
            .observe(obs.cost_nano_usd.max(0) as f64 / 1e9);
        series.handles.calls.observe(obs.llm_calls as f64);
    }
}

impl Inner {
    fn make_call_series(&self, v: &[&str]) -> CallSeries {
        let mut with_kind: Vec<&str> = v.to_vec();
        with_kind.push("");
        let last = with_kind.len() - 1;
        let tokens = TOKEN_KINDS.map(|kind| {
            with_kind[last] = kind;
            self.tokens.with_label_values(&with_kind)
        });
        CallSeries {
            cost: self.cost.0.with_label_values(v),
            tokens,
            calls: self.calls.with_label_values(v),
            duration: self.duration.with_label_values(v),
            ttft: OnceLock::new(),
            tps: OnceLock::new(),
            values: v.iter().map(|s| Box::<str>::from(*s)).collect(),
        }
    }
}

impl CallSeries {
    fn value_refs(&self) -> Vec<&str> {
        self.values.iter().map(|v| &**v).collect()
    }
}

/// Fills `out` with the capped value of each label and returns how many were written.
fn resolve<'a>(
    labels: &[Label],
    builtin: &[&'a str; 4],
    extra: &[Option<&'a str>],
    out: &mut [&'a str; MAX_LABELS],
) -> usize {
    for (slot, label) in out.iter_mut().zip(labels) {
        let raw = match label.source {
            Source::Builtin(b) => builtin[b as usize],
            Source::Extra(i) => extra.get(i).copied().flatten().unwrap_or(""),
        };
        let (value, folded) = label.cap.admit(raw);
        if folded {
            label.overflow.inc();
        }
        *slot = value;
    }
    labels.len()
}

#[cfg(test)]
mod tests;
