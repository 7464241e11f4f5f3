//! Shared fixtures for integration tests.
#![allow(dead_code)]

use tollgate::otlp::collector::trace::v1::ExportTraceServiceRequest;
use tollgate::otlp::common::v1::any_value::Value;
use tollgate::otlp::common::v1::{
    AnyValue, ArrayValue, InstrumentationScope, KeyValue, KeyValueList,
};
use tollgate::otlp::resource::v1::Resource;
use tollgate::otlp::trace::v1::span::{Event, Link};
use tollgate::otlp::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};

pub fn kv(key: &str, value: Value) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

pub fn s(v: &str) -> Value {
    Value::StringValue(v.into())
}

/// A span that uses every field and every attribute value type.
pub fn rich_span(n: u8) -> Span {
    Span {
        trace_id: vec![n, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15],
        span_id: vec![n, 2, 3, 4, 5, 6, 7, 8],
        trace_state: "vendor=1".into(),
        parent_span_id: vec![9, 9, 9, 9, 9, 9, 9, n],
        flags: 0x101,
        name: format!("chat claude-sonnet-4-6 #{n}"),
        kind: 3,
        start_time_unix_nano: 1_764_000_000_000_000_000 + u64::from(n),
        end_time_unix_nano: 1_764_000_001_500_000_000,
        attributes: vec![
            kv("gen_ai.provider.name", s("anthropic")),
            kv("gen_ai.usage.input_tokens", Value::IntValue(2100)),
            kv("ratio", Value::DoubleValue(0.25)),
            kv("flag", Value::BoolValue(true)),
            kv("blob", Value::BytesValue(vec![0, 255, 7])),
            kv(
                "arr",
                Value::ArrayValue(ArrayValue {
                    values: vec![
                        AnyValue {
                            value: Some(s("a")),
                        },
                        AnyValue {
                            value: Some(Value::IntValue(-5)),
                        },
                        AnyValue { value: None },
                    ],
                }),
            ),
            kv(
                "map",
                Value::KvlistValue(KeyValueList {
                    values: vec![kv("inner", s("x")), kv("n", Value::IntValue(1))],
                }),
            ),
            KeyValue {
                key: "empty".into(),
                value: None,
                ..Default::default()
            },
        ],
        dropped_attributes_count: 2,
        events: vec![Event {
            time_unix_nano: 1_764_000_000_500_000_000,
            name: "exception".into(),
            attributes: vec![kv("exception.message", s("boom"))],
            dropped_attributes_count: 1,
        }],
        dropped_events_count: 3,
        links: vec![Link {
            trace_id: vec![7; 16],
            span_id: vec![8; 8],
            trace_state: "k=v".into(),
            attributes: vec![kv("link.kind", s("follows"))],
            dropped_attributes_count: 4,
            flags: 1,
        }],
        dropped_links_count: 5,
        status: Some(Status {
            message: "bad".into(),
            code: 2,
        }),
    }
}

/// A request with two resources, three scopes and `spans_per_scope` spans each.
pub fn rich_request(spans_per_scope: u8) -> ExportTraceServiceRequest {
    let scope = |name: &str, base: u8| ScopeSpans {
        scope: Some(InstrumentationScope {
            name: name.into(),
            version: "1.2.3".into(),
            attributes: vec![kv("scope.attr", s("v"))],
            dropped_attributes_count: 1,
        }),
        spans: (0..spans_per_scope).map(|i| rich_span(base + i)).collect(),
        schema_url: "https://opentelemetry.io/schemas/1.30.0".into(),
    };
    ExportTraceServiceRequest {
        resource_spans: vec![
            ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![
                        kv("service.name", s("checkout-agent")),
                        kv("deployment.environment", s("prod")),
                    ],
                    dropped_attributes_count: 6,
                    ..Default::default()
                }),
                scope_spans: vec![
                    scope("openinference", 0),
                    scope("com.anthropic.sdk.python", 50),
                ],
                schema_url: "https://opentelemetry.io/schemas/1.30.0".into(),
            },
            ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![kv("service.name", s("search-agent"))],
                    ..Default::default()
                }),
                scope_spans: vec![scope("ai", 100)],
                schema_url: String::new(),
            },
        ],
    }
}
