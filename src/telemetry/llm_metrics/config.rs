//! `[metrics]`: which labels the LLM and task metrics carry, and how many values they may take.

use serde::Deserialize;

use super::MAX_LABELS;

/// Errors building the LLM metrics.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MetricsError {
    /// A label name is not a valid Prometheus label name, or is reserved.
    #[error("[metrics] label name {0:?} is invalid or reserved")]
    InvalidLabelName(String),
    /// Two labels have the same name.
    #[error("[metrics] label {0:?} is defined twice")]
    DuplicateLabel(String),
    /// A cap is zero or above the hard limit.
    #[error("[metrics] {what} must be between {min} and {max}, got {got}")]
    OutOfRange {
        /// Which setting.
        what: String,
        /// Smallest allowed.
        min: usize,
        /// Largest allowed.
        max: usize,
        /// The configured value.
        got: usize,
    },
    /// More labels than a metric may carry.
    #[error("[metrics] at most {max} labels are allowed, got {got}")]
    TooManyLabels {
        /// The limit.
        max: usize,
        /// How many were configured.
        got: usize,
    },
    /// Registering with the Prometheus registry failed.
    #[error("registering LLM metrics: {0}")]
    Prometheus(#[from] prometheus::Error),
}

/// A label whose value tollgate knows for every LLM call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BuiltinLabel {
    /// The provider (`anthropic`, `openai`, …). Not on task metrics.
    Provider = 0,
    /// The priced model name. Not on task metrics.
    Model = 1,
    /// The emitting resource's `service.name`.
    Service = 2,
    /// The task type.
    TaskType = 3,
}

impl BuiltinLabel {
    /// The Prometheus label name.
    pub fn name(self) -> &'static str {
        match self {
            BuiltinLabel::Provider => "provider",
            BuiltinLabel::Model => "model",
            BuiltinLabel::Service => "service",
            BuiltinLabel::TaskType => "task_type",
        }
    }
}

/// An extra label whose value is read from a span or resource attribute.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttributeLabel {
    /// The Prometheus label name (e.g. `user`).
    pub name: String,
    /// The attribute it is read from (span first, then resource), e.g. `user.id`.
    pub attribute: String,
    /// Distinct values kept; later values fold into `__other__`. Required: attributes such as
    /// `user.id` are unbounded.
    pub max_values: usize,
}

/// `[metrics]`: labels of the LLM and task metrics. Fixed at startup (a reload that changes it
/// logs a warning; the change applies after a restart).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// Built-in labels: any of `provider`, `model`, `service`, `task_type`.
    #[serde(default = "default_labels")]
    pub labels: Vec<BuiltinLabel>,
    /// Distinct values each built-in label may take before new values fold into `__other__`.
    #[serde(default = "default_max_values_per_label")]
    pub max_values_per_label: usize,
    /// Extra labels mapped from attributes, each with its own cap, e.g.
    /// `{ name = "user", attribute = "user.id", max_values = 100 }`.
    #[serde(default)]
    pub extra_labels: Vec<AttributeLabel>,
    /// Label sets per metric group (LLM calls; tasks), the `__other__` overflow set included.
    /// `tollgate_llm_tokens_total` has this many times its 4 kinds.
    #[serde(default = "default_max_series")]
    pub max_series: usize,
}

fn default_labels() -> Vec<BuiltinLabel> {
    vec![
        BuiltinLabel::Provider,
        BuiltinLabel::Model,
        BuiltinLabel::Service,
        BuiltinLabel::TaskType,
    ]
}
fn default_max_values_per_label() -> usize {
    500
}
fn default_max_series() -> usize {
    2000
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            labels: default_labels(),
            max_values_per_label: default_max_values_per_label(),
            extra_labels: Vec::new(),
            max_series: default_max_series(),
        }
    }
}

/// Hard ceilings, so a typo can't make the metrics unbounded.
const MAX_VALUES_CEILING: usize = 100_000;
const MAX_SERIES_CEILING: usize = 1_000_000;
const RESERVED: &[&str] = &[
    "kind", "le", "quantile", "label", "group", "job", "instance",
];

impl MetricsConfig {
    /// Checks names, duplicates and caps; touches nothing.
    pub fn validate(&self) -> Result<(), MetricsError> {
        let count = self.labels.len() + self.extra_labels.len();
        if count > MAX_LABELS {
            return Err(MetricsError::TooManyLabels {
                max: MAX_LABELS,
                got: count,
            });
        }
        range(
            "max_values_per_label",
            self.max_values_per_label,
            1,
            MAX_VALUES_CEILING,
        )?;
        range("max_series", self.max_series, 2, MAX_SERIES_CEILING)?;
        let mut seen: Vec<&str> = Vec::new();
        let names = self.labels.iter().map(|b| b.name());
        for name in names.chain(self.extra_labels.iter().map(|l| l.name.as_str())) {
            if seen.contains(&name) {
                return Err(MetricsError::DuplicateLabel(name.into()));
            }
            seen.push(name);
        }
        for extra in &self.extra_labels {
            if !valid_label_name(&extra.name) || RESERVED.contains(&extra.name.as_str()) {
                return Err(MetricsError::InvalidLabelName(extra.name.clone()));
            }
            range(
                &format!("extra_labels.{}.max_values", extra.name),
                extra.max_values,
                1,
                MAX_VALUES_CEILING,
            )?;
        }
        Ok(())
    }
}

fn range(what: &str, got: usize, min: usize, max: usize) -> Result<(), MetricsError> {
    if (min..=max).contains(&got) {
        Ok(())
    } else {
        Err(MetricsError::OutOfRange {
            what: what.into(),
            min,
            max,
            got,
        })
    }
}

/// `[a-zA-Z_][a-zA-Z0-9_]*`, not starting with `__` (reserved by Prometheus).
fn valid_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    first_ok && !name.starts_with("__") && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}
