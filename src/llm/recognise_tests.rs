//! Tests of `recognise`.
use super::*;

fn rec<'a>(name: &str, attrs: &[(&'a str, AttrValue<'a>)]) -> Recognised<'a> {
    let mut r = Recogniser::new();
    for (k, v) in attrs {
        r.observe(k, *v);
    }
    r.finish(name)
}

fn valid(r: &Recognised<'_>) -> Normalised {
    match r.usage {
        UsageRead::Valid(n) => n,
        other => panic!("expected usage, got {other:?}"),
    }
}

#[test]
fn non_llm_span_is_not_llm() {
    let r = rec(
        "GET /",
        &[
            ("http.method", AttrValue::Str("GET")),
            ("gen_ai.agent.name", AttrValue::Str("x")),
        ],
    );
    assert_eq!(r.class, SpanClass::NotLlm);
}

#[test]
fn openllmetry_inclusive_input_is_split() {
    use AttrValue::Int;
    let r = rec(
        "anthropic.chat",
        &[
            ("gen_ai.system", AttrValue::Str("Anthropic")),
            ("gen_ai.request.model", AttrValue::Str("claude-sonnet-4-5")),
            ("gen_ai.usage.prompt_tokens", Int(2100)),
            ("gen_ai.usage.completion_tokens", Int(340)),
            ("gen_ai.usage.cache_read_input_tokens", Int(800)),
            ("gen_ai.usage.cache_creation_input_tokens", Int(100)),
        ],
    );
    assert_eq!(r.class, SpanClass::Call);
    assert_eq!(r.provider, Some("anthropic"));
    let n = valid(&r);
    assert_eq!(n.input_semantics, InputSemantics::IncludesCache);
    assert_eq!(
        n.usage,
        Usage {
            input: 1200,
            cache_read: 800,
            cache_write_5m: 100,
            cache_write_1h: 0,
            output: 340,
            reasoning: 0
        }
    );
}

#[test]
fn more_cache_than_input_means_exclusive() {
    use AttrValue::Int;
    let r = rec(
        "chat",
        &[
            ("gen_ai.request.model", AttrValue::Str("claude-sonnet-4-5")),
            ("gen_ai.usage.input_tokens", Int(10)),
            ("gen_ai.usage.output_tokens", Int(5)),
            ("gen_ai.usage.cache_read.input_tokens", Int(800)),
        ],
    );
    let n = valid(&r);
    assert_eq!(n.input_semantics, InputSemantics::ExcludesCache);
    assert_eq!(n.usage.input, 10);
}

#[test]
fn bad_values_are_invalid_never_panic() {
    for v in [
        AttrValue::Str("lots"),
        AttrValue::Int(-1),
        AttrValue::Double(f64::NAN),
        AttrValue::Double(1.5),
        AttrValue::Int(2_000_000_000),
        AttrValue::Bool(true),
    ] {
        let r = rec("chat", &[("gen_ai.usage.input_tokens", v)]);
        assert_eq!(r.usage, UsageRead::Invalid, "{v:?}");
    }
    // A 1h split larger than the total write contradicts itself.
    let r = rec(
        "chat",
        &[
            ("gen_ai.usage.input_tokens", AttrValue::Int(100)),
            ("gen_ai.usage.cache_write.input_tokens", AttrValue::Int(10)),
            (
                "gen_ai.usage.cache_write.ephemeral_1h_input_tokens",
                AttrValue::Int(20),
            ),
        ],
    );
    assert_eq!(r.usage, UsageRead::Invalid);
}

#[test]
fn aggregates_by_operation_and_name() {
    let u = ("gen_ai.usage.input_tokens", AttrValue::Int(1));
    assert_eq!(
        rec(
            "x",
            &[u, ("gen_ai.operation.name", AttrValue::Str("invoke_agent"))]
        )
        .class,
        SpanClass::Aggregate
    );
    assert_eq!(rec("agent_step 3", &[u]).class, SpanClass::Aggregate);
    assert_eq!(rec("ai.generateText", &[u]).class, SpanClass::Aggregate);
    assert_eq!(
        rec("ai.generateText.doGenerate", &[u]).class,
        SpanClass::Call
    );
    // An agent span with no usage and no model is simply not an LLM span.
    assert_eq!(
        rec(
            "invoke_agent x",
            &[("gen_ai.operation.name", AttrValue::Str("invoke_agent"))]
        )
        .class,
        SpanClass::NotLlm
    );
}

#[test]
fn vercel_v5_anthropic_reads_cache_writes_from_provider_metadata() {
    use AttrValue::Int;
    let r = rec(
        "ai.streamText.doStream",
        &[
            ("ai.model.id", AttrValue::Str("claude-sonnet-4-5")),
            ("ai.model.provider", AttrValue::Str("anthropic.messages")),
            ("ai.usage.inputTokens", Int(1200)),
            ("ai.usage.cachedInputTokens", Int(800)),
            ("ai.usage.outputTokens", Int(340)),
            (
                "ai.response.providerMetadata",
                AttrValue::Str(r#"{"anthropic":{"cacheCreationInputTokens":100}}"#),
            ),
        ],
    );
    let n = valid(&r);
    assert_eq!(n.input_semantics, InputSemantics::ExcludesCache);
    assert_eq!(
        (n.usage.input, n.usage.cache_read, n.usage.cache_write_5m),
        (1200, 800, 100)
    );
    let bad = rec(
        "ai.streamText.doStream",
        &[
            ("ai.model.provider", AttrValue::Str("anthropic.messages")),
            ("ai.usage.inputTokens", Int(1)),
            (
                "ai.response.providerMetadata",
                AttrValue::Str(r#"{"anthropic":{"cacheCreationInputTokens":-3}}"#),
            ),
        ],
    );
    assert_eq!(bad.usage, UsageRead::Invalid);
}

#[test]
fn hand_written_semantics_follow_the_model_maker() {
    use AttrValue::Int;
    let attrs = |provider| {
        rec(
            "call",
            &[
                ("llm.vendor", AttrValue::Str(provider)),
                (
                    "llm.model",
                    AttrValue::Str("us.anthropic.claude-sonnet-4-6-v1:0"),
                ),
                ("llm.input_tokens", Int(1000)),
                ("llm.cache_read_input_tokens", Int(500)),
                ("llm.output_tokens", Int(1)),
            ],
        )
    };
    // Claude on Bedrock: raw Anthropic usage, input excludes cache.
    assert_eq!(valid(&attrs("aws.bedrock")).usage.input, 1000);
    // OpenAI raw usage: cached is a subset of the prompt.
    let openai = rec(
        "call",
        &[
            ("llm.vendor", AttrValue::Str("openai")),
            ("llm.model", AttrValue::Str("gpt-4o")),
            ("llm.input_tokens", Int(1000)),
            ("llm.cache_read_input_tokens", Int(500)),
        ],
    );
    assert_eq!(valid(&openai).usage.input, 500);
}

#[test]
fn provider_families() {
    assert_eq!(provider_family("Anthropic"), "anthropic");
    assert_eq!(provider_family("anthropic.messages"), "anthropic");
    assert_eq!(provider_family("gcp.vertex_ai"), "google");
    assert_eq!(provider_family("openai.responses"), "openai");
    assert_eq!(provider_family("mistral"), "mistral");
    assert_eq!(
        provider_from_model("us.anthropic.claude-sonnet-4-6-v1:0"),
        Some("anthropic")
    );
}

#[test]
fn ttft_from_genai_seconds() {
    let r = rec(
        "chat gpt-4o",
        &[
            ("gen_ai.request.model", AttrValue::Str("gpt-4o")),
            ("gen_ai.usage.output_tokens", AttrValue::Int(10)),
            (
                "gen_ai.response.time_to_first_chunk",
                AttrValue::Double(0.25),
            ),
        ],
    );
    assert_eq!(r.class, SpanClass::Call);
    assert_eq!(r.time_to_first_token_ns, Some(250_000_000));
    // An integer number of seconds is read too.
    let whole = rec(
        "chat gpt-4o",
        &[
            ("gen_ai.request.model", AttrValue::Str("gpt-4o")),
            ("gen_ai.response.time_to_first_chunk", AttrValue::Int(2)),
        ],
    );
    assert_eq!(whole.time_to_first_token_ns, Some(2_000_000_000));
}

#[test]
fn ttft_from_vercel_milliseconds_current_and_deprecated_names() {
    let base = [
        ("ai.model.id", AttrValue::Str("claude-sonnet-4-6")),
        ("ai.model.provider", AttrValue::Str("anthropic.messages")),
        ("ai.usage.outputTokens", AttrValue::Int(120)),
    ];
    let with = |key: &'static str, v: AttrValue<'static>| {
        let mut attrs = base.to_vec();
        attrs.push((key, v));
        rec("ai.streamText.doStream", &attrs).time_to_first_token_ns
    };
    assert_eq!(
        with("ai.response.msToFirstChunk", AttrValue::Double(350.5)),
        Some(350_500_000)
    );
    assert_eq!(
        with("ai.stream.msToFirstChunk", AttrValue::Int(420)),
        Some(420_000_000)
    );
    assert_eq!(
        with("ai.response.msToFirstChunk", AttrValue::Str(" 12 ")),
        Some(12_000_000)
    );
    assert_eq!(
        rec("ai.streamText.doStream", &base).time_to_first_token_ns,
        None
    );
}

#[test]
fn ttft_prefers_genai_then_current_vercel_name() {
    let r = rec(
        "ai.streamText.doStream",
        &[
            ("ai.model.id", AttrValue::Str("gpt-4o")),
            ("ai.stream.msToFirstChunk", AttrValue::Int(900)),
            ("ai.response.msToFirstChunk", AttrValue::Int(300)),
        ],
    );
    assert_eq!(r.time_to_first_token_ns, Some(300_000_000));
    let r = rec(
        "chat",
        &[
            ("gen_ai.request.model", AttrValue::Str("gpt-4o")),
            ("ai.response.msToFirstChunk", AttrValue::Int(300)),
            (
                "gen_ai.response.time_to_first_chunk",
                AttrValue::Double(0.1),
            ),
        ],
    );
    assert_eq!(r.time_to_first_token_ns, Some(100_000_000));
}

#[test]
fn absurd_ttft_values_are_rejected() {
    for bad in [
        AttrValue::Double(-1.0),
        AttrValue::Int(-5),
        AttrValue::Double(f64::NAN),
        AttrValue::Double(f64::INFINITY),
        AttrValue::Double(1e300),
        AttrValue::Str("soon"),
        AttrValue::Bool(true),
    ] {
        let r = rec(
            "chat",
            &[
                ("gen_ai.request.model", AttrValue::Str("gpt-4o")),
                ("gen_ai.usage.output_tokens", AttrValue::Int(10)),
                ("gen_ai.response.time_to_first_chunk", bad),
            ],
        );
        assert_eq!(r.time_to_first_token_ns, None, "{bad:?}");
        // A bad TTFT does not spoil the usage.
        assert_eq!(valid(&r).usage.output, 10);
    }
    // A rejected preferred value falls back to a valid one.
    let r = rec(
        "ai.streamText.doStream",
        &[
            ("ai.model.id", AttrValue::Str("gpt-4o")),
            ("ai.response.msToFirstChunk", AttrValue::Double(-3.0)),
            ("ai.stream.msToFirstChunk", AttrValue::Int(40)),
        ],
    );
    assert_eq!(r.time_to_first_token_ns, Some(40_000_000));
}

fn rec_from<'a>(scope: &'a str, attrs: &[(&'a str, AttrValue<'a>)]) -> Recognised<'a> {
    let mut r = Recogniser::new();
    r.set_origin(scope, "opentelemetry");
    for (k, v) in attrs {
        r.observe(k, *v);
    }
    r.finish("chat")
}

#[test]
fn openinference_response_id_and_write_split_come_from_output_value_json() {
    use AttrValue::{Int, Str};
    let out = r#"{"generations":[[{"message":{"kwargs":{"response_metadata":{"id":"msg_01abc","usage":{"cache_creation":{"ephemeral_1h_input_tokens":40,"ephemeral_5m_input_tokens":60}}},"id":"lc_run--1"}}}]]}"#;
    let attrs = [
        ("openinference.span.kind", Str("LLM")),
        ("llm.provider", Str("anthropic")),
        ("llm.model_name", Str("claude-haiku-4-5")),
        ("llm.token_count.prompt", Int(1100)),
        ("llm.token_count.completion", Int(5)),
        ("llm.token_count.prompt_details.cache_write", Int(100)),
        ("output.value", Str(out)),
    ];
    let r = rec_from("openinference.instrumentation.langchain", &attrs);
    assert_eq!(r.response_id, Some("msg_01abc"));
    let n = valid(&r);
    assert!(n.write_split_known);
    assert_eq!((n.usage.cache_write_5m, n.usage.cache_write_1h), (60, 40));
    // Another emitter does not look there.
    let r = rec_from("my-app", &attrs);
    assert_eq!(r.response_id, None);
    assert!(!valid(&r).write_split_known);
}

#[test]
fn logfire_write_split_from_usage_raw_and_traceloop_node_input_excludes_cache() {
    use AttrValue::{Int, Str};
    let raw = r#"{"cache_creation":{"ephemeral_1h_input_tokens":30,"ephemeral_5m_input_tokens":0},"input_tokens":10}"#;
    let genai = |input| {
        [
            ("gen_ai.provider.name", Str("anthropic")),
            ("gen_ai.request.model", Str("claude-haiku-4-5")),
            ("gen_ai.usage.input_tokens", Int(input)),
            ("gen_ai.usage.output_tokens", Int(5)),
            ("gen_ai.usage.cache_read.input_tokens", Int(60)),
            ("gen_ai.usage.cache_creation.input_tokens", Int(30)),
            ("gen_ai.usage.raw", Str(raw)),
        ]
    };
    let n = valid(&rec_from("logfire.anthropic", &genai(100)));
    assert_eq!(
        (
            n.usage.input,
            n.usage.cache_write_5m,
            n.usage.cache_write_1h
        ),
        (10, 0, 30)
    );
    let n = valid(&rec_from(
        "@traceloop/instrumentation-anthropic",
        &genai(10),
    ));
    assert_eq!(n.input_semantics, InputSemantics::ExcludesCache);
    assert_eq!(n.usage.input, 10);
    // A known inclusive source reporting more cache than input contradicts itself.
    assert_eq!(
        rec_from("logfire.anthropic", &genai(10)).usage,
        UsageRead::Invalid
    );
}

#[test]
fn aggregated_usage_marks_an_aggregate() {
    use AttrValue::{Int, Str};
    let r = rec_from(
        "pydantic-ai",
        &[
            ("model_name", Str("claude-haiku-4-5")),
            ("gen_ai.aggregated_usage.input_tokens", Int(10)),
            ("gen_ai.usage.input_tokens", Int(10)),
        ],
    );
    assert_eq!(r.class, SpanClass::Aggregate);
}
