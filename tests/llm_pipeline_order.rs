//! The processor chain (`pipeline::process::Processing`, what `tollgate run` uses) prices a call
//! reported by several spans of one request from the report that knows the cache-write split,
//! whatever the order of the spans in the request (seen with OpenLLMetry + the Anthropic SDK in
//! the end-to-end suite).

mod llm_support;

use std::sync::Arc;

use llm_support::*;
use prost::Message;
use tollgate::alert::AlertsConfig;
use tollgate::llm::PricingConfig;
use tollgate::otlp::collector::trace::v1::ExportTraceServiceRequest;
use tollgate::otlp::common::v1::any_value::Value;
use tollgate::pipeline::process::Processing;
use tollgate::pipeline::Processor;
use tollgate::task::{SystemClock, TaskTracker, TasksConfig};
use tollgate::telemetry::llm_metrics::MetricsConfig;
use tollgate::wire;

fn attr(span: &tollgate::otlp::trace::v1::Span, key: &str) -> Option<Value> {
    span.attributes
        .iter()
        .rev()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref()?.value.clone())
}

#[test]
fn sdk_span_with_write_split_is_the_priced_report_even_when_second() {
    let tasks = TasksConfig::default();
    let tracker = Arc::new(TaskTracker::new(&tasks, Arc::new(SystemClock)));
    let processing = Processing::new(
        &PricingConfig::default(),
        &tasks,
        &AlertsConfig::default(),
        &MetricsConfig::default(),
        tracker,
    )
    .unwrap();
    let [openllmetry, sdk] = openllmetry_and_sdk_reports(60, "msg_fake_pipeline_order");
    let body = request(&[openllmetry, sdk], &[("service.name", s("agent"))]);
    let index = wire::scan(&body).unwrap();
    let mut edits = vec![wire::edit::SpanEdit::Keep; index.spans.len()];
    let mut facts = tollgate::pipeline::SpanFacts::new(Default::default(), index.spans.len());
    processing.process(&body, &index, &mut edits, &mut facts);
    let out = ExportTraceServiceRequest::decode(wire::edit::rebuild(&body, &index, &edits, None))
        .unwrap();
    let spans: Vec<_> = out
        .resource_spans
        .iter()
        .flat_map(|r| r.scope_spans.iter())
        .flat_map(|s| s.spans.iter())
        .collect();
    let status = |n: usize| match attr(spans[n], "tollgate.pricing.status") {
        Some(Value::StringValue(x)) => x,
        other => panic!("{other:?}"),
    };
    assert_eq!(status(0), "aggregate");
    assert_eq!(status(1), "priced");
    // 400 × 3000 + 9000 × 300 + 1000 × 6000 (1-hour write) + 200 × 15 000 nano-USD = $0.0129.
    assert_eq!(
        attr(spans[1], "llm.cost.total"),
        Some(Value::DoubleValue(0.0129))
    );
    assert_eq!(attr(spans[0], "llm.cost.total"), None);
}
