//! Tests of `testdata`.

use super::*;
use crate::wire::{scan, SpanAttrs, SpanRef};

#[test]
fn request_has_exactly_the_asked_spans_and_scans() {
    let mut g = TraceGen::new(7);
    for n in [1, 2, 37, 500] {
        let buf = g.encoded(n);
        let index = scan(&buf).expect("generated request scans");
        assert_eq!(index.spans.len(), n);
        assert_eq!(index.resources.len(), 1);
        assert_eq!(index.scopes.len(), 1);
    }
}

#[test]
fn same_seed_same_bytes_other_seed_other_ids() {
    let a = TraceGen::new(1).encoded(100);
    let b = TraceGen::new(1).encoded(100);
    let c = TraceGen::new(2).encoded(100);
    assert_eq!(a, b);
    assert_ne!(a, c);
}

#[test]
fn shape_matches_the_benchmark_spec() {
    let mut g = TraceGen::new(42);
    let (req, roles) = g.request_with_roles(500);
    let buf = req.encode_to_vec();
    let per_span = buf.len() / 500;
    assert!((450..=750).contains(&per_span), "{per_span} bytes per span");
    let llm = roles.iter().filter(|r| r.is_llm()).count();
    assert!((100..=150).contains(&llm), "{llm} LLM spans of 500");
    let spans = &req.resource_spans[0].scope_spans[0].spans;
    let attrs: usize = spans.iter().map(|s| s.attributes.len()).sum();
    assert!(
        (10..=13).contains(&(attrs / 500)),
        "{} attributes per span",
        attrs / 500
    );
    for role in [
        SpanRole::Task,
        SpanRole::Step,
        SpanRole::Tool,
        SpanRole::LlmGenAi,
        SpanRole::LlmOpenInference,
        SpanRole::LlmCustom,
    ] {
        assert!(roles.contains(&role), "{role:?} missing");
    }
}

#[test]
fn llm_spans_carry_the_recognised_attributes() {
    let mut g = TraceGen::new(3);
    let (req, roles) = g.request_with_roles(300);
    let buf = Bytes::from(req.encode_to_vec());
    let index = scan(&buf).expect("scans");
    for (i, role) in roles.iter().enumerate() {
        let span = SpanRef::new(&buf, &index, i);
        let key = match role {
            SpanRole::LlmGenAi => "gen_ai.usage.cache_read.input_tokens",
            SpanRole::LlmOpenInference => "llm.token_count.prompt",
            SpanRole::LlmCustom => "llm.input_tokens",
            SpanRole::Task => "agent.task.id",
            SpanRole::Step => "agent.step.index",
            SpanRole::Tool => "gen_ai.tool.name",
        };
        assert!(
            span.attribute(key).is_some(),
            "span {i} ({role:?}) lacks {key}"
        );
        if *role == SpanRole::LlmGenAi {
            let provider = span
                .attribute("gen_ai.provider.name")
                .and_then(|v| v.as_str());
            assert_eq!(provider, Some("anthropic"));
            assert_eq!(span.kind(), SpanKind::Client as i32);
        }
        if *role == SpanRole::Task {
            assert!(span.parent_span_id().is_empty());
        } else {
            assert_eq!(span.parent_span_id().len(), 8);
        }
    }
}
