//! The stages write through the state store (`Processing::with_state`): a retried span does not
//! raise its task's span count or cost (#19 p7), and with a `DurableStore` a "restart" (a new
//! processor over the same directory) does not price a re-sent call twice, keeps the task's
//! total and does not fire a task rule again (#12).

mod llm_support;

use std::path::Path;
use std::sync::Arc;

use llm_support::*;
use prost::Message;
use tollgate::alert::AlertsConfig;
use tollgate::llm::PricingConfig;
use tollgate::otlp::collector::trace::v1::ExportTraceServiceRequest;
use tollgate::otlp::common::v1::any_value::Value;
use tollgate::otlp::trace::v1::Span;
use tollgate::pipeline::process::Processing;
use tollgate::pipeline::Processor;
use tollgate::state::{DurableStore, MemoryStore, StateStore};
use tollgate::task::{SystemClock, TaskTracker, TasksConfig};
use tollgate::telemetry::llm_metrics::MetricsConfig;
use tollgate::wire;

const RULE: &str = r#"
[[rules]]
name = "task_spent"
scope = "task"
metric = "cost_usd"
op = ">"
threshold = 0.000001
"#;

/// An OpenAI call (span `id`, child of the root span 1) of trace 9.
fn call(id: u8) -> SpanSpec {
    SpanSpec::new(
        "chat gpt-4o",
        &[
            ("gen_ai.provider.name", s("openai")),
            ("gen_ai.operation.name", s("chat")),
            ("gen_ai.request.model", s("gpt-4o")),
            ("gen_ai.usage.input_tokens", i(1000 + i64::from(id))),
            ("gen_ai.usage.output_tokens", i(100)),
        ],
    )
    .trace(9)
    .id(id)
    .parent(1)
}

fn processing(state: Arc<dyn StateStore>) -> (Processing, Arc<TaskTracker>) {
    let tasks = TasksConfig::default();
    let tracker = Arc::new(TaskTracker::new(&tasks, Arc::new(SystemClock)));
    let alerts: AlertsConfig = toml::from_str(RULE).unwrap();
    let p = Processing::with_state(
        &PricingConfig::default(),
        &tasks,
        &alerts,
        &MetricsConfig::default(),
        tracker.clone(),
        state,
    )
    .unwrap();
    (p, tracker)
}

fn process(p: &Processing, spans: &[SpanSpec]) -> Vec<Span> {
    let body = request(spans, &[("service.name", s("agent"))]);
    let index = wire::scan(&body).unwrap();
    let mut edits = vec![wire::edit::SpanEdit::Keep; index.spans.len()];
    let mut facts = tollgate::pipeline::SpanFacts::new(Default::default(), index.spans.len());
    p.process(&body, &index, &mut edits, &mut facts);
    let out = ExportTraceServiceRequest::decode(wire::edit::rebuild(&body, &index, &edits, None))
        .unwrap();
    out.resource_spans
        .into_iter()
        .flat_map(|r| r.scope_spans)
        .flat_map(|s| s.spans)
        .collect()
}

fn status(span: &Span) -> Option<String> {
    span.attributes
        .iter()
        .rev()
        .find(|kv| kv.key == "tollgate.pricing.status")
        .and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
            Value::StringValue(s) => Some(s.clone()),
            _ => None,
        })
}

fn alerts(spans: &[Span]) -> usize {
    spans
        .iter()
        .flat_map(|s| s.events.iter())
        .filter(|e| e.name == "tollgate.alert")
        .count()
}

const TASK: &str = "09090909090909090909090909090909";

#[test]
fn a_retried_span_does_not_raise_the_task_span_count_or_cost() {
    let (p, tracker) = processing(Arc::new(MemoryStore::new()));
    process(&p, &[call(2)]);
    let first = tracker.get(TASK).unwrap().totals;
    assert_eq!(first.spans, 1);
    assert!(first.cost_nano_usd > 0);
    // The client retries the same request (same trace id + span id).
    process(&p, &[call(2)]);
    let after = tracker.get(TASK).unwrap().totals;
    assert_eq!(after.spans, 1, "a retried span is one span");
    assert_eq!(after.cost_nano_usd, first.cost_nano_usd);
    assert_eq!(after.llm_calls, 1);
}

fn durable(dir: &Path) -> Arc<dyn StateStore> {
    Arc::new(DurableStore::open(dir).unwrap())
}

#[test]
fn a_durable_store_keeps_claims_totals_and_fired_rules_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (cost_2, cost_3);
    {
        let (p, tracker) = processing(durable(dir.path()));
        let out = process(&p, &[call(2)]);
        assert_eq!(status(&out[0]).as_deref(), Some("priced"));
        assert_eq!(alerts(&out), 1, "the task rule fires on the first call");
        cost_2 = tracker.get(TASK).unwrap().totals.cost_nano_usd;
        assert!(cost_2 > 0);
        // Dropped without any shutdown: what was applied is in the log already.
    }
    let (p, tracker) = processing(durable(dir.path()));
    // The same call re-sent after the restart is not priced again.
    let out = process(&p, &[call(2)]);
    assert_eq!(status(&out[0]).as_deref(), Some("aggregate"));
    assert_eq!(alerts(&out), 0);
    assert_eq!(tracker.get(TASK).unwrap().totals.cost_nano_usd, cost_2);
    // A new call of the task adds to the total from before the restart; the rule stays fired.
    let out = process(&p, &[call(3)]);
    assert_eq!(status(&out[0]).as_deref(), Some("priced"));
    assert_eq!(
        alerts(&out),
        0,
        "the task rule fired once, before the restart"
    );
    let totals = tracker.get(TASK).unwrap().totals;
    cost_3 = totals.cost_nano_usd - cost_2;
    assert!(cost_3 > 0);
    assert_eq!(totals.llm_calls, 2);
    assert_eq!(totals.spans, 2);
    // The root span carries the whole task's roll-up.
    let root = SpanSpec::new("agent.run", &[]).trace(9).id(1);
    let out = process(&p, &[root]);
    let total = out[0]
        .attributes
        .iter()
        .find(|kv| kv.key == "tollgate.task.cost_usd")
        .and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
            Value::DoubleValue(d) => Some(*d),
            _ => None,
        })
        .unwrap();
    assert_eq!(total, (cost_2 + cost_3) as f64 / 1e9);
}
