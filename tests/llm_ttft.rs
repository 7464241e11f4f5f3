//! Time to first token, read from the spans that carry it.
//!
//! - Enrichment: the outcome carries the TTFT of a Vercel AI SDK `doStream` span
//!   (`ai.response.msToFirstChunk`, milliseconds) and of an OTel GenAI span
//!   (`gen_ai.response.time_to_first_chunk`, seconds); a TTFT longer than its span is dropped.
//! - The real binary: a Vercel-style streaming call posted over OTLP/HTTP shows up on `/metrics`
//!   in `tollgate_llm_time_to_first_token_seconds` (count and sum) and in
//!   `tollgate_llm_output_tokens_per_second` (output tokens over the time after the first
//!   chunk); absurd values (longer than the span, negative) are not recorded, the calls still
//!   counted.

mod live_support;
mod llm_support;

use std::time::{SystemTime, UNIX_EPOCH};

use live_support::{client, post_traces, start_tollgate, wait_for};
use llm_support::{i, request, run, s, SpanSpec, V};
use serde_json::{json, Value};
use tollgate::llm::{Enricher, PricingConfig};

fn outcome_ttft(spec: SpanSpec) -> Option<u64> {
    let enricher = Enricher::new(&PricingConfig::default()).expect("default pricing");
    let r = run(
        &enricher,
        &request(&[spec], &[("service.name", s("agent"))]),
    );
    let o = r.outcomes[0].as_ref().expect("an LLM span");
    assert!(o.is_llm_call);
    o.time_to_first_token_ns
}

#[test]
fn outcome_carries_ttft_within_the_span_only() {
    // llm_support spans last 1.5 s.
    let vercel = |ms: V, trace: u8| {
        SpanSpec::new(
            "ai.streamText.doStream",
            &[
                ("ai.model.id", s("claude-sonnet-4-6")),
                ("ai.model.provider", s("anthropic.messages")),
                ("ai.usage.inputTokens", i(40)),
                ("ai.usage.outputTokens", i(120)),
                ("ai.response.msToFirstChunk", ms),
            ],
        )
        .trace(trace)
    };
    assert_eq!(
        outcome_ttft(vercel(V::D(350.0), 81)),
        Some(350_000_000),
        "Vercel milliseconds"
    );
    assert_eq!(
        outcome_ttft(vercel(V::I(1500), 82)),
        Some(1_500_000_000),
        "first chunk at the very end of the span"
    );
    assert_eq!(
        outcome_ttft(vercel(V::I(1501), 83)),
        None,
        "longer than the span"
    );
    let genai = SpanSpec::new(
        "chat gpt-4o",
        &[
            ("gen_ai.operation.name", s("chat")),
            ("gen_ai.request.model", s("gpt-4o")),
            ("gen_ai.usage.input_tokens", i(10)),
            ("gen_ai.usage.output_tokens", i(20)),
            ("gen_ai.response.time_to_first_chunk", V::D(0.125)),
        ],
    )
    .trace(84);
    assert_eq!(outcome_ttft(genai), Some(125_000_000), "GenAI seconds");
}

// === The real binary ===

fn attr(key: &str, value: Value) -> Value {
    json!({ "key": key, "value": value })
}

/// A Vercel AI SDK `streamText` call: the outer `ai.streamText` span (aggregate, no TTFT) and
/// its `ai.streamText.doStream` child, which lasts `span_ms` and carries `ms_to_first_chunk`
/// under both the current and the deprecated name, as the SDK writes them.
fn vercel_stream(
    trace: u8,
    model: &str,
    span_ms: u64,
    ms_to_first_chunk: f64,
    output: u64,
) -> Vec<Value> {
    let end = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_nanos() as u64;
    let start = end - span_ms * 1_000_000;
    let trace_id = format!("{trace:02x}").repeat(16);
    let common = |name: &str| {
        vec![
            attr("operation.name", json!({ "stringValue": name })),
            attr("ai.model.id", json!({ "stringValue": model })),
            attr(
                "ai.model.provider",
                json!({ "stringValue": "anthropic.messages" }),
            ),
            attr("ai.usage.inputTokens", json!({ "intValue": "40" })),
            attr(
                "ai.usage.outputTokens",
                json!({ "intValue": output.to_string() }),
            ),
        ]
    };
    let mut inner = common("ai.streamText.doStream");
    for key in ["ai.response.msToFirstChunk", "ai.stream.msToFirstChunk"] {
        inner.push(attr(key, json!({ "doubleValue": ms_to_first_chunk })));
    }
    let (start, end) = (start.to_string(), end.to_string());
    vec![
        json!({
            "traceId": trace_id, "spanId": "cc".repeat(8), "name": "ai.streamText", "kind": 1,
            "startTimeUnixNano": start, "endTimeUnixNano": end,
            "attributes": common("ai.streamText"),
        }),
        json!({
            "traceId": trace_id, "spanId": "dd".repeat(8), "parentSpanId": "cc".repeat(8),
            "name": "ai.streamText.doStream", "kind": 3,
            "startTimeUnixNano": start, "endTimeUnixNano": end,
            "attributes": inner,
        }),
    ]
}

/// The value of the sample `name{…model="<model>"…}` on a Prometheus text page.
fn sample(page: &str, name: &str, model: &str) -> Option<f64> {
    let label = format!("model=\"{model}\"");
    page.lines().find_map(|line| {
        let rest = line.strip_prefix(name)?.strip_prefix('{')?;
        let (labels, value) = rest.split_once("} ")?;
        labels
            .split(',')
            .any(|l| l == label)
            .then(|| value.trim().parse().ok())
            .flatten()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vercel_stream_feeds_ttft_and_output_rate_on_metrics() {
    let dir = tempfile::tempdir().expect("temp dir");
    let tg = start_tollgate(dir.path(), "").await;

    let spans: Vec<Value> = [
        // 1.35 s call, first chunk after 350 ms: 120 output tokens over 1.0 s = 120 tokens/s.
        vercel_stream(0x71, "tg-stream", 1350, 350.0, 120),
        // First chunk after the span ended, and a negative one: neither is recorded.
        vercel_stream(0x72, "tg-late", 1000, 5000.0, 10),
        vercel_stream(0x73, "tg-negative", 1000, -20.0, 10),
    ]
    .concat();
    let body = json!({ "resourceSpans": [{
        "resource": { "attributes": [attr("service.name", json!({ "stringValue": "chat-ui" }))] },
        "scopeSpans": [{ "scope": { "name": "ai" }, "spans": spans }],
    }]});
    let answer = post_traces(&tg.http, &body).await;
    assert!(answer
        .get("partialSuccess")
        .is_none_or(|p| p.get("rejectedSpans").is_none()));

    let metrics = format!("http://{}/metrics", tg.admin);
    let page = wait_for("the calls on /metrics", async || {
        let page = client()
            .get(&metrics)
            .send()
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        ["tg-stream", "tg-late", "tg-negative"]
            .iter()
            .all(|m| sample(&page, "tollgate_llm_calls_total", m) == Some(1.0))
            .then_some(page)
    })
    .await;

    let ttft = "tollgate_llm_time_to_first_token_seconds";
    let tps = "tollgate_llm_output_tokens_per_second";
    assert_eq!(
        sample(&page, &format!("{ttft}_count"), "tg-stream"),
        Some(1.0)
    );
    let sum = sample(&page, &format!("{ttft}_sum"), "tg-stream").expect("TTFT sum");
    assert!((sum - 0.35).abs() < 1e-9, "TTFT sum {sum}");
    assert_eq!(
        sample(&page, &format!("{tps}_count"), "tg-stream"),
        Some(1.0)
    );
    let rate = sample(&page, &format!("{tps}_sum"), "tg-stream").expect("tokens/s sum");
    assert!((rate - 120.0).abs() < 1e-6, "output tokens/s {rate}");
    for model in ["tg-late", "tg-negative"] {
        for metric in [ttft, tps] {
            assert_eq!(
                sample(&page, &format!("{metric}_count"), model),
                None,
                "{metric} recorded for {model}:\n{page}"
            );
        }
    }
    drop(tg);
}
