//! Shared helpers for the task and alert integration tests.
#![allow(dead_code)]

use std::sync::Arc;

use tollgate::alert::{AlertEngine, AlertsConfig};
use tollgate::task::{LlmUsage, ManualClock, SpanInput, TaskTracker, TasksConfig, Tokens};

/// A tracker + engine on a manual clock.
pub fn engine(alerts_toml: &str) -> (Arc<AlertEngine>, Arc<ManualClock>) {
    engine_with(alerts_toml, TasksConfig::default())
}

pub fn engine_with(alerts_toml: &str, tasks: TasksConfig) -> (Arc<AlertEngine>, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(1_764_000_000_000));
    let tracker = Arc::new(TaskTracker::new(&tasks, clock.clone()));
    let cfg: AlertsConfig = toml::from_str(alerts_toml).expect("alerts config parses");
    let engine = AlertEngine::new(&cfg, tracker).expect("alerts config is valid");
    (Arc::new(engine), clock)
}

/// Per-span ids and a priced LLM call.
pub struct TestSpan {
    pub task: String,
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    pub parent: Vec<u8>,
    pub service: String,
    pub llm: Option<LlmUsage>,
    pub start: u64,
    pub end: u64,
}

impl TestSpan {
    pub fn llm(task: &str, n: u8, cost_nano_usd: i64) -> Self {
        TestSpan {
            task: task.to_string(),
            trace_id: trace_id(task),
            span_id: [n; 8],
            parent: vec![0xee; 8],
            service: "agent-svc".into(),
            llm: Some(LlmUsage {
                cost_nano_usd,
                tokens: Tokens {
                    input_uncached: 1000,
                    cache_read: 0,
                    cache_write: 0,
                    output: 100,
                },
                ..Default::default()
            }),
            start: 1_764_000_000_000_000_000,
            end: 1_764_000_001_000_000_000,
        }
    }

    pub fn root(task: &str) -> Self {
        TestSpan {
            parent: Vec::new(),
            llm: None,
            span_id: [0xee; 8],
            ..TestSpan::llm(task, 0, 0)
        }
    }

    pub fn input(&self) -> SpanInput<'_> {
        SpanInput {
            task_key: &self.task,
            trace_id: &self.trace_id,
            span_id: &self.span_id,
            parent_span_id: &self.parent,
            is_task_root: self.parent.is_empty(),
            service: &self.service,
            task_type: "research",
            start_unix_nano: self.start,
            end_unix_nano: self.end,
            error: false,
            llm: self.llm,
            attributes: &[],
        }
    }
}

/// A deterministic trace id for a task name.
pub fn trace_id(task: &str) -> [u8; 16] {
    let mut id = [0x11u8; 16];
    for (i, b) in task.bytes().enumerate().take(16) {
        id[i] = b;
    }
    id
}

/// Decodes the bytes `observe` returned as the tail of an (otherwise empty) span.
pub fn decode_added(bytes: &[u8]) -> tollgate::otlp::trace::v1::Span {
    use prost::Message;
    tollgate::otlp::trace::v1::Span::decode(bytes).expect("added fields decode as Span fields")
}

/// A counter's value from the global registry (0 when absent).
pub fn counter(name: &str, labels: &[(&str, &str)]) -> f64 {
    for mf in tollgate::telemetry::registry().gather() {
        if mf.name() != name {
            continue;
        }
        for m in mf.get_metric() {
            let ok = labels.iter().all(|(k, v)| {
                m.get_label()
                    .iter()
                    .any(|l| l.name() == *k && l.value() == *v)
            });
            if ok {
                return m.get_counter().get_value() + m.get_gauge().get_value();
            }
        }
    }
    0.0
}
