//! Acceptance: one model call reported by several spans is priced exactly once.

mod llm_support;

use llm_support::*;
use tollgate::llm::{Enricher, PricingConfig, PricingStatus};

/// An agent trace for ONE Anthropic call (uncached 1200, read 800, write 100, output 340):
/// an `invoke_agent` root repeating the usage, the app's hand-written wrapper span (raw Anthropic
/// usage, input excludes cache) and the Anthropic SDK's own span (input includes cache).
fn agent_trace(trace: u8) -> Vec<SpanSpec> {
    let root = SpanSpec::new(
        "invoke_agent checkout",
        &[
            ("gen_ai.operation.name", s("invoke_agent")),
            ("gen_ai.agent.name", s("checkout")),
            ("gen_ai.request.model", s("claude-sonnet-4-6")),
            ("gen_ai.usage.input_tokens", i(2100)),
            ("gen_ai.usage.output_tokens", i(340)),
        ],
    )
    .trace(trace)
    .id(1);
    let wrapper = SpanSpec::new(
        "llm_call",
        &[
            ("llm.model", s("claude-sonnet-4-6")),
            ("llm.input_tokens", i(1200)),
            ("llm.output_tokens", i(340)),
            ("llm.cache_read_input_tokens", i(800)),
            ("llm.cache_creation_input_tokens", i(100)),
        ],
    )
    .trace(trace)
    .id(2)
    .parent(1);
    let sdk = SpanSpec::new(
        "chat claude-sonnet-4-6",
        &[
            ("gen_ai.provider.name", s("anthropic")),
            ("gen_ai.request.model", s("claude-sonnet-4-6")),
            ("gen_ai.response.model", s("claude-sonnet-4-6-20260101")),
            ("gen_ai.usage.input_tokens", i(2100)),
            ("gen_ai.usage.output_tokens", i(340)),
            ("gen_ai.usage.cache_read.input_tokens", i(800)),
            ("gen_ai.usage.cache_write.input_tokens", i(100)),
        ],
    )
    .trace(trace)
    .id(3)
    .parent(2)
    .scope("com.anthropic.sdk.typescript");
    vec![root, wrapper, sdk]
}

/// 1200 × 3000 + 800 × 300 + 100 × 3750 + 340 × 15 000 nano-USD.
const ONE_CALL: i64 = 9_315_000;

fn priced_once(runs: &[Run]) -> (i64, usize) {
    let outcomes: Vec<_> = runs
        .iter()
        .flat_map(|r| r.outcomes.iter().flatten())
        .collect();
    let calls: Vec<_> = outcomes.iter().filter(|o| o.is_llm_call).collect();
    let priced = outcomes
        .iter()
        .filter(|o| o.status == PricingStatus::Priced)
        .count();
    assert_eq!(calls.len(), 1, "exactly one call counted: {outcomes:#?}");
    (calls.iter().map(|o| o.total_nanos()).sum(), priced)
}

#[test]
fn agent_root_wrapper_and_sdk_span_in_one_request_priced_once_either_order() {
    for reverse in [false, true] {
        let enricher = Enricher::new(&PricingConfig::default()).unwrap();
        let mut spans = agent_trace(1);
        if reverse {
            spans.reverse();
        }
        let r = run(&enricher, &request(&spans, &[]));
        let (total, priced) = priced_once(std::slice::from_ref(&r));
        assert_eq!(total, ONE_CALL);
        assert_eq!(priced, 1);
        // Every span carries a status; only the priced one carries a cost.
        for n in 0..3 {
            let status = r.string(n, "tollgate.pricing.status").unwrap();
            assert!(status == "priced" || status == "aggregate", "{status}");
            assert_eq!(r.double(n, "llm.cost.total").is_some(), status == "priced");
        }
        // The one that arrived first among wrapper and SDK span is the priced one.
        let first_call = if reverse {
            "chat claude-sonnet-4-6"
        } else {
            "llm_call"
        };
        let priced_name = (0..3)
            .find(|n| r.string(*n, "tollgate.pricing.status").as_deref() == Some("priced"))
            .map(|n| r.span(n).name.clone());
        assert_eq!(
            priced_name.as_deref(),
            Some(first_call),
            "reverse = {reverse}"
        );
        // Aggregate spans carry only the status.
        let root = (0..3)
            .find(|n| r.span(*n).name.starts_with("invoke_agent"))
            .unwrap();
        assert!(r
            .attrs(root)
            .keys()
            .all(|k| !k.starts_with("tollgate.pricing.") || k == "tollgate.pricing.status"));
        assert_eq!(r.double(root, "llm.cache_hit_ratio"), None);
    }
}

#[test]
fn spans_of_one_call_in_separate_requests_priced_once_either_order() {
    for order in [[0usize, 1, 2], [2, 1, 0], [1, 2, 0], [2, 0, 1]] {
        let enricher = Enricher::new(&PricingConfig::default()).unwrap();
        let spans = agent_trace(2);
        let runs: Vec<Run> = order
            .iter()
            .map(|&n| run(&enricher, &request(&[spans[n].clone()], &[])))
            .collect();
        let (total, priced) = priced_once(&runs);
        assert_eq!((total, priced), (ONE_CALL, 1), "order {order:?}");
    }
}

#[test]
fn openllmetry_and_sdk_spans_in_separate_traces_linked_by_response_id() {
    let enricher = Enricher::new(&PricingConfig::default()).unwrap();
    let openllmetry = SpanSpec::new(
        "anthropic.chat",
        &[
            ("gen_ai.system", s("Anthropic")),
            ("gen_ai.request.model", s("claude-sonnet-4-6")),
            ("gen_ai.response.id", s("msg_01ABC")),
            ("gen_ai.usage.input_tokens", i(2100)),
            ("gen_ai.usage.output_tokens", i(340)),
            ("gen_ai.usage.cache_read.input_tokens", i(800)),
            ("gen_ai.usage.cache_creation.input_tokens", i(100)),
        ],
    )
    .trace(10);
    let mut sdk = agent_trace(11).remove(2);
    sdk.attrs
        .push(("gen_ai.response.id".into(), s("msg_01ABC")));
    let runs = vec![
        run(&enricher, &request(&[sdk], &[])),
        run(&enricher, &request(&[openllmetry], &[])),
    ];
    assert_eq!(priced_once(&runs), (ONE_CALL, 1));
}

#[test]
fn two_real_calls_under_one_wrapper_are_both_priced() {
    let enricher = Enricher::new(&PricingConfig::default()).unwrap();
    let call = |id: u8, input: i64| {
        SpanSpec::new(
            "chat",
            &[
                ("gen_ai.request.model", s("claude-sonnet-4-6")),
                ("gen_ai.usage.input_tokens", i(input)),
                ("gen_ai.usage.output_tokens", i(10)),
            ],
        )
        .trace(20)
        .id(id)
        .parent(1)
    };
    let r = run(&enricher, &request(&[call(2, 100), call(3, 200)], &[]));
    let priced = r
        .outcomes
        .iter()
        .flatten()
        .filter(|o| o.status == PricingStatus::Priced)
        .count();
    assert_eq!(priced, 2);
}

#[test]
fn vercel_outer_span_is_aggregate_inner_is_priced() {
    let enricher = Enricher::new(&PricingConfig::default()).unwrap();
    let usage = [
        ("ai.model.id", s("gpt-4o-mini")),
        ("ai.model.provider", s("openai.chat")),
        ("ai.usage.inputTokens", i(1000)),
        ("ai.usage.outputTokens", i(100)),
    ];
    let outer = SpanSpec::new("ai.streamText", &usage).trace(30).id(1);
    let inner = SpanSpec::new("ai.streamText.doStream", &usage)
        .trace(30)
        .id(2)
        .parent(1);
    let r = run(&enricher, &request(&[outer, inner], &[]));
    assert_eq!(
        r.string(0, "tollgate.pricing.status").as_deref(),
        Some("aggregate")
    );
    assert_eq!(
        r.string(1, "tollgate.pricing.status").as_deref(),
        Some("priced")
    );
    // 1000 × 150 + 100 × 600 = 210 000 nano-USD.
    assert_eq!(r.outcomes[1].as_ref().unwrap().total_nanos(), 210_000);
}

/// The Anthropic TypeScript SDK's own span (as `@anthropic-ai/sdk` 1.14 emits it, see
/// `tests/fixtures/emitters/ts_anthropic_wrapper.json`) gives the cache-write lifetime split only
/// as `anthropic.usage.cache_creation.ephemeral_{5m,1h}_input_tokens`; the hand wrapper around it
/// gives the total write. The 1-hour writes are priced at the 1-hour rate, and the wrapper is
/// still recognised as the same call.
#[test]
fn anthropic_sdk_write_split_is_priced_and_wrapper_still_deduped() {
    let enricher = Enricher::new(&PricingConfig::default()).unwrap();
    let sdk = SpanSpec::new(
        "anthropic.messages.create",
        &[
            ("gen_ai.provider.name", s("anthropic")),
            ("gen_ai.request.model", s("claude-sonnet-4-6")),
            ("gen_ai.response.model", s("claude-sonnet-4-6")),
            ("gen_ai.response.id", s("msg_fake_1h")),
            ("gen_ai.usage.input_tokens", i(80_000)),
            ("gen_ai.usage.output_tokens", i(4_000)),
            ("gen_ai.usage.cache_read.input_tokens", i(60_000)),
            ("gen_ai.usage.cache_write.input_tokens", i(10_000)),
            (
                "anthropic.usage.cache_creation.ephemeral_5m_input_tokens",
                i(0),
            ),
            (
                "anthropic.usage.cache_creation.ephemeral_1h_input_tokens",
                i(10_000),
            ),
        ],
    )
    .trace(40)
    .id(3)
    .parent(2)
    .scope("com.anthropic.sdk.typescript");
    let wrapper = SpanSpec::new(
        "llm.call",
        &[
            ("llm.vendor", s("anthropic")),
            ("llm.model", s("claude-sonnet-4-6")),
            ("llm.input_tokens", i(10_000)),
            ("llm.output_tokens", i(4_000)),
            ("llm.cache_read_input_tokens", i(60_000)),
            ("llm.cache_creation_input_tokens", i(10_000)),
        ],
    )
    .trace(40)
    .id(2)
    .parent(1);
    let r = run(&enricher, &request(&[sdk, wrapper], &[]));
    // 10 000 × 3000 + 60 000 × 300 + 10 000 × 6000 (1-hour write) + 4000 × 15 000 nano-USD.
    assert_eq!(priced_once(std::slice::from_ref(&r)), (168_000_000, 1));
    assert_eq!(
        r.string(0, "tollgate.pricing.status").as_deref(),
        Some("priced")
    );
    assert_eq!(
        r.string(1, "tollgate.pricing.status").as_deref(),
        Some("aggregate")
    );
}

/// OpenLLMetry's `anthropic.chat` span and the SDK's sibling span of one call (shared response id),
/// the OpenLLMetry span first in the request: the call is still priced from the SDK span, the one
/// that knows the 1-hour cache writes (as the end-to-end suite's OpenLLMetry agent sometimes
/// exports them).
#[test]
fn report_knowing_the_write_split_is_priced_whatever_the_order_in_the_request() {
    let enricher = Enricher::new(&PricingConfig::default()).unwrap();
    let [openllmetry, sdk] = openllmetry_and_sdk_reports(50, "msg_fake_order");
    let r = run(&enricher, &request(&[openllmetry, sdk], &[]));
    // 400 × 3000 + 9000 × 300 + 1000 × 6000 (1-hour write) + 200 × 15 000 nano-USD.
    assert_eq!(priced_once(std::slice::from_ref(&r)), (12_900_000, 1));
    assert_eq!(
        r.string(0, "tollgate.pricing.status").as_deref(),
        Some("aggregate")
    );
    assert_eq!(
        r.string(1, "tollgate.pricing.status").as_deref(),
        Some("priced")
    );
}
