//! Per-task aggregation in bounded memory: what each agent task (a trace by default, or the value
//! of a configured attribute) has spent so far, its tokens by kind, LLM calls, cache-hit ratio and
//! errors.
//!
//! The pipeline turns each span (and its pricing outcome) into a [`SpanInput`]; the alert engine
//! feeds it to the [`TaskTracker`], which keeps at most `max_active` tasks in sharded maps, ends
//! them after an idle timeout or once their root span has arrived and a grace period passed, and
//! keeps recently ended tasks queryable (the task API in `admin`, over HTTP and gRPC). The root span of
//! a task carries the roll-up ([`rollup`]).

mod clock;
mod metrics;
pub mod rollup;
mod tracker;

use std::borrow::Cow;
use std::time::Duration;

use serde::Deserialize;

use crate::wire::{AttrValue, SpanAttrs};

pub use crate::units::{LlmUsage, TaskTotals, Tokens};
pub use clock::{Clock, ManualClock, SystemClock};
pub(crate) use tracker::clip;
pub use tracker::{
    span_delta, EndReason, TaskEntry, TaskStatus, TaskSummary, TaskTracker, MAX_KEY_BYTES,
};

/// `[tasks]`: how spans are grouped into agent tasks and how long tasks are kept.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TasksConfig {
    /// Attribute whose value identifies a task (looked up on the span, then its resource), e.g.
    /// `agent.task.id`, `gen_ai.conversation.id` or `session.id`. Unset: a task is a trace, and
    /// its id is the trace id in lowercase hex.
    #[serde(default)]
    pub key_attribute: Option<String>,
    /// Attribute holding the task type (span, then resource).
    #[serde(default = "default_task_type_attribute")]
    pub task_type_attribute: String,
    /// Most tasks tracked at once; beyond it the oldest task is evicted (and counted).
    #[serde(default = "default_max_active")]
    pub max_active: usize,
    /// A task with no new span for this long has ended.
    #[serde(
        default = "default_idle_timeout",
        deserialize_with = "crate::config::duration::positive"
    )]
    pub idle_timeout: Duration,
    /// Once a task's root span has arrived, the task ends after this grace period (late
    /// children still count until then).
    #[serde(
        default = "default_root_grace",
        deserialize_with = "crate::config::duration::deserialize"
    )]
    pub root_grace: Duration,
    /// How long ended tasks stay queryable through the task API.
    #[serde(
        default = "default_ended_retention",
        deserialize_with = "crate::config::duration::deserialize"
    )]
    pub ended_retention: Duration,
    /// Most ended tasks kept queryable; the oldest are forgotten first.
    #[serde(default = "default_max_ended")]
    pub max_ended: usize,
    /// How often the sweeper looks for tasks that have ended.
    #[serde(
        default = "default_sweep_interval",
        deserialize_with = "crate::config::duration::positive"
    )]
    pub sweep_interval: Duration,
}

fn default_task_type_attribute() -> String {
    "agent.task_type".into()
}
fn default_max_active() -> usize {
    100_000
}
fn default_idle_timeout() -> Duration {
    Duration::from_secs(30)
}
fn default_root_grace() -> Duration {
    Duration::from_secs(5)
}
fn default_ended_retention() -> Duration {
    Duration::from_secs(600)
}
fn default_max_ended() -> usize {
    10_000
}
fn default_sweep_interval() -> Duration {
    Duration::from_secs(1)
}

impl Default for TasksConfig {
    fn default() -> Self {
        Self {
            key_attribute: None,
            task_type_attribute: default_task_type_attribute(),
            max_active: default_max_active(),
            idle_timeout: default_idle_timeout(),
            root_grace: default_root_grace(),
            ended_retention: default_ended_retention(),
            max_ended: default_max_ended(),
            sweep_interval: default_sweep_interval(),
        }
    }
}

impl TasksConfig {
    /// The task id of a span: the configured attribute (span, then resource) when set and
    /// present, otherwise the trace id in lowercase hex, written into `buf` (no allocation in
    /// either common case).
    pub fn task_key<'s, 'a: 's, S: SpanAttrs<'a>>(
        &self,
        span: &S,
        buf: &'s mut [u8; 32],
    ) -> Cow<'s, str> {
        if let Some(key) = &self.key_attribute {
            if let Some(v) = lookup_str(span, key) {
                return v;
            }
        }
        let id = span.trace_id();
        if id.len() == 16 && hex::encode_to_slice(id, buf).is_ok() {
            if let Ok(s) = std::str::from_utf8(buf) {
                return Cow::Borrowed(s);
            }
        }
        Cow::Owned(hex::encode(id))
    }

    /// The task type of a span (span attribute, then resource), if any.
    pub fn task_type<'a, S: SpanAttrs<'a>>(&self, span: &S) -> Option<Cow<'a, str>> {
        lookup_str(span, &self.task_type_attribute)
    }
}

fn lookup_str<'a, S: SpanAttrs<'a>>(span: &S, key: &str) -> Option<Cow<'a, str>> {
    let v = span
        .attribute(key)
        .or_else(|| span.resource_attribute(key))?;
    match v {
        AttrValue::Str(s) if !s.is_empty() => Some(Cow::Borrowed(s)),
        AttrValue::Int(i) => Some(Cow::Owned(i.to_string())),
        _ => None,
    }
}

/// What the task tracker and the alert rules need from one span. The pipeline fills it from the
/// span and its pricing outcome; everything borrows from the request.
#[derive(Debug, Clone, Copy, Default)]
pub struct SpanInput<'a> {
    /// The task id (see [`TasksConfig::task_key`]).
    pub task_key: &'a str,
    /// The trace id (16 bytes).
    pub trace_id: &'a [u8],
    /// The span id (8 bytes).
    pub span_id: &'a [u8],
    /// The parent span id; empty for a root span.
    pub parent_span_id: &'a [u8],
    /// True for the span that is the root of its task (gets the roll-up; starts the grace period).
    pub is_task_root: bool,
    /// The resource's `service.name`.
    pub service: &'a str,
    /// The task type (e.g. `agent.task_type`); empty when unknown.
    pub task_type: &'a str,
    /// Span start, nanoseconds since the Unix epoch.
    pub start_unix_nano: u64,
    /// Span end, nanoseconds since the Unix epoch.
    pub end_unix_nano: u64,
    /// True when the span's status is error.
    pub error: bool,
    /// Set when the span is a priced LLM call (and only once per call).
    pub llm: Option<LlmUsage>,
    /// The attributes alert rules reference (`where`, `group_by`), looked up on the span then
    /// the resource: see `alert::AlertRules::referenced_keys`.
    pub attributes: &'a [(&'a str, AttrValue<'a>)],
}

impl SpanInput<'_> {
    /// The span's duration in milliseconds (0 when the end precedes the start).
    pub fn duration_ms(&self) -> f64 {
        self.end_unix_nano.saturating_sub(self.start_unix_nano) as f64 / 1e6
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(k: &str, v: &str) -> crate::otlp::common::v1::KeyValue {
        crate::otlp::common::v1::KeyValue {
            key: k.into(),
            value: Some(crate::otlp::common::v1::AnyValue {
                value: Some(crate::otlp::common::v1::any_value::Value::StringValue(
                    v.into(),
                )),
            }),
            ..Default::default()
        }
    }

    #[test]
    fn task_key_is_the_attribute_on_span_then_resource_else_the_trace_id() {
        use crate::otlp::resource::v1::Resource;
        use crate::otlp::trace::v1::Span;
        use crate::wire::prost_view::ProstSpan;
        let resource = Resource {
            attributes: vec![kv("session.id", "sess-1"), kv("agent.task_type", "chat")],
            ..Default::default()
        };
        let plain = Span {
            trace_id: vec![0xab; 16],
            ..Default::default()
        };
        let tagged = Span {
            attributes: vec![kv("session.id", "sess-2")],
            ..plain.clone()
        };
        let by_trace = TasksConfig::default();
        let by_session = TasksConfig {
            key_attribute: Some("session.id".into()),
            ..TasksConfig::default()
        };
        let view = ProstSpan::new(&plain, Some(&resource), None);
        assert_eq!(by_trace.task_key(&view, &mut [0; 32]), "ab".repeat(16));
        assert_eq!(by_session.task_key(&view, &mut [0; 32]), "sess-1");
        assert_eq!(by_session.task_type(&view).as_deref(), Some("chat"));
        let view = ProstSpan::new(&tagged, Some(&resource), None);
        assert_eq!(by_session.task_key(&view, &mut [0; 32]), "sess-2");
        let view = ProstSpan::new(&plain, None, None);
        assert_eq!(by_session.task_key(&view, &mut [0; 32]), "ab".repeat(16));
        assert_eq!(by_session.task_type(&view), None);
    }

    #[test]
    fn config_parses_with_defaults_and_durations() {
        let c: TasksConfig = toml::from_str(
            "key_attribute = \"agent.task.id\"\nidle_timeout = \"1m\"\nmax_active = 10",
        )
        .unwrap();
        assert_eq!(c.key_attribute.as_deref(), Some("agent.task.id"));
        assert_eq!(c.idle_timeout, Duration::from_secs(60));
        assert_eq!(c.root_grace, Duration::from_secs(5));
        assert_eq!(c.max_active, 10);
        assert!(toml::from_str::<TasksConfig>("idle_timeout = \"soon\"").is_err());
        assert!(toml::from_str::<TasksConfig>("bogus = 1").is_err());
    }
}
