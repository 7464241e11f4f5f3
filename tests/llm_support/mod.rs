//! Shared helpers for the LLM integration tests: build requests as opentelemetry-proto structs,
//! encode them with prost, scan, enrich, rebuild and decode.
#![allow(dead_code)]

use std::collections::HashMap;

use bytes::Bytes;
use prost::Message;
use tollgate::llm::{Enricher, LlmOutcome};
use tollgate::otlp::collector::trace::v1::ExportTraceServiceRequest;
use tollgate::otlp::common::v1::any_value::Value;
use tollgate::otlp::common::v1::{AnyValue, InstrumentationScope, KeyValue};
use tollgate::otlp::resource::v1::Resource;
use tollgate::otlp::trace::v1::{ResourceSpans, ScopeSpans, Span};
use tollgate::wire;

/// An attribute value.
#[derive(Debug, Clone)]
pub enum V {
    I(i64),
    S(String),
    D(f64),
    B(bool),
}

pub fn i(n: i64) -> V {
    V::I(n)
}
pub fn s(x: &str) -> V {
    V::S(x.to_string())
}

pub fn kv(key: &str, v: &V) -> KeyValue {
    let value = match v {
        V::I(n) => Value::IntValue(*n),
        V::S(x) => Value::StringValue(x.clone()),
        V::D(d) => Value::DoubleValue(*d),
        V::B(b) => Value::BoolValue(*b),
    };
    KeyValue {
        key: key.to_string(),
        value: Some(AnyValue { value: Some(value) }),
        ..KeyValue::default()
    }
}

/// One span to build.
#[derive(Debug, Clone)]
pub struct SpanSpec {
    pub name: String,
    pub trace: [u8; 16],
    pub id: [u8; 8],
    pub parent: Option<[u8; 8]>,
    pub scope: String,
    pub start_ns: u64,
    pub attrs: Vec<(String, V)>,
}

impl SpanSpec {
    pub fn new(name: &str, attrs: &[(&str, V)]) -> Self {
        Self {
            name: name.into(),
            trace: [7; 16],
            id: [1; 8],
            parent: None,
            scope: "test".into(),
            // 2026-11-25T00:00:00Z
            start_ns: 1_795_564_800_000_000_000,
            attrs: attrs
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
        }
    }
    pub fn id(mut self, id: u8) -> Self {
        self.id = [id; 8];
        self
    }
    pub fn parent(mut self, id: u8) -> Self {
        self.parent = Some([id; 8]);
        self
    }
    pub fn trace(mut self, t: u8) -> Self {
        self.trace = [t; 16];
        self
    }
    pub fn scope(mut self, scope: &str) -> Self {
        self.scope = scope.into();
        self
    }
    pub fn to_span(&self) -> Span {
        Span {
            trace_id: self.trace.to_vec(),
            span_id: self.id.to_vec(),
            parent_span_id: self.parent.map(|p| p.to_vec()).unwrap_or_default(),
            name: self.name.clone(),
            kind: 3,
            start_time_unix_nano: self.start_ns,
            end_time_unix_nano: self.start_ns + 1_500_000_000,
            attributes: self.attrs.iter().map(|(k, v)| kv(k, v)).collect(),
            ..Span::default()
        }
    }
}

/// Encodes spans (each in its own scope) under one resource.
pub fn request(spans: &[SpanSpec], resource: &[(&str, V)]) -> Bytes {
    let req = ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: resource.iter().map(|(k, v)| kv(k, v)).collect(),
                ..Resource::default()
            }),
            scope_spans: spans
                .iter()
                .map(|sp| ScopeSpans {
                    scope: Some(InstrumentationScope {
                        name: sp.scope.clone(),
                        ..InstrumentationScope::default()
                    }),
                    spans: vec![sp.to_span()],
                    ..ScopeSpans::default()
                })
                .collect(),
            ..ResourceSpans::default()
        }],
    };
    Bytes::from(req.encode_to_vec())
}

/// The result of enriching one request.
pub struct Run {
    /// The rebuilt request, decoded.
    pub out: ExportTraceServiceRequest,
    /// One outcome per span, in order.
    pub outcomes: Vec<Option<LlmOutcome>>,
    /// Whether each span was edited.
    pub edited: Vec<bool>,
}

impl Run {
    /// Attributes of span `n` after enrichment (last value per key) and the count of each key.
    pub fn attrs(&self, n: usize) -> HashMap<String, Value> {
        let mut m = HashMap::new();
        for kv in &self.span(n).attributes {
            if let Some(v) = kv.value.as_ref().and_then(|v| v.value.clone()) {
                m.insert(kv.key.clone(), v);
            }
        }
        m
    }
    pub fn key_count(&self, n: usize, key: &str) -> usize {
        self.span(n)
            .attributes
            .iter()
            .filter(|kv| kv.key == key)
            .count()
    }
    pub fn span(&self, n: usize) -> &Span {
        let mut all = self
            .out
            .resource_spans
            .iter()
            .flat_map(|r| r.scope_spans.iter())
            .flat_map(|s| s.spans.iter());
        all.nth(n).expect("span exists")
    }
    pub fn double(&self, n: usize, key: &str) -> Option<f64> {
        match self.attrs(n).get(key) {
            Some(Value::DoubleValue(d)) => Some(*d),
            _ => None,
        }
    }
    pub fn string(&self, n: usize, key: &str) -> Option<String> {
        match self.attrs(n).get(key) {
            Some(Value::StringValue(x)) => Some(x.clone()),
            _ => None,
        }
    }
}

/// Scans, enriches, rebuilds and decodes.
pub fn run(enricher: &Enricher, body: &Bytes) -> Run {
    let index = wire::scan(body).expect("valid request");
    let (edits, outcomes) = enricher.enrich_request(body, &index);
    let edited = edits
        .iter()
        .map(|e| !matches!(e, wire::edit::SpanEdit::Keep))
        .collect();
    let rebuilt = wire::edit::rebuild(body, &index, &edits, None);
    let out = ExportTraceServiceRequest::decode(rebuilt).expect("rebuilt request decodes");
    Run {
        out,
        outcomes,
        edited,
    }
}

/// Counter value of `tollgate_llm_unpriced_spans_total{reason}`.
pub fn unpriced(reason: &str) -> u64 {
    tollgate::llm::metrics::metrics()
        .unpriced_spans
        .with_label_values(&[reason])
        .get()
}

/// One Anthropic call reported twice in trace `trace` (shared response id `response_id`, both
/// children of span 1): OpenLLMetry's `anthropic.chat` span, which only has the total cache
/// writes (1 000), and the SDK's own span, which says they were all 1-hour writes. Returned in
/// that order: the report that does not know the split comes first.
pub fn openllmetry_and_sdk_reports(trace: u8, response_id: &str) -> [SpanSpec; 2] {
    let common = [
        ("gen_ai.provider.name", s("anthropic")),
        ("gen_ai.request.model", s("claude-sonnet-4-6")),
        ("gen_ai.response.model", s("claude-sonnet-4-6")),
        ("gen_ai.response.id", s(response_id)),
        ("gen_ai.usage.input_tokens", i(10_400)),
        ("gen_ai.usage.output_tokens", i(200)),
        ("gen_ai.usage.cache_read.input_tokens", i(9000)),
    ];
    let mut openllmetry = SpanSpec::new("anthropic.chat", &common)
        .trace(trace)
        .id(2)
        .parent(1);
    openllmetry
        .attrs
        .push(("gen_ai.usage.cache_creation.input_tokens".into(), i(1000)));
    let mut sdk = SpanSpec::new("anthropic.messages.create", &common)
        .trace(trace)
        .id(3)
        .parent(1)
        .scope("com.anthropic.sdk.python");
    for (k, v) in [
        ("gen_ai.usage.cache_write.input_tokens", 1000),
        (
            "anthropic.usage.cache_creation.ephemeral_5m_input_tokens",
            0,
        ),
        (
            "anthropic.usage.cache_creation.ephemeral_1h_input_tokens",
            1000,
        ),
    ] {
        sdk.attrs.push((k.into(), i(v)));
    }
    [openllmetry, sdk]
}
