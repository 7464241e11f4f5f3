//! An alert as it leaves the engine: for notifiers, the gRPC stream and logs.

use std::collections::BTreeMap;
use std::hash::{DefaultHasher, Hash, Hasher};

use serde::{Serialize, Serializer};

use super::rule::{Metric, Op, Scope};

/// Firing or resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertState {
    /// The condition holds.
    Firing,
    /// The condition stopped holding (window rules only).
    Resolved,
}

impl AlertState {
    /// `firing` or `resolved`.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Firing => "firing",
            AlertState::Resolved => "resolved",
        }
    }
}

macro_rules! serialize_as_str {
    ($($t:ty),*) => {$(
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }
    )*};
}
serialize_as_str!(Scope, Metric, Op);

/// A budget threshold reached by a key in a period (built by the budget stage), as
/// [`super::AlertEngine::budget_alert`] delivers it.
#[derive(Debug, Clone, Copy)]
pub struct BudgetAlert<'a> {
    /// The budget's name.
    pub budget: &'a str,
    /// (key attribute, value) pairs.
    pub key: &'a [(String, std::sync::Arc<str>)],
    /// Start of the period, RFC 3339 UTC.
    pub period_start: &'a str,
    /// The `warn_at` fraction as written, or `None` for the limit.
    pub warn_at: Option<&'a str>,
    /// The threshold reached.
    pub threshold: crate::units::NanoUsd,
    /// The limit.
    pub limit: crate::units::NanoUsd,
    /// Spend in the period after the call.
    pub spent: crate::units::NanoUsd,
    /// The call that reached it.
    pub trace_id: &'a [u8],
    /// The call that reached it.
    pub span_id: &'a [u8],
}

/// One alert event. This is also the webhook's JSON body.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Alert {
    /// The rule's name (the `alertname` label).
    pub rule: String,
    /// Firing or resolved.
    pub state: AlertState,
    /// The rule's scope.
    pub scope: Scope,
    /// The rule's metric.
    pub metric: Metric,
    /// The rule's operator.
    pub op: Op,
    /// The rule's severity.
    pub severity: String,
    /// The metric's value (USD for cost).
    pub value: f64,
    /// The value as text (exact decimal for cost).
    pub value_text: String,
    /// The rule's threshold.
    pub threshold: f64,
    /// Labels: `alertname`, `severity`, `service`, group keys (sanitised), `task_id` for task
    /// and span rules, and the rule's extra labels.
    pub labels: BTreeMap<String, String>,
    /// Annotations: `summary`, `description`, `trace_url` (when configured), extras.
    pub annotations: BTreeMap<String, String>,
    /// The task the alert is about (task and span rules).
    pub task_id: Option<String>,
    /// The trace of the span that fired it, lowercase hex.
    pub trace_id: Option<String>,
    /// The span that fired it, lowercase hex.
    pub span_id: Option<String>,
    /// When the alert started firing, milliseconds since the epoch.
    pub starts_at_unix_ms: u64,
    /// When this event happened (fired or resolved), milliseconds since the epoch.
    pub at_unix_ms: u64,
    /// The link to the trace, when a `trace_url` template is configured.
    pub generator_url: Option<String>,
}

impl Alert {
    /// The `summary` annotation.
    pub fn summary(&self) -> &str {
        self.annotations.get("summary").map_or("", String::as_str)
    }

    /// A stable identity of the alert (rule and labels), as Alertmanager deduplicates it.
    pub fn fingerprint(&self) -> u64 {
        let mut h = DefaultHasher::new();
        self.labels.hash(&mut h);
        h.finish()
    }
}
