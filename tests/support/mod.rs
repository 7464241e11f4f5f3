//! Shared helpers for integration tests: stand-in backends and request builders.
#![allow(dead_code)]

pub mod standins;

use bytes::Bytes;
use prost::Message;
use tollgate::otlp::collector::trace::v1::ExportTraceServiceRequest;
use tollgate::otlp::common::v1::{any_value, AnyValue, KeyValue};
use tollgate::otlp::resource::v1::Resource;
use tollgate::otlp::trace::v1::{ResourceSpans, ScopeSpans, Span};

/// A request of `spans` spans of service `service`; span names are `"{prefix}-{i}"` and every
/// span carries a `pad` attribute of `pad` bytes.
pub fn request(service: &str, prefix: &str, spans: usize, pad: usize) -> ExportTraceServiceRequest {
    let kv = |k: &str, v: &str| KeyValue {
        key: k.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(v.into())),
        }),
        ..Default::default()
    };
    let spans = (0..spans)
        .map(|i| {
            let mut trace_id = [7u8; 16];
            trace_id[..8].copy_from_slice(&(i as u64 + 1).to_be_bytes());
            Span {
                trace_id: trace_id.to_vec(),
                span_id: (i as u64 + 1).to_be_bytes().to_vec(),
                name: format!("{prefix}-{i}"),
                kind: 3,
                start_time_unix_nano: 1_700_000_000_000_000_000,
                end_time_unix_nano: 1_700_000_000_250_000_000,
                attributes: vec![kv("pad", &"x".repeat(pad))],
                ..Default::default()
            }
        })
        .collect();
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![kv("service.name", service)],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// The encoded request as an `ExportBatch`.
pub fn batch(
    service: &str,
    prefix: &str,
    spans: usize,
    pad: usize,
) -> std::sync::Arc<tollgate::export::ExportBatch> {
    let bytes = Bytes::from(request(service, prefix, spans, pad).encode_to_vec());
    std::sync::Arc::new(tollgate::export::ExportBatch::new(bytes, spans))
}

/// Span names in a request, in order.
pub fn span_names(req: &ExportTraceServiceRequest) -> Vec<String> {
    req.resource_spans
        .iter()
        .flat_map(|r| r.scope_spans.iter())
        .flat_map(|s| s.spans.iter())
        .map(|s| s.name.clone())
        .collect()
}

/// Waits (generously) until `cond` holds; panics after 30 s so a broken test cannot hang.
pub async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let until = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !cond() {
        assert!(
            std::time::Instant::now() < until,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
