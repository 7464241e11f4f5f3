//! Every real emitter's spans, as the library emitted them (`tests/fixtures/emitters/*.json`,
//! recorded by `tests/e2e/dump_emitters.py` against the fake LLM APIs), priced by tollgate:
//! each call exactly once, to the nano-dollar the end-to-end suite's price table gives for the
//! fake server's usage (`calls` in the fixture), aggregates and usage-less spans unpriced and
//! not counted, and each span read with the semantics of its row of the emitter table.

mod llm_support;

use std::collections::{BTreeMap, HashMap};

use bytes::Bytes;
use prost::Message;
use serde_json::Value as J;
use tollgate::llm::source::Emitter;
use tollgate::llm::{Enricher, LlmOutcome, PricingConfig, PricingStatus};
use tollgate::otlp::collector::trace::v1::ExportTraceServiceRequest;
use tollgate::otlp::common::v1::any_value::Value;
use tollgate::otlp::common::v1::{AnyValue, ArrayValue, InstrumentationScope, KeyValue};
use tollgate::otlp::resource::v1::Resource;
use tollgate::otlp::trace::v1::{ResourceSpans, ScopeSpans, Span};

/// `tests/e2e/expected.py`'s `PRICES`, as that suite configures them.
const PRICES: &str = r#"
builtin = false
[[models]]
name = "claude-sonnet-4-6"
provider = "anthropic"
match = ["claude-sonnet-4-6*"]
input = 3.00
output = 15.00
cache_read = 0.30
cache_write = 3.75
cache_write_1h = 6.00
[[models]]
name = "claude-haiku-4-5"
provider = "anthropic"
match = ["claude-haiku-4-5*"]
input = 1.00
output = 5.00
cache_read = 0.10
cache_write = 1.25
cache_write_1h = 2.00
[[models]]
name = "gpt-4.1"
provider = "openai"
match = ["gpt-4.1-2*"]
input = 2.00
output = 8.00
cache_read = 0.50
[[models]]
name = "o4-mini"
provider = "openai"
match = ["o4-mini-2*"]
input = 1.10
output = 4.40
cache_read = 0.275
"#;

/// nano-USD per token: (input, output, cache read, 5 m write, 1 h write).
fn price(model: &str) -> (i64, i64, i64, i64, i64) {
    if model.starts_with("claude-sonnet-4-6") {
        (3000, 15000, 300, 3750, 6000)
    } else if model.starts_with("claude-haiku-4-5") {
        (1000, 5000, 100, 1250, 2000)
    } else if model.starts_with("gpt-4.1") {
        (2000, 8000, 500, 0, 0)
    } else if model.starts_with("o4-mini") {
        (1100, 4400, 275, 0, 0)
    } else {
        panic!("no price for {model}")
    }
}

/// What an emitter reports of a call, where it does not report everything the API returned.
#[derive(Clone, Copy)]
struct Limits {
    /// The 1-hour cache-write split is written nowhere: 1-hour writes are priced at the 5-minute
    /// rate (and the span says so).
    no_write_split: bool,
    /// Cached prompt tokens are not reported: they are priced as uncached input.
    no_cache_read: bool,
}

/// One fake-server call: (uncached input, cache read, 5 m write, 1 h write, output) and the cost
/// the e2e price table gives it, given what the emitter could report.
fn expected_call(call: &J, limits: Limits) -> ([u64; 5], i64) {
    let u = &call["usage"];
    let n = |v: &J| v.as_u64().unwrap();
    let mut t = if call["api"] == "anthropic" {
        [
            n(&u["input_tokens"]),
            n(&u["cache_read_input_tokens"]),
            n(&u["cache_creation"]["ephemeral_5m_input_tokens"]),
            n(&u["cache_creation"]["ephemeral_1h_input_tokens"]),
            n(&u["output_tokens"]),
        ]
    } else {
        let cached = n(&u["prompt_tokens_details"]["cached_tokens"]);
        [
            n(&u["prompt_tokens"]) - cached,
            cached,
            0,
            0,
            n(&u["completion_tokens"]),
        ]
    };
    if limits.no_write_split {
        t[2] += t[3];
        t[3] = 0;
    }
    if limits.no_cache_read {
        t[0] += t[1];
        t[1] = 0;
    }
    let (i, o, r, w5, w1) = price(call["model"].as_str().unwrap());
    let cost =
        t[0] as i64 * i + t[1] as i64 * r + t[2] as i64 * w5 + t[3] as i64 * w1 + t[4] as i64 * o;
    (t, cost)
}

fn any_value(v: &J) -> Option<Value> {
    Some(match v {
        J::String(s) => Value::StringValue(s.clone()),
        J::Bool(b) => Value::BoolValue(*b),
        J::Number(n) if n.is_i64() => Value::IntValue(n.as_i64()?),
        J::Number(n) => Value::DoubleValue(n.as_f64()?),
        J::Array(a) => Value::ArrayValue(ArrayValue {
            values: a
                .iter()
                .filter_map(|x| any_value(x).map(|v| AnyValue { value: Some(v) }))
                .collect(),
        }),
        _ => return None,
    })
}

fn kvs(m: &J) -> Vec<KeyValue> {
    m.as_object()
        .map(|o| {
            o.iter()
                .filter_map(|(k, v)| {
                    Some(KeyValue {
                        key: k.clone(),
                        value: Some(AnyValue {
                            value: Some(any_value(v)?),
                        }),
                        ..KeyValue::default()
                    })
                })
                .collect()
        })
        .unwrap_or_default()
}

fn id_of(r: &str, len: usize) -> Vec<u8> {
    let n: u64 = r[1..].parse::<u64>().unwrap() + 1;
    let mut v = vec![0u8; len];
    v[len - 8..].copy_from_slice(&n.to_be_bytes());
    v
}

const T0: u64 = 1_795_564_800_000_000_000;

/// The fixture's spans as OTLP spans (one per entry, with its resource and scope).
fn spans(fixture: &J) -> Vec<(J, InstrumentationScope, Span)> {
    fixture["spans"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
        .map(|(i, s)| {
            // Older fixtures have no times: give each span its own window.
            let start = s["start_offset_ns"]
                .as_u64()
                .unwrap_or(i as u64 * 1_000_000);
            let end = s["end_offset_ns"].as_u64().unwrap_or(start + 1_000);
            let span = Span {
                trace_id: id_of(s["trace"].as_str().unwrap(), 16),
                span_id: id_of(s["ref"].as_str().unwrap(), 8),
                parent_span_id: s["parent"]
                    .as_str()
                    .map(|p| id_of(p, 8))
                    .unwrap_or_default(),
                name: s["name"].as_str().unwrap().to_string(),
                kind: 3,
                start_time_unix_nano: T0 + start,
                end_time_unix_nano: T0 + end,
                attributes: kvs(&s["attributes"]),
                ..Span::default()
            };
            let scope = InstrumentationScope {
                name: s["scope"]["name"].as_str().unwrap_or("").to_string(),
                version: s["scope"]["version"].as_str().unwrap_or("").to_string(),
                ..InstrumentationScope::default()
            };
            (s["resource"].clone(), scope, span)
        })
        .collect()
}

fn encode(spans: &[(J, InstrumentationScope, Span)]) -> Bytes {
    let req = ExportTraceServiceRequest {
        resource_spans: spans
            .iter()
            .map(|(res, scope, span)| ResourceSpans {
                resource: Some(Resource {
                    attributes: kvs(res),
                    ..Resource::default()
                }),
                scope_spans: vec![ScopeSpans {
                    scope: Some(scope.clone()),
                    spans: vec![span.clone()],
                    ..ScopeSpans::default()
                }],
                ..ResourceSpans::default()
            })
            .collect(),
    };
    Bytes::from(req.encode_to_vec())
}

fn enricher() -> Enricher {
    let cfg: PricingConfig = toml::from_str(PRICES).unwrap();
    Enricher::new(&cfg).unwrap()
}

fn load(name: &str) -> J {
    let path = format!(
        "{}/tests/fixtures/emitters/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Enriches the fixture's spans in one request; the outcomes of its LLM spans with span names.
fn outcomes(
    enricher: &Enricher,
    spans: &[(J, InstrumentationScope, Span)],
) -> Vec<(String, LlmOutcome)> {
    let run = llm_support::run(enricher, &encode(spans));
    run.outcomes
        .into_iter()
        .zip(spans)
        .filter_map(|(o, (_, _, s))| o.map(|o| (s.name.clone(), o)))
        .collect()
}

/// Checks one emitter's fixture. `emitters`: the rows its priced spans may be read with (the
/// framework's, or the Anthropic SDK's when the SDK also reported the call).
fn check(name: &str, emitters: &[Emitter], limits: Limits) {
    let fixture = load(name);
    let calls = fixture["calls"].as_array().unwrap();
    assert!(!calls.is_empty(), "{name}: the fixture records calls");
    let expected: Vec<([u64; 5], i64)> = calls.iter().map(|c| expected_call(c, limits)).collect();
    let spans = spans(&fixture);
    let got = outcomes(&enricher(), &spans);

    let counted: Vec<&(String, LlmOutcome)> = got.iter().filter(|(_, o)| o.is_llm_call).collect();
    assert_eq!(
        counted.len(),
        calls.len(),
        "{name}: llm calls counted = calls made: {got:#?}"
    );
    let mut priced: Vec<i64> = counted
        .iter()
        .map(|(n, o)| {
            assert_eq!(o.status, PricingStatus::Priced, "{name}: {n} {o:#?}");
            assert!(
                o.emitter.is_some_and(|e| emitters.contains(&e)),
                "{name}: {n} read as {:?}",
                o.emitter
            );
            o.total_nanos()
        })
        .collect();
    let mut want: Vec<i64> = expected.iter().map(|e| e.1).collect();
    priced.sort_unstable();
    want.sort_unstable();
    assert_eq!(priced, want, "{name}: each call priced once, exactly");
    // Cache-hit ratio: the exact token counts behind it.
    let by_cost: HashMap<i64, [u64; 5]> = expected.iter().map(|e| (e.1, e.0)).collect();
    for (n, o) in &counted {
        let u = o.usage.unwrap();
        let t = by_cost[&o.total_nanos()];
        assert_eq!(
            (
                u.input,
                u.cache_read,
                u.cache_write_5m,
                u.cache_write_1h,
                u.output
            ),
            (t[0], t[1], t[2], t[3], t[4]),
            "{name}: {n}"
        );
        assert_eq!(o.cache_read_tokens(), t[1]);
        assert_eq!(o.input_with_cache_tokens(), t[0] + t[1] + t[2] + t[3]);
    }
    // Everything else is unpriced: aggregates, second reports, request spans without usage.
    for (n, o) in got.iter().filter(|(_, o)| !o.is_llm_call) {
        assert!(o.cost.is_none(), "{name}: {n} carries a cost");
        assert!(
            matches!(o.status, PricingStatus::Aggregate | PricingStatus::NoUsage),
            "{name}: {n} {:?}",
            o.status
        );
    }
    // The roll-up sums the calls.
    let total: i64 = counted.iter().map(|(_, o)| o.total_nanos()).sum();
    assert_eq!(total, want.iter().sum::<i64>(), "{name}: task total");

    // Each span in its own request, in reverse order (the exporter sent them apart): still one
    // counted call per call made.
    let e = enricher();
    let mut apart = 0;
    for one in spans.iter().rev() {
        apart += outcomes(&e, std::slice::from_ref(one))
            .iter()
            .filter(|(_, o)| o.is_llm_call && o.status == PricingStatus::Priced)
            .count();
    }
    assert_eq!(
        apart,
        calls.len(),
        "{name}: spans sent apart, each call priced once"
    );
}

const ALL: Limits = Limits {
    no_write_split: false,
    no_cache_read: false,
};
const NO_SPLIT: Limits = Limits {
    no_write_split: true,
    no_cache_read: false,
};

#[test]
fn anthropic_sdk_under_a_hand_wrapper() {
    check("ts_anthropic_wrapper", &[Emitter::AnthropicSdk], ALL);
}

#[test]
fn openinference_anthropic() {
    check(
        "py_openinference_anthropic",
        &[Emitter::AnthropicSdk, Emitter::OpenInference],
        ALL,
    );
}

#[test]
fn openllmetry_python_anthropic() {
    check(
        "py_openllmetry_anthropic",
        &[Emitter::AnthropicSdk, Emitter::OpenLlmetryPython],
        ALL,
    );
}

#[test]
fn openinference_openai() {
    check("py_openinference_openai", &[Emitter::OpenInference], ALL);
}

#[test]
fn vercel_ai_6() {
    check("vercel_ai", &[Emitter::VercelAi], ALL);
}

/// LangChain's `ChatAnthropic` span (OpenInference) and the Anthropic SDK span of the same call
/// are cousins in one trace (the SDK span hangs off the task span): linked by nested windows.
#[test]
fn langchain_with_openinference() {
    check(
        "py_langchain_anthropic",
        &[Emitter::AnthropicSdk, Emitter::OpenInference],
        ALL,
    );
}

/// `opentelemetry-instrumentation-openai-v2` writes no cached-token count for Chat Completions.
#[test]
fn opentelemetry_openai_v2() {
    check(
        "py_otel_openai_v2",
        &[Emitter::OtelGenAi],
        Limits {
            no_write_split: false,
            no_cache_read: true,
        },
    );
}

#[test]
fn openai_agents_sdk_with_openinference() {
    check("py_openai_agents", &[Emitter::OpenInference], ALL);
}

/// Pydantic AI's `chat` span and the SDK's child span of one call; `invoke_agent` carries
/// `gen_ai.aggregated_usage.*`.
#[test]
fn pydantic_ai() {
    check(
        "py_pydantic_ai_anthropic",
        &[Emitter::AnthropicSdk, Emitter::PydanticAi],
        ALL,
    );
}

/// Strands writes input including cache and no 1-hour split (Anthropic SDK 0.x: no SDK spans).
#[test]
fn strands_agents() {
    check("py_strands_anthropic", &[Emitter::Strands], NO_SPLIT);
}

/// Logfire: the 1-hour split from `gen_ai.usage.raw`; a streamed call's request span has no
/// usage and is not a call.
#[test]
fn logfire_anthropic_and_openai() {
    check("py_logfire", &[Emitter::Logfire], ALL);
}

/// OpenLLMetry for Node writes the raw Anthropic input (cache excluded) as
/// `gen_ai.usage.input_tokens`.
#[test]
fn openllmetry_node_anthropic() {
    check(
        "node_traceloop_anthropic",
        &[Emitter::OpenLlmetryNode],
        NO_SPLIT,
    );
}

/// OpenLIT 1.45 (`telemetry.sdk.name = openlit`): for Anthropic, `gen_ai.usage.input_tokens` is the
/// raw API input (cache excluded) and no 1-hour split; for OpenAI, cached tokens inside the prompt.
/// Its httpx `POST` spans carry no usage; its own `gen_ai.usage.cost` is replaced.
#[test]
fn openlit_anthropic_and_openai() {
    check("py_openlit", &[Emitter::OpenLit], NO_SPLIT);
}

/// The AI SDK 7 through `@ai-sdk/otel`: GenAI names only, input including cache, no 1-hour split.
#[test]
fn vercel_ai_7() {
    check("vercel_ai_7", &[Emitter::VercelAiOtel], NO_SPLIT);
}

/// Every fixture in the directory is checked by a test above.
#[test]
fn every_fixture_has_a_test() {
    let dir = format!("{}/tests/fixtures/emitters", env!("CARGO_MANIFEST_DIR"));
    let src = include_str!("llm_emitters.rs");
    let names: BTreeMap<String, bool> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| {
            let n = e.ok()?.file_name().into_string().ok()?;
            let stem = n.strip_suffix(".json")?.to_string();
            let tested =
                src.contains(&format!("check(\"{stem}\"")) || src.contains(&format!("\"{stem}\","));
            Some((stem, tested))
        })
        .collect();
    let untested: Vec<_> = names.iter().filter(|(_, t)| !**t).collect();
    assert!(untested.is_empty(), "{untested:?}");
}
