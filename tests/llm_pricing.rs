//! Acceptance: every emitter's LLM span is recognised, normalised and priced to the nano-dollar.
//!
//! Each fixture's expected cost is computed by hand from the built-in table
//! (`src/llm/builtin_prices.toml`, USD per million tokens). One token at `p` $/M costs
//! `p × 1000` nano-USD, so each line below is tokens × (price × 1000) nano-USD.

mod llm_support;

use llm_support::*;
use tollgate::llm::{Cost, Enricher, PricingConfig, PricingStatus};
use tollgate::otlp::common::v1::any_value::Value;

struct Fixture {
    what: &'static str,
    span: SpanSpec,
    entry: &'static str,
    tier: Option<&'static str>,
    cost: Cost,
    reasoning: u64,
    cache_hit_ratio: Option<f64>,
}

fn cost(input: i64, cache_read: i64, w5: i64, w1h: i64, output: i64) -> Cost {
    Cost {
        input,
        cache_read,
        cache_write_5m: w5,
        cache_write_1h: w1h,
        output,
    }
}

fn fixtures() -> Vec<Fixture> {
    vec![
        // 1. Anthropic SDK's own span (OTel GenAI current names; input includes cache).
        //    claude-sonnet-4-6: 3 / 15 / read 0.30 / write 3.75.
        //    uncached 2100-800-100 = 1200 × 3000 = 3 600 000; read 800 × 300 = 240 000;
        //    write 100 × 3750 = 375 000; output 340 × 15 000 = 5 100 000 → 9 315 000.
        Fixture {
            what: "anthropic sdk span",
            span: SpanSpec::new(
                "chat claude-sonnet-4-6",
                &[
                    ("gen_ai.provider.name", s("anthropic")),
                    ("gen_ai.operation.name", s("chat")),
                    ("gen_ai.request.model", s("claude-sonnet-4-6")),
                    ("gen_ai.response.model", s("claude-sonnet-4-6")),
                    ("gen_ai.usage.input_tokens", i(2100)),
                    ("gen_ai.usage.output_tokens", i(340)),
                    ("gen_ai.usage.cache_read.input_tokens", i(800)),
                    ("gen_ai.usage.cache_write.input_tokens", i(100)),
                ],
            )
            .scope("com.anthropic.sdk.python"),
            entry: "claude-sonnet-4-6",
            tier: None,
            cost: cost(3_600_000, 240_000, 375_000, 0, 5_100_000),
            reasoning: 0,
            cache_hit_ratio: Some(800.0 / 2100.0),
        },
        // 2. OpenInference (llm.token_count.*, prompt includes cache). claude-haiku-4-5: 1 / 5 /
        //    0.10 / 1.25. uncached 1200 × 1000 = 1 200 000; read 800 × 100 = 80 000;
        //    write 100 × 1250 = 125 000; output 340 × 5000 = 1 700 000 → 3 105 000.
        Fixture {
            what: "openinference",
            span: SpanSpec::new(
                "Messages",
                &[
                    ("openinference.span.kind", s("LLM")),
                    ("llm.model_name", s("claude-haiku-4-5")),
                    ("llm.provider", s("anthropic")),
                    ("llm.system", s("anthropic")),
                    ("llm.token_count.prompt", i(2100)),
                    ("llm.token_count.completion", i(340)),
                    ("llm.token_count.total", i(2440)),
                    ("llm.token_count.prompt_details.cache_read", i(800)),
                    ("llm.token_count.prompt_details.cache_write", i(100)),
                ],
            ),
            entry: "claude-haiku-4-5",
            tier: None,
            cost: cost(1_200_000, 80_000, 125_000, 0, 1_700_000),
            reasoning: 0,
            cache_hit_ratio: Some(800.0 / 2100.0),
        },
        // 3. OpenLLMetry current era (cache_creation.input_tokens). claude-opus-4-5: 5 / 25 /
        //    0.50 / 6.25. uncached 10000-6000-2000 = 2000 × 5000 = 10 000 000;
        //    read 6000 × 500 = 3 000 000; write 2000 × 6250 = 12 500 000;
        //    output 500 × 25 000 = 12 500 000 → 38 000 000.
        Fixture {
            what: "openllmetry current",
            span: SpanSpec::new(
                "anthropic.chat",
                &[
                    ("gen_ai.provider.name", s("anthropic")),
                    ("gen_ai.request.model", s("claude-opus-4-5")),
                    ("gen_ai.response.model", s("claude-opus-4-5-20251101")),
                    ("gen_ai.usage.input_tokens", i(10_000)),
                    ("gen_ai.usage.output_tokens", i(500)),
                    ("gen_ai.usage.total_tokens", i(10_500)),
                    ("gen_ai.usage.cache_read.input_tokens", i(6000)),
                    ("gen_ai.usage.cache_creation.input_tokens", i(2000)),
                ],
            ),
            entry: "claude-opus-4-5",
            tier: None,
            cost: cost(10_000_000, 3_000_000, 12_500_000, 0, 12_500_000),
            reasoning: 0,
            cache_hit_ratio: Some(0.6),
        },
        // 4. OpenLLMetry older era, dated model id. claude-sonnet-4-5: 3 / 15 / 0.30 / 3.75.
        //    Same counts as fixture 1 → 3 600 000 + 240 000 + 375 000 + 5 100 000.
        Fixture {
            what: "openllmetry old era, dated id",
            span: SpanSpec::new(
                "anthropic.chat",
                &[
                    ("gen_ai.system", s("Anthropic")),
                    ("gen_ai.request.model", s("claude-sonnet-4-5-20250929")),
                    ("gen_ai.usage.prompt_tokens", i(2100)),
                    ("gen_ai.usage.completion_tokens", i(340)),
                    ("gen_ai.usage.cache_read_input_tokens", i(800)),
                    ("gen_ai.usage.cache_creation_input_tokens", i(100)),
                    ("llm.usage.total_tokens", i(2440)),
                ],
            ),
            entry: "claude-sonnet-4-5",
            tier: None,
            cost: cost(3_600_000, 240_000, 375_000, 0, 5_100_000),
            reasoning: 0,
            cache_hit_ratio: Some(800.0 / 2100.0),
        },
        // 5. Hand-written llm.* (raw Anthropic: input EXCLUDES cache). claude-opus-4-7: 5 / 25 /
        //    0.50. input 500 × 5000 = 2 500 000; read 3000 × 500 = 1 500 000;
        //    output 200 × 25 000 = 5 000 000 → 9 000 000.
        Fixture {
            what: "hand-written llm.*",
            span: SpanSpec::new(
                "llm_call",
                &[
                    ("llm.model", s("claude-opus-4-7")),
                    ("llm.vendor", s("anthropic")),
                    ("llm.input_tokens", i(500)),
                    ("llm.output_tokens", i(200)),
                    ("llm.cache_read_input_tokens", i(3000)),
                    ("llm.cache_creation_input_tokens", i(0)),
                    ("llm.total_tokens", i(3700)),
                ],
            ),
            entry: "claude-opus-4-7",
            tier: None,
            cost: cost(2_500_000, 1_500_000, 0, 0, 5_000_000),
            reasoning: 0,
            cache_hit_ratio: Some(3000.0 / 3500.0),
        },
        // 6. llm.usage.* variant with a 5m/1h split. claude-haiku-4-5: 1 / 5 / 0.10 / 1.25 / 2.
        //    input 1000 × 1000 = 1 000 000; read 4000 × 100 = 400 000;
        //    write 5m 600 × 1250 = 750 000; write 1h 400 × 2000 = 800 000;
        //    output 100 × 5000 = 500 000 → 3 450 000.
        Fixture {
            what: "llm.usage.* with 1h cache write",
            span: SpanSpec::new(
                "claude call",
                &[
                    ("llm.request.model", s("claude-haiku-4-5")),
                    ("llm.usage.input_tokens", i(1000)),
                    ("llm.usage.output_tokens", i(100)),
                    ("llm.usage.cache_read_input_tokens", i(4000)),
                    ("llm.usage.cache_creation_input_tokens", i(1000)),
                    ("llm.usage.cache_creation.ephemeral_1h_input_tokens", i(400)),
                ],
            ),
            entry: "claude-haiku-4-5",
            tier: None,
            cost: cost(1_000_000, 400_000, 750_000, 800_000, 500_000),
            reasoning: 0,
            cache_hit_ratio: Some(4000.0 / 6000.0),
        },
        // 7. Vercel AI SDK v4 doGenerate (promptTokens; Anthropic input excludes cache).
        //    Vertex model id. claude-sonnet-4-6: 1500 × 3000 = 4 500 000;
        //    300 × 15 000 = 4 500 000 → 9 000 000.
        Fixture {
            what: "vercel v4, vertex id",
            span: SpanSpec::new(
                "ai.generateText.doGenerate",
                &[
                    ("ai.model.id", s("claude-sonnet-4-6@20260101")),
                    ("ai.model.provider", s("anthropic.messages")),
                    ("ai.usage.promptTokens", i(1500)),
                    ("ai.usage.completionTokens", i(300)),
                ],
            ),
            entry: "claude-sonnet-4-6",
            tier: None,
            cost: cost(4_500_000, 0, 0, 0, 4_500_000),
            reasoning: 0,
            cache_hit_ratio: Some(0.0),
        },
        // 8. Vercel AI SDK v5 doStream, OpenAI (cached is a subset of input). gpt-4o-mini:
        //    0.15 / 0.60 / read 0.075. uncached 6000 × 150 = 900 000; read 4000 × 75 = 300 000;
        //    output 1000 × 600 = 600 000 → 1 800 000.
        Fixture {
            what: "vercel v5 openai",
            span: SpanSpec::new(
                "ai.streamText.doStream",
                &[
                    ("ai.model.id", s("gpt-4o-mini")),
                    ("ai.model.provider", s("openai.chat")),
                    ("ai.usage.inputTokens", i(10_000)),
                    ("ai.usage.outputTokens", i(1000)),
                    ("ai.usage.cachedInputTokens", i(4000)),
                    ("ai.usage.reasoningTokens", i(0)),
                ],
            ),
            entry: "gpt-4o-mini",
            tier: None,
            cost: cost(900_000, 300_000, 0, 0, 600_000),
            reasoning: 0,
            cache_hit_ratio: Some(0.4),
        },
        // 9. Vercel AI SDK v7 inputTokenDetails (uncached given explicitly). claude-sonnet-4-5:
        //    1000 × 3000 = 3 000 000; read 3000 × 300 = 900 000; write 1000 × 3750 = 3 750 000;
        //    output 200 × 15 000 = 3 000 000 → 10 650 000.
        Fixture {
            what: "vercel v7 details",
            span: SpanSpec::new(
                "ai.streamText.doStream",
                &[
                    ("ai.model.id", s("claude-sonnet-4-5")),
                    ("ai.model.provider", s("anthropic.messages")),
                    ("ai.usage.inputTokens", i(5000)),
                    ("ai.usage.inputTokenDetails.noCacheTokens", i(1000)),
                    ("ai.usage.inputTokenDetails.cacheReadTokens", i(3000)),
                    ("ai.usage.inputTokenDetails.cacheWriteTokens", i(1000)),
                    ("ai.usage.outputTokens", i(200)),
                ],
            ),
            entry: "claude-sonnet-4-5",
            tier: None,
            cost: cost(3_000_000, 900_000, 3_750_000, 0, 3_000_000),
            reasoning: 0,
            cache_hit_ratio: Some(0.6),
        },
        // 9b. Vercel AI SDK v6 doGenerate as `ai` 6.0 emits it (tests/fixtures/emitters/vercel_ai.json):
        //     `gen_ai.usage.{input,output}_tokens` too, but the cache split only under `ai.usage.*`.
        //     claude-haiku-4-5: 900 × 1000 = 900 000; read 4000 × 100 = 400 000; write 500 × 1250
        //     = 625 000; output 60 × 5000 = 300 000 → 2 225 000.
        Fixture {
            what: "vercel v6 with gen_ai usage too",
            span: SpanSpec::new(
                "ai.generateText.doGenerate",
                &[
                    ("ai.model.provider", s("anthropic.messages")),
                    ("ai.model.id", s("claude-haiku-4-5")),
                    ("gen_ai.system", s("anthropic.messages")),
                    ("gen_ai.request.model", s("claude-haiku-4-5")),
                    ("ai.usage.inputTokens", i(5400)),
                    ("ai.usage.inputTokenDetails.noCacheTokens", i(900)),
                    ("ai.usage.inputTokenDetails.cacheReadTokens", i(4000)),
                    ("ai.usage.inputTokenDetails.cacheWriteTokens", i(500)),
                    ("ai.usage.outputTokens", i(60)),
                    ("ai.usage.cachedInputTokens", i(4000)),
                    ("gen_ai.response.model", s("claude-haiku-4-5")),
                    ("gen_ai.usage.input_tokens", i(5400)),
                    ("gen_ai.usage.output_tokens", i(60)),
                ],
            ),
            entry: "claude-haiku-4-5",
            tier: None,
            cost: cost(900_000, 400_000, 625_000, 0, 300_000),
            reasoning: 0,
            cache_hit_ratio: Some(4000.0 / 5400.0),
        },
        // 10. OpenAI reasoning via GenAI semconv (reasoning inside output). o4-mini: 1.10 / 4.40
        //     / read 0.275. uncached 1000 × 1100 = 1 100 000; read 1000 × 275 = 275 000;
        //     output 3000 × 4400 = 13 200 000 → 14 575 000.
        Fixture {
            what: "openai reasoning",
            span: SpanSpec::new(
                "chat o4-mini",
                &[
                    ("gen_ai.provider.name", s("openai")),
                    ("gen_ai.request.model", s("o4-mini")),
                    ("gen_ai.response.model", s("o4-mini-2025-04-16")),
                    ("gen_ai.usage.input_tokens", i(2000)),
                    ("gen_ai.usage.cache_read.input_tokens", i(1000)),
                    ("gen_ai.usage.output_tokens", i(3000)),
                    ("gen_ai.usage.reasoning.output_tokens", i(2500)),
                ],
            ),
            entry: "o4-mini",
            tier: None,
            cost: cost(1_100_000, 275_000, 0, 0, 13_200_000),
            reasoning: 2500,
            cache_hit_ratio: Some(0.5),
        },
        // 11. Gemini raw usage (thoughts NOT inside candidates): billed output = 500 + 1500.
        //     gemini-2.5-flash: 0.30 / 2.50 / read 0.03. uncached 6000 × 300 = 1 800 000;
        //     read 2000 × 30 = 60 000; output 2000 × 2500 = 5 000 000 → 6 860 000.
        Fixture {
            what: "gemini thoughts",
            span: SpanSpec::new(
                "gemini.generate",
                &[
                    ("llm.provider", s("google")),
                    ("llm.request.model", s("models/gemini-2.5-flash")),
                    ("llm.usage.input_tokens", i(8000)),
                    ("llm.usage.cache_read_input_tokens", i(2000)),
                    ("llm.usage.output_tokens", i(500)),
                    ("llm.usage.reasoning_tokens", i(1500)),
                ],
            ),
            entry: "gemini-2.5-flash",
            tier: None,
            cost: cost(1_800_000, 60_000, 0, 0, 5_000_000),
            reasoning: 1500,
            cache_hit_ratio: Some(0.25),
        },
        // 12. Gemini 2.5 Pro long-context tier (> 200K prompt incl. cache): 2.50 / 15 / 0.25.
        //     uncached 200 000 × 2500 = 500 000 000; read 50 000 × 250 = 12 500 000;
        //     output 1000 × 15 000 = 15 000 000 → 527 500 000.
        Fixture {
            what: "gemini long context",
            span: SpanSpec::new(
                "generate_content gemini-2.5-pro",
                &[
                    ("gen_ai.system", s("gcp.vertex_ai")),
                    ("gen_ai.operation.name", s("generate_content")),
                    ("gen_ai.request.model", s("gemini-2.5-pro")),
                    ("gen_ai.usage.input_tokens", i(250_000)),
                    ("gen_ai.usage.cache_read.input_tokens", i(50_000)),
                    ("gen_ai.usage.output_tokens", i(1000)),
                ],
            ),
            entry: "gemini-2.5-pro",
            tier: Some("above_200000"),
            cost: cost(500_000_000, 12_500_000, 0, 0, 15_000_000),
            reasoning: 0,
            cache_hit_ratio: Some(0.2),
        },
        // 13. Anthropic long-context tier with a 1h cache write, Bedrock id. claude-sonnet-4
        //     > 200K: 6 / 22.50 / read 0.60 / 1h write 12. Input incl. cache 210 000.
        //     uncached 100 000 × 6000 = 600 000 000; read 100 000 × 600 = 60 000 000;
        //     1h write 10 000 × 12 000 = 120 000 000; output 2000 × 22 500 = 45 000 000
        //     → 825 000 000.
        Fixture {
            what: "anthropic long context, bedrock id, 1h write",
            span: SpanSpec::new(
                "chat",
                &[
                    ("gen_ai.provider.name", s("aws.bedrock")),
                    (
                        "gen_ai.request.model",
                        s("us.anthropic.claude-sonnet-4-20250514-v1:0"),
                    ),
                    ("gen_ai.usage.input_tokens", i(210_000)),
                    ("gen_ai.usage.cache_read.input_tokens", i(100_000)),
                    ("gen_ai.usage.cache_write.input_tokens", i(10_000)),
                    (
                        "gen_ai.usage.cache_write.ephemeral_1h_input_tokens",
                        i(10_000),
                    ),
                    ("gen_ai.usage.output_tokens", i(2000)),
                ],
            ),
            entry: "claude-sonnet-4",
            tier: Some("above_200000"),
            cost: cost(600_000_000, 60_000_000, 0, 120_000_000, 45_000_000),
            reasoning: 0,
            cache_hit_ratio: Some(100_000.0 / 210_000.0),
        },
        // 14. Batch call (OpenAI service tier "batch", 50 % off). gpt-5-nano: 0.05 / 0.40 / 0.005.
        //     uncached 800 000 × 50 × 0.5 = 20 000 000; read 200 000 × 5 × 0.5 = 500 000;
        //     output 100 001 × 400 × 0.5 = 20 000 200 → 40 500 200.
        Fixture {
            what: "openai batch",
            span: SpanSpec::new(
                "openai.chat",
                &[
                    ("gen_ai.provider.name", s("openai")),
                    ("gen_ai.request.model", s("gpt-5-nano")),
                    ("gen_ai.openai.request.service_tier", s("batch")),
                    ("gen_ai.usage.input_tokens", i(1_000_000)),
                    ("gen_ai.usage.cache_read.input_tokens", i(200_000)),
                    ("gen_ai.usage.output_tokens", i(100_001)),
                ],
            ),
            entry: "gpt-5-nano",
            tier: None,
            cost: cost(20_000_000, 500_000, 0, 0, 20_000_200),
            reasoning: 0,
            cache_hit_ratio: Some(0.2),
        },
        // 15. One cached token at 0.075 $/M is exactly 75 nano-USD (no float error).
        Fixture {
            what: "one cached token",
            span: SpanSpec::new(
                "chat",
                &[
                    ("gen_ai.request.model", s("openai/gpt-4o-mini-2024-07-18")),
                    ("gen_ai.usage.input_tokens", i(1)),
                    ("gen_ai.usage.cache_read.input_tokens", i(1)),
                    ("gen_ai.usage.output_tokens", i(0)),
                ],
            ),
            entry: "gpt-4o-mini",
            tier: None,
            cost: cost(0, 75, 0, 0, 0),
            reasoning: 0,
            cache_hit_ratio: Some(1.0),
        },
        // 16. Token counts as strings and whole doubles (some SDKs), Bedrock global id.
        //     claude-haiku-4-5: 1000 × 1000 = 1 000 000; 10 × 5000 = 50 000 → 1 050 000.
        Fixture {
            what: "string and double counts",
            span: SpanSpec::new(
                "chat",
                &[
                    (
                        "gen_ai.request.model",
                        s("global.anthropic.claude-haiku-4-5-20251001-v1:0"),
                    ),
                    ("gen_ai.usage.input_tokens", s("1000")),
                    ("gen_ai.usage.output_tokens", V::D(10.0)),
                ],
            ),
            entry: "claude-haiku-4-5",
            tier: None,
            cost: cost(1_000_000, 0, 0, 0, 50_000),
            reasoning: 0,
            cache_hit_ratio: Some(0.0),
        },
    ]
}

#[test]
fn every_fixture_is_priced_to_the_last_digit() {
    let enricher = Enricher::new(&PricingConfig::default()).unwrap();
    for (n, f) in fixtures().into_iter().enumerate() {
        // Distinct ids so the call registry sees unrelated calls.
        let span = f.span.clone().id(n as u8 + 1).trace(n as u8 + 1);
        let r = run(&enricher, &request(&[span], &[]));
        let o = r.outcomes[0]
            .as_ref()
            .unwrap_or_else(|| panic!("{}: not recognised", f.what));
        assert_eq!(o.status, PricingStatus::Priced, "{}", f.what);
        assert!(o.is_llm_call, "{}", f.what);
        assert_eq!(o.entry.as_deref(), Some(f.entry), "{}", f.what);
        assert_eq!(o.cost, Some(f.cost), "{}: cost", f.what);
        assert_eq!(o.usage.unwrap().reasoning, f.reasoning, "{}", f.what);
        assert_eq!(
            r.string(0, "tollgate.pricing.status").as_deref(),
            Some("priced"),
            "{}",
            f.what
        );
        assert_eq!(
            r.string(0, "tollgate.pricing.entry").as_deref(),
            Some(f.entry),
            "{}",
            f.what
        );
        assert_eq!(
            r.string(0, "tollgate.pricing.tier").as_deref(),
            f.tier,
            "{}",
            f.what
        );
        let usd = |n: i64| n as f64 / 1e9;
        let c = f.cost;
        let total = c.input + c.cache_read + c.cache_write_5m + c.cache_write_1h + c.output;
        assert_eq!(
            r.double(0, "llm.cost.total"),
            Some(usd(total)),
            "{}",
            f.what
        );
        assert_eq!(
            r.double(0, "gen_ai.usage.cost"),
            Some(usd(total)),
            "{}",
            f.what
        );
        assert_eq!(
            r.double(0, "llm.cost.prompt"),
            Some(usd(total - c.output)),
            "{}",
            f.what
        );
        assert_eq!(
            r.double(0, "llm.cost.completion"),
            Some(usd(c.output)),
            "{}",
            f.what
        );
        assert_eq!(
            r.double(0, "llm.cost.prompt_details.input"),
            Some(usd(c.input)),
            "{}",
            f.what
        );
        assert_eq!(
            r.double(0, "llm.cost.prompt_details.cache_read"),
            Some(usd(c.cache_read))
        );
        assert_eq!(
            r.double(0, "llm.cost.prompt_details.cache_write"),
            Some(usd(c.cache_write_5m + c.cache_write_1h)),
            "{}",
            f.what
        );
        assert_eq!(
            r.double(0, "llm.cost.completion_details.output"),
            Some(usd(c.output))
        );
        match (r.double(0, "llm.cache_hit_ratio"), f.cache_hit_ratio) {
            (Some(got), Some(want)) => {
                assert!((got - want).abs() < 1e-12, "{}: ratio {got}", f.what)
            }
            (got, want) => assert_eq!(got, want, "{}: ratio", f.what),
        }
        // The emitter's own attributes are still there, and nothing derived went under
        // gen_ai.usage.* (other than the cost) or llm.token_count.*.
        let before: Vec<&str> = f.span.attrs.iter().map(|(k, _)| k.as_str()).collect();
        for kv in &r.span(0).attributes {
            let k = kv.key.as_str();
            if (k.starts_with("gen_ai.usage.") && k != "gen_ai.usage.cost")
                || k.starts_with("llm.token_count.")
            {
                assert!(before.contains(&k), "{}: tollgate wrote {k}", f.what);
            }
        }
        for k in before {
            assert_eq!(r.key_count(0, k), 1, "{}: {k} kept once", f.what);
        }
    }
}

#[test]
fn non_llm_spans_are_untouched() {
    let enricher = Enricher::new(&PricingConfig::default()).unwrap();
    let body = request(
        &[
            SpanSpec::new(
                "GET /users",
                &[("http.request.method", s("GET")), ("llm", i(1))],
            ),
            SpanSpec::new(
                "execute_tool search",
                &[
                    ("gen_ai.operation.name", s("execute_tool")),
                    ("gen_ai.tool.name", s("s")),
                ],
            )
            .id(2),
        ],
        &[("service.name", s("api"))],
    );
    let index = tollgate::wire::scan(&body).unwrap();
    let (edits, outcomes) = enricher.enrich_request(&body, &index);
    assert!(tollgate::wire::edit::is_noop(&edits));
    assert!(outcomes.iter().all(Option::is_none));
}

#[test]
fn unknown_model_and_missing_usage_are_marked_and_counted() {
    let enricher = Enricher::new(&PricingConfig::default()).unwrap();
    let (unknown0, no_usage0, incomplete0) = (
        unpriced("unknown_model"),
        unpriced("no_usage"),
        unpriced("incomplete_price"),
    );
    let body = request(
        &[
            SpanSpec::new(
                "chat",
                &[
                    ("gen_ai.request.model", s("llama-3.3-70b")),
                    ("gen_ai.usage.input_tokens", i(100)),
                    ("gen_ai.usage.output_tokens", i(10)),
                ],
            )
            .id(1),
            SpanSpec::new("chat", &[("gen_ai.request.model", s("claude-sonnet-4-6"))]).id(2),
            // gpt-4o has no cache-write price: never priced at $0.
            SpanSpec::new(
                "chat",
                &[
                    ("gen_ai.request.model", s("gpt-4o")),
                    ("gen_ai.usage.input_tokens", i(1000)),
                    ("gen_ai.usage.cache_write.input_tokens", i(100)),
                    ("gen_ai.usage.output_tokens", i(10)),
                ],
            )
            .id(3),
            // Usage but no model at all.
            SpanSpec::new("chat", &[("gen_ai.usage.input_tokens", i(5))]).id(4),
        ],
        &[],
    );
    let r = run(&enricher, &body);
    let status = |n: usize| r.string(n, "tollgate.pricing.status");
    assert_eq!(status(0).as_deref(), Some("unknown_model"));
    assert_eq!(status(1).as_deref(), Some("no_usage"));
    assert_eq!(status(2).as_deref(), Some("incomplete_price"));
    assert_eq!(
        r.string(2, "tollgate.pricing.entry").as_deref(),
        Some("gpt-4o")
    );
    assert_eq!(status(3).as_deref(), Some("unknown_model"));
    for n in 0..4 {
        assert_eq!(r.double(n, "llm.cost.total"), None, "span {n} has no cost");
        assert_eq!(
            r.double(n, "gen_ai.usage.cost"),
            None,
            "span {n} has no cost"
        );
    }
    assert!(unpriced("unknown_model") >= unknown0 + 2);
    assert!(unpriced("no_usage") > no_usage0);
    assert!(unpriced("incomplete_price") > incomplete0);
}

#[test]
fn fallback_prices_unknown_models() {
    let config: PricingConfig =
        toml::from_str("[fallback]\nname = \"default\"\ninput = 1\noutput = 2\n").unwrap();
    let enricher = Enricher::new(&config).unwrap();
    let body = request(
        &[SpanSpec::new(
            "chat",
            &[
                ("gen_ai.request.model", s("llama-3.3-70b")),
                ("gen_ai.usage.input_tokens", i(1000)),
                ("gen_ai.usage.output_tokens", i(1000)),
            ],
        )],
        &[],
    );
    let r = run(&enricher, &body);
    // 1000 × 1000 + 1000 × 2000 = 3 000 000 nano-USD.
    assert_eq!(r.outcomes[0].as_ref().unwrap().total_nanos(), 3_000_000);
    assert_eq!(
        r.string(0, "tollgate.pricing.entry").as_deref(),
        Some("default")
    );
}

#[test]
fn override_discount_by_resource_attribute() {
    let config: PricingConfig = toml::from_str(
        "[[overrides]]\nwhen = { \"service.name\" = \"checkout-agent\" }\ndiscount = 0.22\n",
    )
    .unwrap();
    let enricher = Enricher::new(&config).unwrap();
    let span = SpanSpec::new(
        "chat",
        &[
            ("gen_ai.request.model", s("claude-sonnet-4-6")),
            ("gen_ai.usage.input_tokens", i(1000)),
            ("gen_ai.usage.output_tokens", i(100)),
        ],
    );
    // 1000 × 3000 × 0.78 = 2 340 000; 100 × 15 000 × 0.78 = 1 170 000 → 3 510 000.
    let r = run(
        &enricher,
        &request(
            std::slice::from_ref(&span),
            &[("service.name", s("checkout-agent"))],
        ),
    );
    assert_eq!(r.outcomes[0].as_ref().unwrap().total_nanos(), 3_510_000);
    // Another service pays list price: 3 000 000 + 1 500 000.
    let r = run(
        &enricher,
        &request(&[span.trace(2)], &[("service.name", s("other"))]),
    );
    assert_eq!(r.outcomes[0].as_ref().unwrap().total_nanos(), 4_500_000);
}

#[test]
fn reported_cost_is_kept_aside_and_replaced() {
    let span = SpanSpec::new(
        "chat",
        &[
            ("gen_ai.request.model", s("claude-sonnet-4-6")),
            ("gen_ai.usage.input_tokens", i(1000)),
            ("gen_ai.usage.output_tokens", i(100)),
            ("llm.cost.total", V::D(0.5)),
            ("llm.cost.prompt", V::D(0.4)),
            ("gen_ai.usage.cost", V::D(0.5)),
        ],
    );
    let enricher = Enricher::new(&PricingConfig::default()).unwrap();
    let r = run(&enricher, &request(std::slice::from_ref(&span), &[]));
    assert_eq!(r.double(0, "tollgate.cost.reported_usd"), Some(0.5));
    assert_eq!(r.double(0, "llm.cost.total"), Some(0.0045));
    assert_eq!(r.key_count(0, "llm.cost.total"), 1);
    assert_eq!(r.key_count(0, "llm.cost.prompt"), 1);
    assert_eq!(r.key_count(0, "gen_ai.usage.cost"), 1);
    assert_eq!(r.double(0, "gen_ai.usage.cost"), Some(0.0045));

    let keep: PricingConfig = toml::from_str("replace_reported_cost = false").unwrap();
    let enricher = Enricher::new(&keep).unwrap();
    let r = run(&enricher, &request(&[span], &[]));
    assert_eq!(r.double(0, "llm.cost.total"), Some(0.5));
    assert_eq!(r.double(0, "tollgate.cost.total_usd"), Some(0.0045));
    assert_eq!(r.key_count(0, "llm.cost.total"), 1);
}

#[test]
fn enriching_twice_does_not_duplicate_attributes() {
    let span = SpanSpec::new(
        "chat",
        &[
            ("gen_ai.request.model", s("claude-sonnet-4-6")),
            ("gen_ai.usage.input_tokens", i(1000)),
            ("gen_ai.usage.output_tokens", i(100)),
        ],
    );
    let first = Enricher::new(&PricingConfig::default()).unwrap();
    let r = run(&first, &request(&[span], &[]));
    // A second tollgate downstream (its own registry) sees the enriched span.
    let again = tollgate::otlp::collector::trace::v1::ExportTraceServiceRequest::clone(&r.out);
    let body = bytes::Bytes::from(prost::Message::encode_to_vec(&again));
    let second = Enricher::new(&PricingConfig::default()).unwrap();
    let r2 = run(&second, &body);
    for k in [
        "tollgate.pricing.status",
        "llm.cost.total",
        "gen_ai.usage.cost",
        "llm.cache_hit_ratio",
    ] {
        assert_eq!(r2.key_count(0, k), 1, "{k}");
    }
    assert!(matches!(
        r2.attrs(0).get("llm.cost.total"),
        Some(Value::DoubleValue(_))
    ));
}

#[test]
fn langfuse_details_carry_total_and_cache_split() {
    let enricher = Enricher::new(&PricingConfig::default()).unwrap();
    let f = &fixtures()[5]; // llm.usage.* with a 1h write
    let r = run(&enricher, &request(&[f.span.clone().trace(99)], &[]));
    let d = tollgate::llm::langfuse_details(r.outcomes[0].as_ref().unwrap()).unwrap();
    let usage: serde_json::Value = serde_json::from_str(&d.usage_details).unwrap();
    assert_eq!(usage["input"], 1000);
    assert_eq!(usage["input_cache_creation_5m"], 600);
    assert_eq!(usage["input_cache_creation_1h"], 400);
    assert_eq!(usage["total"], 1000 + 4000 + 1000 + 100);
    let cost: serde_json::Value = serde_json::from_str(d.cost_details.as_deref().unwrap()).unwrap();
    assert_eq!(cost["total"], 0.00345);
    assert_eq!(cost["input_cache_creation_1h"], 0.0008);
}

#[test]
fn struct_view_and_wire_view_conclude_the_same() {
    let a = Enricher::new(&PricingConfig::default()).unwrap();
    let b = Enricher::new(&PricingConfig::default()).unwrap();
    for f in fixtures() {
        let span = f.span.to_span();
        // The scope picks the emitter's row: both views see it.
        let scope = tollgate::otlp::common::v1::InstrumentationScope {
            name: f.span.scope.clone(),
            ..Default::default()
        };
        let view = tollgate::wire::prost_view::ProstSpan::new(&span, None, Some(&scope));
        let from_structs = a.assess(&view);
        let r = run(&b, &request(std::slice::from_ref(&f.span), &[]));
        assert_eq!(from_structs.as_ref(), r.outcomes[0].as_ref(), "{}", f.what);
    }
}

#[test]
fn the_span_start_time_picks_the_prices_in_force() {
    let config: PricingConfig = toml::from_str(
        r#"
        [[models]]
        name = "acme-1"
        input = 1
        output = 1
        effective_from = "2026-01-01"
        [[models]]
        name = "acme-1"
        input = 2
        output = 2
        effective_from = "2026-11-01"
        "#,
    )
    .unwrap();
    let enricher = Enricher::new(&config).unwrap();
    let span = |trace: u8, start_ns: u64| {
        let mut sp = SpanSpec::new(
            "chat",
            &[
                ("gen_ai.request.model", s("acme-1")),
                ("gen_ai.usage.input_tokens", i(1000)),
                ("gen_ai.usage.output_tokens", i(0)),
            ],
        )
        .trace(trace);
        sp.start_ns = start_ns;
        sp
    };
    // 2026-06-01T00:00:00Z: 1000 × 1000 nano-USD.
    let r = run(
        &enricher,
        &request(&[span(1, 1_780_272_000_000_000_000)], &[]),
    );
    assert_eq!(r.outcomes[0].as_ref().unwrap().total_nanos(), 1_000_000);
    assert_eq!(
        r.string(0, "tollgate.pricing.effective_from").as_deref(),
        Some("2026-01-01")
    );
    // 2026-11-25: 1000 × 2000.
    let r = run(
        &enricher,
        &request(&[span(2, 1_795_564_800_000_000_000)], &[]),
    );
    assert_eq!(r.outcomes[0].as_ref().unwrap().total_nanos(), 2_000_000);
    assert_eq!(
        r.string(0, "tollgate.pricing.effective_from").as_deref(),
        Some("2026-11-01")
    );
}
