//! Recognise + price per span: an LLM span (priced) and a non-LLM span (untouched).

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion};
use prost::Message;
use std::hint::black_box;
use tollgate::llm::{Enricher, PricingConfig, PricingStatus};
use tollgate::otlp::collector::trace::v1::ExportTraceServiceRequest;
use tollgate::otlp::common::v1::any_value::Value;
use tollgate::otlp::common::v1::{AnyValue, KeyValue};
use tollgate::otlp::trace::v1::{ResourceSpans, ScopeSpans, Span};
use tollgate::wire::{self, SpanRef};

fn kv(k: &str, v: Value) -> KeyValue {
    KeyValue {
        key: k.into(),
        value: Some(AnyValue { value: Some(v) }),
        ..KeyValue::default()
    }
}

/// Spans in each request: distinct span ids, so the call registry (capacity below) has forgotten
/// a span before it comes round again and every LLM span is priced, not deduplicated.
const SPANS: usize = 4096;

fn body(attrs: Vec<KeyValue>, name: &str) -> Bytes {
    let spans = (0..SPANS as u64)
        .map(|i| Span {
            trace_id: vec![1; 16],
            span_id: (i + 1).to_be_bytes().to_vec(),
            name: name.into(),
            start_time_unix_nano: 1_795_564_800_000_000_000,
            end_time_unix_nano: 1_795_564_801_000_000_000,
            attributes: attrs.clone(),
            ..Span::default()
        })
        .collect();
    let req = ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![ScopeSpans {
                spans,
                ..ScopeSpans::default()
            }],
            ..ResourceSpans::default()
        }],
    };
    Bytes::from(req.encode_to_vec())
}

fn llm_span() -> Bytes {
    use Value::{IntValue as I, StringValue as S};
    body(
        vec![
            kv("gen_ai.provider.name", S("anthropic".into())),
            kv("gen_ai.operation.name", S("chat".into())),
            kv("gen_ai.request.model", S("claude-sonnet-4-6".into())),
            kv(
                "gen_ai.response.model",
                S("claude-sonnet-4-6-20260101".into()),
            ),
            kv("gen_ai.usage.input_tokens", I(2100)),
            kv("gen_ai.usage.output_tokens", I(340)),
            kv("gen_ai.usage.cache_read.input_tokens", I(800)),
            kv("gen_ai.usage.cache_write.input_tokens", I(100)),
            kv("server.address", S("api.anthropic.com".into())),
            kv("http.response.status_code", I(200)),
        ],
        "chat claude-sonnet-4-6",
    )
}

fn plain_span() -> Bytes {
    use Value::{IntValue as I, StringValue as S};
    body(
        vec![
            kv("http.request.method", S("GET".into())),
            kv("url.path", S("/api/v1/users".into())),
            kv("http.response.status_code", I(200)),
            kv("server.address", S("users.internal".into())),
            kv("network.protocol.version", S("1.1".into())),
            kv("user_agent.original", S("curl/8.0".into())),
            kv("client.address", S("10.0.0.1".into())),
            kv("db.system", S("postgresql".into())),
        ],
        "GET /api/v1/users",
    )
}

fn bench(c: &mut Criterion) {
    let config = PricingConfig {
        dedupe_capacity: SPANS / 4,
        ..PricingConfig::default()
    };
    let enricher = Enricher::new(&config).expect("builtin table");
    let llm = llm_span();
    let llm_index = wire::scan(&llm).expect("valid");
    let plain = plain_span();
    let plain_index = wire::scan(&plain).expect("valid");

    let first = enricher.enrich(&SpanRef::new(&llm, &llm_index, 0));
    assert_eq!(first.map(|e| e.outcome.status), Some(PricingStatus::Priced));
    assert!(enricher
        .enrich(&SpanRef::new(&plain, &plain_index, 0))
        .is_none());

    let mut n = 1;
    c.bench_function("enrich/llm_span", |b| {
        b.iter(|| {
            n = (n + 1) % SPANS;
            black_box(enricher.enrich(&SpanRef::new(&llm, &llm_index, n)))
        })
    });
    // Baseline: the attribute walk alone (the wire view's cost, which enrich builds on).
    let mut k = 0;
    c.bench_function("wire/attribute_walk_non_llm_span", |b| {
        b.iter(|| {
            k = (k + 1) % SPANS;
            let mut n = 0usize;
            SpanRef::new(&plain, &plain_index, k).for_each_attribute_field(&mut |key, _, _| {
                n += key.len();
            });
            black_box(n)
        })
    });
    let mut m = 0;
    c.bench_function("enrich/non_llm_span", |b| {
        b.iter(|| {
            m = (m + 1) % SPANS;
            black_box(enricher.enrich(&SpanRef::new(&plain, &plain_index, m)))
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
