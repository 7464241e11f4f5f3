//! Per-exporter `spans` filters and the Langfuse extras, through the whole pipeline (processor,
//! variants, fan-out, exporters) into stand-in backends.

mod support;

use std::sync::Arc;
use std::time::Duration;

use prost::Message;
use support::eventually;
use support::standins::{self, Rules, Standin};
use tollgate::alert::AlertsConfig;
use tollgate::export::metrics::{filtered_spans, sent_spans};
use tollgate::export::{ExporterConfig, ExporterKind, Exporters, SpanFilter};
use tollgate::llm::PricingConfig;
use tollgate::otlp::collector::trace::v1::ExportTraceServiceRequest;
use tollgate::otlp::common::v1::any_value::Value;
use tollgate::otlp::common::v1::{AnyValue, KeyValue};
use tollgate::otlp::resource::v1::Resource;
use tollgate::otlp::trace::v1::{ResourceSpans, ScopeSpans, Span};
use tollgate::pipeline::process::Processing;
use tollgate::pipeline::ExportFanout;
use tollgate::pipeline::{Pipeline, PipelineConfig, Transport};
use tollgate::task::{SystemClock, TaskTracker, TasksConfig};
use tollgate::telemetry::llm_metrics::MetricsConfig;

fn cfg(name: &str, kind: ExporterKind, s: &Standin, spans: SpanFilter) -> ExporterConfig {
    let mut c = ExporterConfig::new(name, kind);
    c.endpoint = Some(match kind {
        ExporterKind::Langfuse => format!("{}/api/public/otel/v1/traces", s.url()),
        _ => s.url(),
    });
    if kind == ExporterKind::Langfuse {
        c.public_key = Some(tollgate::config::Secret::new("pk-lf-test"));
        c.secret_key = Some(tollgate::config::Secret::new("sk-lf-test"));
    }
    c.insecure = true;
    c.spans = spans;
    c.batch.timeout = Duration::from_millis(10);
    c.retry.initial_interval = Duration::from_millis(20);
    c.retry.max_interval = Duration::from_millis(100);
    c
}

fn kv(k: &str, v: Value) -> KeyValue {
    KeyValue {
        key: k.into(),
        value: Some(AnyValue { value: Some(v) }),
        ..Default::default()
    }
}

fn span(trace: u8, id: u8, parent: Option<u8>, name: &str, attrs: Vec<KeyValue>) -> Span {
    Span {
        trace_id: [trace; 16].to_vec(),
        span_id: [id; 8].to_vec(),
        parent_span_id: parent.map(|p| [p; 8].to_vec()).unwrap_or_default(),
        name: name.into(),
        start_time_unix_nano: 1_780_000_000_000_000_000,
        end_time_unix_nano: 1_780_000_001_000_000_000,
        attributes: attrs,
        ..Default::default()
    }
}

/// An LLM call in the hand-written convention: 1000 uncached input, 2000 cache-read and 100
/// output tokens of claude-sonnet-4-6 ($3 / $0.30 / $15 per million): 0.003 + 0.0006 + 0.0015.
fn llm_span(trace: u8, id: u8, parent: u8) -> Span {
    span(
        trace,
        id,
        Some(parent),
        "llm-call",
        vec![
            kv("llm.model", Value::StringValue("claude-sonnet-4-6".into())),
            kv("llm.input_tokens", Value::IntValue(1000)),
            kv("llm.cache_read_input_tokens", Value::IntValue(2000)),
            kv("llm.output_tokens", Value::IntValue(100)),
        ],
    )
}
const LLM_COST_USD: f64 = 0.0051;

fn body(spans: Vec<Span>) -> bytes::Bytes {
    bytes::Bytes::from(
        ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![kv("service.name", Value::StringValue("agent".into()))],
                    ..Default::default()
                }),
                scope_spans: vec![ScopeSpans {
                    spans,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
        .encode_to_vec(),
    )
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

fn received_spans(s: &Standin) -> Vec<Span> {
    s.record
        .received
        .lock()
        .iter()
        .flat_map(|r| r.request.resource_spans.clone())
        .flat_map(|r| r.scope_spans)
        .flat_map(|s| s.spans)
        .collect()
}

fn attr<'a>(s: &'a Span, key: &str) -> Option<&'a Value> {
    s.attributes
        .iter()
        .rev()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref()?.value.as_ref())
}

fn pipeline(
    exporters: &[ExporterConfig],
) -> (Arc<Pipeline<ExportFanout, Processing>>, Arc<Exporters>) {
    let tracker = Arc::new(TaskTracker::new(
        &TasksConfig::default(),
        Arc::new(SystemClock),
    ));
    let processing = Processing::new(
        &PricingConfig::default(),
        &TasksConfig::default(),
        &AlertsConfig::default(),
        &MetricsConfig::default(),
        tracker,
    )
    .expect("processor");
    let exporters = Arc::new(Exporters::from_configs(exporters).expect("exporters"));
    let p = Pipeline::new(
        &PipelineConfig::default(),
        processing,
        ExportFanout::new(exporters.clone()),
    );
    (Arc::new(p), exporters)
}

#[tokio::test]
async fn each_exporter_gets_the_spans_its_filter_selects() {
    let all = standins::http(Rules::Generic).await;
    let llm = standins::http(Rules::Generic).await;
    let traces = standins::http(Rules::Generic).await;
    let (p, _exporters) = pipeline(&[
        cfg("flt_all", ExporterKind::OtlpHttp, &all, SpanFilter::All),
        cfg("flt_llm", ExporterKind::OtlpHttp, &llm, SpanFilter::Llm),
        cfg(
            "flt_traces",
            ExporterKind::OtlpHttp,
            &traces,
            SpanFilter::LlmTraces,
        ),
    ]);
    let before = |n: &str| filtered_spans(n);
    let (f_all, f_llm, f_traces) = (before("flt_all"), before("flt_llm"), before("flt_traces"));

    // Trace 1: root 1 → llm 2 → tool 3 (early, arrives first) and tool 4 (late).
    // Trace 2 has no LLM span at all.
    let requests = [
        vec![span(1, 3, Some(2), "tool-early", vec![])],
        vec![llm_span(1, 2, 1), span(2, 5, Some(6), "other-1", vec![])],
        vec![
            span(1, 4, Some(2), "tool-late", vec![]),
            span(1, 1, None, "root", vec![]),
            span(2, 6, None, "other-2", vec![]),
        ],
    ];
    for r in requests {
        p.handle(body(r), Transport::HttpProtobuf)
            .expect("accepted");
    }
    eventually("every exporter delivered", || {
        all.record.spans() == 6 && llm.record.spans() == 1 && traces.record.spans() == 3
    })
    .await;
    assert_eq!(
        sorted(all.record.span_names()),
        [
            "llm-call",
            "other-1",
            "other-2",
            "root",
            "tool-early",
            "tool-late"
        ]
    );
    assert_eq!(llm.record.span_names(), ["llm-call"]);
    assert_eq!(
        sorted(traces.record.span_names()),
        ["llm-call", "root", "tool-late"],
        "the late tool span and the root pass; the early tool span and trace 2 do not"
    );
    // The LLM span is enriched in every variant.
    let priced = &received_spans(&llm)[0];
    assert_eq!(
        attr(priced, "tollgate.pricing.status"),
        Some(&Value::StringValue("priced".into()))
    );
    assert_eq!(filtered_spans("flt_all") - f_all, 0);
    assert_eq!(filtered_spans("flt_llm") - f_llm, 5);
    assert_eq!(filtered_spans("flt_traces") - f_traces, 3);
    eventually("sent counted", || sent_spans("flt_llm") == 1).await;
    // Every variant's bytes were held in the budget and are all released.
    eventually("the memory budget is released", || p.budget().used() == 0).await;
    // Nothing else arrives.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        (
            all.record.spans(),
            llm.record.spans(),
            traces.record.spans()
        ),
        (6, 1, 3)
    );
}

#[tokio::test]
async fn only_the_langfuse_exporter_gets_cost_and_usage_details() {
    let langfuse = standins::http(Rules::Langfuse {
        public_key: "pk-lf-test".into(),
        secret_key: "sk-lf-test".into(),
    })
    .await;
    let otlp = standins::http(Rules::Generic).await;
    let (p, _exporters) = pipeline(&[
        cfg(
            "lf_langfuse",
            ExporterKind::Langfuse,
            &langfuse,
            SpanFilter::All,
        ),
        cfg("lf_otlp", ExporterKind::OtlpHttp, &otlp, SpanFilter::All),
    ]);
    p.handle(
        body(vec![llm_span(9, 2, 1), span(9, 1, None, "root", vec![])]),
        Transport::HttpProtobuf,
    )
    .expect("accepted");
    eventually("both delivered", || {
        langfuse.record.spans() == 2 && otlp.record.spans() == 2
    })
    .await;
    assert!(langfuse.record.rejections.lock().is_empty());

    let lf = received_spans(&langfuse);
    let call = lf.iter().find(|s| s.name == "llm-call").expect("llm span");
    let Some(Value::StringValue(cost)) = attr(call, "langfuse.observation.cost_details") else {
        panic!("no cost_details on {call:?}");
    };
    let Some(Value::StringValue(usage)) = attr(call, "langfuse.observation.usage_details") else {
        panic!("no usage_details on {call:?}");
    };
    let cost: serde_json::Value = serde_json::from_str(cost).expect("JSON");
    let usage: serde_json::Value = serde_json::from_str(usage).expect("JSON");
    assert_eq!(cost["total"].as_f64(), Some(LLM_COST_USD));
    assert_eq!(
        Some(&Value::DoubleValue(LLM_COST_USD)),
        attr(call, "llm.cost.total"),
        "the same total as the span's own cost"
    );
    assert_eq!(cost["input"].as_f64(), Some(0.003));
    assert_eq!(cost["input_cache_read"].as_f64(), Some(0.0006));
    assert_eq!(cost["output"].as_f64(), Some(0.0015));
    assert_eq!(usage["total"], 1000 + 2000 + 100);
    assert_eq!(usage["input_cache_read"], 2000);
    let root = lf.iter().find(|s| s.name == "root").expect("root");
    assert!(
        attr(root, "langfuse.observation.cost_details").is_none(),
        "not an LLM span"
    );

    for s in received_spans(&otlp) {
        assert!(
            s.attributes
                .iter()
                .all(|kv| !kv.key.starts_with("langfuse.")),
            "the plain OTLP exporter got {:?}",
            s.attributes
        );
        if s.name == "llm-call" {
            assert_eq!(
                attr(&s, "llm.cost.total"),
                Some(&Value::DoubleValue(LLM_COST_USD))
            );
        }
    }
    eventually("the memory budget is released", || p.budget().used() == 0).await;
}

#[test]
fn the_spans_key_parses_defaults_to_all_and_rejects_unknown_values() {
    let parse = |extra: &str| {
        toml::from_str::<ExporterConfig>(&format!("name = \"x\"\nkind = \"console\"\n{extra}"))
    };
    assert_eq!(parse("").unwrap().spans, SpanFilter::All);
    assert_eq!(parse("spans = \"llm\"").unwrap().spans, SpanFilter::Llm);
    assert_eq!(
        parse("spans = \"llm_traces\"").unwrap().spans,
        SpanFilter::LlmTraces
    );
    assert!(parse("spans = \"some\"").is_err());
}
