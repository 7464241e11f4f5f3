//! `[alerts]`: rules and notifiers, as users write them.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use crate::config::Secret;

/// `[alerts]`: alert rules and where alerts go.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertsConfig {
    /// `[[alerts.rules]]`: the rules.
    #[serde(default)]
    pub rules: Vec<RuleConfig>,
    /// `[[alerts.notify]]`: where alerts are delivered.
    #[serde(default)]
    pub notify: Vec<NotifyConfig>,
    /// Link to a trace in the user's backend; `{trace_id}`, `{task_id}`, `{span_id}` and
    /// `{rule}` are replaced. Sent as the `trace_url` annotation and as `generatorURL`.
    #[serde(default)]
    pub trace_url: Option<String>,
}

/// One `[[alerts.rules]]` entry. Metric, operator and scope are checked when the rules are
/// compiled, so errors can name the rule.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    /// Unique rule name; the `alertname` label.
    pub name: String,
    /// `span` (each span), `task` (a task's running totals; fires once per task) or `window`
    /// (a rolling window over matching spans, per group; fires and resolves).
    pub scope: String,
    /// `cost_usd`, `input_tokens` (cache included), `output_tokens`, `total_tokens`,
    /// `cache_read_tokens`, `cache_write_tokens`, `cache_hit_ratio`, `llm_calls`, `span_count`,
    /// `error_count`, `error_rate` (task, window), `duration_ms` (span),
    /// `p95_duration_ms`/`p99_duration_ms` (window).
    pub metric: String,
    /// `>`, `>=`, `<`, `<=`, `==` or `!=`.
    pub op: String,
    /// The value the metric is compared with (USD for `cost_usd`, 0..1 for ratios).
    pub threshold: f64,
    /// Window length for `scope = "window"` (e.g. `"15m"`).
    #[serde(default)]
    pub window: Option<String>,
    /// Attributes (span, then resource) that split a window into groups; each becomes a label.
    #[serde(default)]
    pub group_by: Vec<String>,
    /// Only spans whose attributes (span, then resource) equal these values count.
    #[serde(default, rename = "where")]
    pub where_: BTreeMap<String, toml::Value>,
    /// The rule is not judged until this many input tokens (cache included) were seen in the
    /// span, task or window.
    #[serde(default)]
    pub min_input_tokens: Option<u64>,
    /// The `severity` label.
    #[serde(default = "default_severity")]
    pub severity: String,
    /// Window rules only: the condition must hold this long before the alert fires.
    #[serde(default, rename = "for")]
    pub for_: Option<String>,
    /// Extra labels sent with the alert.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Extra annotations sent with the alert.
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// The `description` annotation; a generated sentence when unset.
    #[serde(default)]
    pub description: Option<String>,
}

fn default_severity() -> String {
    "warning".into()
}

/// The kinds of notifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotifyKind {
    /// Prometheus Alertmanager API v2.
    Alertmanager,
    /// A JSON POST of each alert, optionally HMAC-signed.
    Webhook,
}

impl NotifyKind {
    /// The kind as written in the config.
    pub fn as_str(self) -> &'static str {
        match self {
            NotifyKind::Alertmanager => "alertmanager",
            NotifyKind::Webhook => "webhook",
        }
    }
}

/// One `[[alerts.notify]]` entry.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifyConfig {
    /// `alertmanager` or `webhook`.
    pub kind: NotifyKind,
    /// A name for logs and metrics; defaults to the kind.
    #[serde(default)]
    pub name: Option<String>,
    /// Alertmanager: base URL(s) of every replica (`http://am:9093`; the API path is added).
    /// Webhook: the URL to POST to. One string or a list.
    #[serde(deserialize_with = "one_or_many")]
    pub url: Vec<String>,
    /// Webhook: HMAC-SHA256 key (usually `${env:VAR}`); signs the body into
    /// `X-Tollgate-Signature: sha256=<hex>`.
    #[serde(default)]
    pub secret: Option<Secret>,
    /// Only alerts of these rules; empty means all.
    #[serde(default)]
    pub rules: Vec<String>,
    /// Alerts waiting for delivery; beyond this new alerts are dropped (counted).
    #[serde(default = "default_queue_size")]
    pub queue_size: usize,
    /// Per-request timeout.
    #[serde(
        default = "default_timeout",
        deserialize_with = "crate::config::duration::positive"
    )]
    pub timeout: Duration,
    /// Attempts per delivery (5xx and network errors are retried with backoff; 4xx are not).
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// Alertmanager: how often firing window alerts are re-sent (with `endsAt` 4 minutes ahead).
    #[serde(
        default = "default_resend_interval",
        deserialize_with = "crate::config::duration::positive"
    )]
    pub resend_interval: Duration,
    /// Alertmanager: how long one-shot (span and task) alerts stay active.
    #[serde(
        default = "default_event_ttl",
        deserialize_with = "crate::config::duration::positive"
    )]
    pub event_ttl: Duration,
}

fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(s) => vec![s],
        OneOrMany::Many(v) => v,
    })
}

fn default_queue_size() -> usize {
    1024
}
fn default_timeout() -> Duration {
    Duration::from_secs(10)
}
fn default_max_attempts() -> u32 {
    5
}
fn default_resend_interval() -> Duration {
    Duration::from_secs(60)
}
fn default_event_ttl() -> Duration {
    Duration::from_secs(600)
}

impl NotifyConfig {
    /// The notifier's name (for logs and metrics).
    pub fn display_name(&self) -> String {
        self.name
            .clone()
            .unwrap_or_else(|| self.kind.as_str().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The documented example (README / report) parses and compiles.
    const EXAMPLE: &str = r#"
trace_url = "http://tempo:3200/trace/{trace_id}"

[[rules]]
name = "task_cost_over_budget"
scope = "task"
metric = "cost_usd"
op = ">"
threshold = 0.50
severity = "warning"

[[rules]]
name = "cache_hit_ratio_low"
scope = "window"
window = "15m"
group_by = ["service.name"]
metric = "cache_hit_ratio"
op = "<"
threshold = 0.70
min_input_tokens = 100000
severity = "warning"
for = "2m"
labels = { team = "agents" }
annotations = { runbook = "https://wiki.example/cache" }

[[rules]]
name = "slow_llm_call"
scope = "span"
metric = "duration_ms"
op = ">"
threshold = 30000
where = { "gen_ai.provider.name" = "anthropic" }
description = "An Anthropic call took more than 30 s."

[[notify]]
kind = "alertmanager"
url = ["http://alertmanager-0:9093", "http://alertmanager-1:9093"]
resend_interval = "1m"
event_ttl = "10m"

[[notify]]
kind = "webhook"
name = "ops-hook"
url = "https://hooks.example/tollgate"
secret = "not-a-real-secret"
rules = ["task_cost_over_budget"]
queue_size = 1024
timeout = "10s"
max_attempts = 5
"#;

    #[test]
    fn documented_example_is_valid() {
        let cfg: AlertsConfig = toml::from_str(EXAMPLE).unwrap();
        assert_eq!(cfg.rules.len(), 3);
        assert_eq!(cfg.notify[0].url.len(), 2);
        assert_eq!(cfg.notify[1].url.len(), 1);
        assert_eq!(format!("{:?}", cfg.notify[1].secret), "Some(**REDACTED**)");
        let rules = super::super::rule::AlertRules::compile(&cfg.rules, None).unwrap();
        assert_eq!(
            rules.referenced_keys(),
            vec![
                "gen_ai.provider.name".to_string(),
                "service.name".to_string()
            ]
        );
        super::super::notify::validate(&cfg.notify).unwrap();
        assert!(toml::from_str::<AlertsConfig>("[[rules]]\nname='x'\nbogus=1").is_err());
    }
}
