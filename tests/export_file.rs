//! The file exporter writes one valid OTLP/JSON request per line; the console summary.

mod support;

use std::time::{Duration, Instant};

use prost::Message;
use support::batch;
use tollgate::export::{ExporterConfig, ExporterKind, Exporters};
use tollgate::otlp::collector::trace::v1::ExportTraceServiceRequest;

#[tokio::test]
async fn file_writes_otlp_json_lines() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("spans.jsonl");
    std::fs::write(&path, "").unwrap();
    let mut c = ExporterConfig::new("f_file", ExporterKind::File);
    c.path = Some(path.clone());
    c.batch.max_spans = 2;
    c.batch.timeout = Duration::from_millis(10);
    let ex = Exporters::from_configs(&[c]).unwrap();
    for i in 0..3 {
        ex.dispatch(batch("svc", &format!("f{i}"), 2, 3));
    }
    ex.drain(Instant::now() + Duration::from_secs(10)).await;
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<_> = text.lines().collect();
    assert_eq!(lines.len(), 3, "one request per line (max_spans = 2)");
    let mut names = Vec::new();
    for line in lines {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        // OTLP/JSON: lowerCamelCase keys and hex ids.
        let span = &v["resourceSpans"][0]["scopeSpans"][0]["spans"][0];
        assert_eq!(span["traceId"].as_str().unwrap().len(), 32);
        assert_eq!(span["spanId"].as_str().unwrap().len(), 16);
        let req: ExportTraceServiceRequest = serde_json::from_str(line).unwrap();
        names.extend(support::span_names(&req));
    }
    names.sort();
    assert_eq!(names, ["f0-0", "f0-1", "f1-0", "f1-1", "f2-0", "f2-1"]);
}

#[tokio::test]
async fn file_appends() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("spans.jsonl");
    std::fs::write(&path, "{\"resourceSpans\":[]}\n").unwrap();
    let mut c = ExporterConfig::new("f_append", ExporterKind::File);
    c.path = Some(path.clone());
    let ex = Exporters::from_configs(&[c]).unwrap();
    ex.dispatch(batch("svc", "a", 1, 1));
    ex.drain(Instant::now() + Duration::from_secs(10)).await;
    assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 2);
}

#[test]
fn console_summary_has_service_name_duration_and_cost() {
    use tollgate::otlp::common::v1::{any_value, AnyValue, KeyValue};
    let mut req = support::request("agent", "llm-call", 1, 1);
    req.resource_spans[0].scope_spans[0].spans[0]
        .attributes
        .push(KeyValue {
            key: "llm.cost.total".into(),
            value: Some(AnyValue {
                value: Some(any_value::Value::DoubleValue(0.0125)),
            }),
            ..Default::default()
        });
    let text = tollgate::export::console::summarize(&req.encode_to_vec()).unwrap();
    assert_eq!(
        text,
        "agent \"llm-call-0\" 250.000ms llm.cost.total=0.0125\n"
    );
}
