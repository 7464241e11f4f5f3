//! Recognising model-call spans from any emitter and normalising their usage.
//!
//! One pass over the span's attributes: each key is matched by bytes against the names every
//! known emitter uses (see `shared/reference/llm-conventions.md`), values are kept borrowed, and
//! nothing is allocated. A span none of whose keys is known is not an LLM call and costs one
//! failed match per attribute.

use super::source::{Emitter, WriteSplit};
use super::usage::{Convention, InputSemantics, Normalised, Usage, MAX_TOKENS};
use crate::wire::{AttrValue, SpanAttrs};

/// A token-count attribute, by emitter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Tok {
    // OTel GenAI / OpenLLMetry / Anthropic SDKs.
    GIn,
    GPrompt,
    GOut,
    GCompletion,
    GCacheRead,
    GCacheReadOld,
    GCacheWrite,
    GCacheCreation,
    GCacheCreationOld,
    GReasoning,
    GReasoningOld,
    // OpenInference.
    OiPrompt,
    OiCompletion,
    OiCacheRead,
    OiCacheWrite,
    OiReasoning,
    // Vercel AI SDK.
    VPrompt,
    VCompletion,
    VIn,
    VOut,
    VCached,
    VReasoning,
    VNoCache,
    VCacheRead,
    VCacheWrite,
    // `llm.usage.*`.
    LuIn,
    LuOut,
    LuCacheRead,
    LuCacheWrite,
    LuReasoning,
    // Hand-written `llm.*`.
    HIn,
    HOut,
    HCacheRead,
    HCacheWrite,
    // Cache-write lifetime split (Anthropic `cache_creation.ephemeral_{5m,1h}_input_tokens`).
    Write5m,
    Write1h,
    /// Pydantic AI's `gen_ai.usage.details.ephemeral_1h_input_tokens` (written only when non-zero).
    Write1hDetails,
}

const N_TOK: usize = Tok::Write1hDetails as usize + 1;

/// A text attribute, by role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Txt {
    ProviderName,
    System,
    LlmProvider,
    LlmSystem,
    AiProvider,
    LlmVendor,
    RespModel,
    OiRespModel,
    LlmRespModel,
    AiRespModel,
    OiModel,
    LlmModel,
    ReqModel,
    OiReqModel,
    LlmReqModel,
    AiModel,
    Operation,
    OiKind,
    TraceloopKind,
    ResponseId,
    ServiceTier,
    AiProviderMetadata,
    /// `gen_ai.usage.raw`: the provider's usage object as JSON (Logfire).
    UsageRaw,
    /// OpenInference `output.value` (JSON for LangChain and the OpenAI Agents SDK).
    OutputValue,
}

const N_TXT: usize = Txt::AiProviderMetadata as usize + 3;

/// A time-to-first-token attribute, by emitter, in order of preference. Where each name and unit
/// comes from (read 2026-11-25):
/// - OTel GenAI registry (`model/gen-ai/registry.yaml` in open-telemetry/semantic-conventions-genai)
///   defines `gen_ai.response.time_to_first_chunk`, a double in seconds from issuing the request
///   to receiving the first chunk of a streaming response. Emitters on the GenAI names
///   (OpenLLMetry's current era, the Anthropic SDKs' own spans) are covered when they set it; no
///   source read showed that they do.
/// - The Vercel AI SDK (`packages/ai/core/generate-text/stream-text.ts` in vercel/ai) sets
///   `ai.response.msToFirstChunk` and, marked deprecated, `ai.stream.msToFirstChunk` on the
///   `doStream` span: both the same number of milliseconds since the step started (`now()` minus
///   the start timestamp); its telemetry docs list only `ai.stream.msToFirstChunk` before v4.
///
/// Not read: OpenInference marks the first chunk with a span event (`First Token Stream Event`,
/// no attributes; its time is the signal) and OpenLLMetry's OpenAI wrapper records TTFT only as a
/// metric plus one `llm.content.completion.chunk` event per chunk. Both need a walk over span
/// events, which this single attribute pass does not make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Ttft {
    /// `gen_ai.response.time_to_first_chunk`, seconds.
    GenAiSeconds,
    /// `ai.response.msToFirstChunk`, milliseconds.
    VercelMs,
    /// `ai.stream.msToFirstChunk` (deprecated Vercel name), milliseconds.
    VercelStreamMs,
}

const N_TTFT: usize = Ttft::VercelStreamMs as usize + 1;

impl Ttft {
    /// Nanoseconds per unit of the attribute's value.
    fn ns_per_unit(self) -> f64 {
        match self {
            Ttft::GenAiSeconds => 1e9,
            Ttft::VercelMs | Ttft::VercelStreamMs => 1e6,
        }
    }
}

/// A time to first token in nanoseconds, or `None` for a value that is not a finite,
/// non-negative number (or is beyond any plausible span). Whether it fits inside the span is
/// checked where the span's duration is known ([`super::enrich`]).
fn read_ttft_ns(v: &AttrValue<'_>, unit: Ttft) -> Option<u64> {
    let x = match *v {
        AttrValue::Int(i) => i as f64,
        AttrValue::Double(d) => d,
        AttrValue::Str(s) => s.trim().parse::<f64>().ok()?,
        _ => return None,
    };
    let ns = x * unit.ns_per_unit();
    // 1e18 ns is some 31 years: far past any span, and well inside u64.
    (ns.is_finite() && (0.0..1e18).contains(&ns)).then_some(ns as u64)
}

enum Key {
    Tok(Tok),
    Txt(Txt),
    Ttft(Ttft),
    Batch,
    ReportedCost,
    /// `gen_ai.aggregated_usage.*` (Pydantic AI agent runs): the span repeats its calls' usage.
    AggregatedUsage,
}

/// Maps an attribute key to its role. Keys that cannot be ours are rejected on their first
/// bytes, which is all most attributes of most spans cost.
/// A cheap first test on a key's bytes: false for every key [`Recogniser::observe`] ignores
/// except a few that share its prefixes, so that a span's other attributes cost one comparison.
#[inline]
pub fn may_be_ours(key: &[u8]) -> bool {
    key.len() >= 5
        && matches!(
            &key[..3],
            b"gen" | b"llm" | b"ai." | b"ant" | b"ope" | b"tra" | b"tol" | b"out"
        )
}

fn classify(key: &[u8]) -> Option<Key> {
    use Key::{Tok as T, Txt as X};
    let b = key;
    if b.len() < 5 {
        return None;
    }
    let k = match &b[..3] {
        b"gen" => match key {
            b"gen_ai.usage.input_tokens" => T(Tok::GIn),
            b"gen_ai.usage.prompt_tokens" => T(Tok::GPrompt),
            b"gen_ai.usage.output_tokens" => T(Tok::GOut),
            b"gen_ai.usage.completion_tokens" => T(Tok::GCompletion),
            b"gen_ai.usage.cache_read.input_tokens" => T(Tok::GCacheRead),
            b"gen_ai.usage.cache_read_input_tokens" => T(Tok::GCacheReadOld),
            b"gen_ai.usage.cache_write.input_tokens" => T(Tok::GCacheWrite),
            b"gen_ai.usage.cache_creation.input_tokens" => T(Tok::GCacheCreation),
            // Strands writes `cache_write_input_tokens` next to `cache_creation.input_tokens`.
            b"gen_ai.usage.cache_creation_input_tokens"
            | b"gen_ai.usage.cache_write_input_tokens" => T(Tok::GCacheCreationOld),
            b"gen_ai.usage.reasoning.output_tokens" => T(Tok::GReasoning),
            b"gen_ai.usage.reasoning_tokens" => T(Tok::GReasoningOld),
            b"gen_ai.usage.cache_creation.ephemeral_5m_input_tokens"
            | b"gen_ai.usage.cache_write.ephemeral_5m_input_tokens"
            | b"gen_ai.usage.details.ephemeral_5m_input_tokens" => T(Tok::Write5m),
            b"gen_ai.usage.cache_creation.ephemeral_1h_input_tokens"
            | b"gen_ai.usage.cache_write.ephemeral_1h_input_tokens" => T(Tok::Write1h),
            b"gen_ai.usage.details.ephemeral_1h_input_tokens" => T(Tok::Write1hDetails),
            b"gen_ai.usage.raw" => X(Txt::UsageRaw),
            b"gen_ai.usage.cost" => Key::ReportedCost,
            b"gen_ai.provider.name" => X(Txt::ProviderName),
            b"gen_ai.system" => X(Txt::System),
            b"gen_ai.response.model" => X(Txt::RespModel),
            b"gen_ai.request.model" => X(Txt::ReqModel),
            b"gen_ai.operation.name" => X(Txt::Operation),
            b"gen_ai.response.id" => X(Txt::ResponseId),
            b"gen_ai.response.time_to_first_chunk" => Key::Ttft(Ttft::GenAiSeconds),
            b"gen_ai.request.batch" => Key::Batch,
            b"gen_ai.openai.request.service_tier"
            | b"gen_ai.openai.response.service_tier"
            | b"gen_ai.request.service_tier"
            | b"gen_ai.response.service_tier" => X(Txt::ServiceTier),
            _ if key.starts_with(b"gen_ai.aggregated_usage.") => Key::AggregatedUsage,
            _ => return None,
        },
        b"llm" => match key {
            b"llm.token_count.prompt" => T(Tok::OiPrompt),
            b"llm.token_count.completion" => T(Tok::OiCompletion),
            b"llm.token_count.prompt_details.cache_read" => T(Tok::OiCacheRead),
            b"llm.token_count.prompt_details.cache_write" => T(Tok::OiCacheWrite),
            b"llm.token_count.completion_details.reasoning" => T(Tok::OiReasoning),
            b"llm.usage.input_tokens" => T(Tok::LuIn),
            b"llm.usage.output_tokens" => T(Tok::LuOut),
            b"llm.usage.cache_read_input_tokens" => T(Tok::LuCacheRead),
            b"llm.usage.cache_creation_input_tokens" => T(Tok::LuCacheWrite),
            b"llm.usage.reasoning_tokens" => T(Tok::LuReasoning),
            b"llm.input_tokens" => T(Tok::HIn),
            b"llm.output_tokens" => T(Tok::HOut),
            b"llm.cache_read_input_tokens" => T(Tok::HCacheRead),
            b"llm.cache_creation_input_tokens" => T(Tok::HCacheWrite),
            b"llm.cache_creation.ephemeral_5m_input_tokens"
            | b"llm.usage.cache_creation.ephemeral_5m_input_tokens" => T(Tok::Write5m),
            b"llm.cache_creation.ephemeral_1h_input_tokens"
            | b"llm.usage.cache_creation.ephemeral_1h_input_tokens" => T(Tok::Write1h),
            b"llm.cost.total" => Key::ReportedCost,
            b"llm.provider" => X(Txt::LlmProvider),
            b"llm.system" => X(Txt::LlmSystem),
            b"llm.vendor" => X(Txt::LlmVendor),
            b"llm.model_name" => X(Txt::OiModel),
            b"llm.model" => X(Txt::LlmModel),
            b"llm.response.model_name" => X(Txt::OiRespModel),
            b"llm.response.model" => X(Txt::LlmRespModel),
            b"llm.request.model_name" => X(Txt::OiReqModel),
            b"llm.request.model" => X(Txt::LlmReqModel),
            b"llm.response.id" => X(Txt::ResponseId),
            b"llm.batch" => Key::Batch,
            _ => return None,
        },
        b"ai." => match key {
            b"ai.usage.promptTokens" => T(Tok::VPrompt),
            b"ai.usage.completionTokens" => T(Tok::VCompletion),
            b"ai.usage.inputTokens" => T(Tok::VIn),
            b"ai.usage.outputTokens" => T(Tok::VOut),
            b"ai.usage.cachedInputTokens" => T(Tok::VCached),
            b"ai.usage.reasoningTokens" => T(Tok::VReasoning),
            b"ai.usage.inputTokenDetails.noCacheTokens" => T(Tok::VNoCache),
            b"ai.usage.inputTokenDetails.cacheReadTokens" => T(Tok::VCacheRead),
            b"ai.usage.inputTokenDetails.cacheWriteTokens" => T(Tok::VCacheWrite),
            b"ai.model.provider" => X(Txt::AiProvider),
            b"ai.model.id" => X(Txt::AiModel),
            b"ai.response.model" => X(Txt::AiRespModel),
            b"ai.response.id" => X(Txt::ResponseId),
            b"ai.response.providerMetadata" => X(Txt::AiProviderMetadata),
            b"ai.response.msToFirstChunk" => Key::Ttft(Ttft::VercelMs),
            b"ai.stream.msToFirstChunk" => Key::Ttft(Ttft::VercelStreamMs),
            _ => return None,
        },
        // The Anthropic SDKs' own spans carry the cache-write lifetime split only here.
        b"ant" => match key {
            b"anthropic.usage.cache_creation.ephemeral_5m_input_tokens" => T(Tok::Write5m),
            b"anthropic.usage.cache_creation.ephemeral_1h_input_tokens" => T(Tok::Write1h),
            _ => return None,
        },
        b"ope" if key == b"openinference.span.kind" => X(Txt::OiKind),
        b"tra" if key == b"traceloop.span.kind" => X(Txt::TraceloopKind),
        b"tol" if key == b"tollgate.batch" => Key::Batch,
        b"out" if key == b"output.value" => X(Txt::OutputValue),
        _ => return None,
    };
    Some(k)
}

/// One token-count attribute as read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Count {
    #[default]
    Absent,
    Valid(u64),
    Invalid,
}

fn read_count(v: &AttrValue<'_>) -> Count {
    let n = match *v {
        AttrValue::Int(i) => Some(i),
        AttrValue::Double(d) if d.is_finite() && d.fract() == 0.0 && d.abs() <= 1e15 => {
            Some(d as i64)
        }
        AttrValue::Str(s) => s.trim().parse::<i64>().ok(),
        _ => None,
    };
    match n {
        Some(n) if (0..=MAX_TOKENS as i64).contains(&n) => Count::Valid(n as u64),
        _ => Count::Invalid,
    }
}

/// What the span is, as far as pricing goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpanClass {
    /// Not an LLM call (no model, usage or model-call operation).
    NotLlm,
    /// Repeats usage of the calls beneath it (agent roots, Vercel outer spans, workflows).
    Aggregate,
    /// A model call.
    Call,
}

/// The usage a call reported.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum UsageRead {
    /// Neither input nor output counts were present.
    Missing,
    /// A count was not a non-negative integer up to [`MAX_TOKENS`], or counts contradict.
    Invalid,
    /// Usable counts.
    Valid(Normalised),
}

/// What a span says about a model call, borrowed from the span.
#[derive(Debug, Clone, Copy)]
pub struct Recognised<'a> {
    /// Call, aggregate or neither.
    pub class: SpanClass,
    /// Provider, lower-cased family (`anthropic`, `openai`, `google`, or the emitter's value).
    pub provider: Option<&'a str>,
    /// Model id: the response model when present, else the request model.
    pub model: Option<&'a str>,
    /// The usage.
    pub usage: UsageRead,
    /// The span marks a batch-API call.
    pub batch: bool,
    /// The provider's response id, when present (links spans of one call across traces).
    pub response_id: Option<&'a str>,
    /// A cost the emitter already reported (USD), if any.
    pub reported_cost: Option<f64>,
    /// Time to the first streamed chunk in nanoseconds, when the span carries it
    /// (`gen_ai.response.time_to_first_chunk`, `ai.response.msToFirstChunk`,
    /// `ai.stream.msToFirstChunk`). Not yet checked against the span's duration.
    pub time_to_first_token_ns: Option<u64>,
    /// The instrumentation that emitted the span (see [`super::source`]).
    pub emitter: Emitter,
}

impl Default for Recogniser<'_> {
    fn default() -> Self {
        Self::new()
    }
}

/// Reads attributes one at a time; [`Recogniser::finish`] classifies.
#[derive(Debug)]
pub struct Recogniser<'a> {
    tok: [Count; N_TOK],
    txt: [Option<&'a str>; N_TXT],
    ttft: [Option<u64>; N_TTFT],
    any_tok: bool,
    any_key: bool,
    batch: bool,
    reported_cost: Option<f64>,
    aggregated: bool,
    any_ai: bool,
    scope: &'a str,
    sdk_name: &'a str,
}

impl<'a> Recogniser<'a> {
    /// A fresh recogniser.
    pub fn new() -> Self {
        Self {
            tok: [Count::Absent; N_TOK],
            txt: [None; N_TXT],
            ttft: [None; N_TTFT],
            any_tok: false,
            any_key: false,
            batch: false,
            reported_cost: None,
            aggregated: false,
            any_ai: false,
            scope: "",
            sdk_name: "",
        }
    }

    /// Says where the span came from: its instrumentation scope name and the resource's
    /// `telemetry.sdk.name` (both may be empty). They pick the row of the emitter table.
    pub fn set_origin(&mut self, scope: &'a str, sdk_name: &'a str) {
        self.scope = scope;
        self.sdk_name = sdk_name;
    }

    /// Feeds one attribute; returns true when the key was one of ours.
    #[inline]
    pub fn observe(&mut self, key: &'a str, value: AttrValue<'a>) -> bool {
        self.observe_lazy(key.as_bytes(), || value)
    }

    /// Like [`Self::observe`], but reads the value only when the key is one of ours (a span's
    /// other attributes, prompts included, are never converted).
    #[inline]
    pub fn observe_lazy(&mut self, key: &[u8], value: impl FnOnce() -> AttrValue<'a>) -> bool {
        let Some(k) = classify(key) else {
            return false;
        };
        let value = value();
        self.any_key = true;
        self.any_ai |= key.starts_with(b"ai.");
        match k {
            Key::Tok(t) => {
                self.tok[t as usize] = read_count(&value);
                self.any_tok = true;
            }
            Key::Txt(t) => {
                self.txt[t as usize] = value.as_str().map(str::trim).filter(|s| !s.is_empty())
            }
            Key::Ttft(t) => self.ttft[t as usize] = read_ttft_ns(&value, t),
            Key::AggregatedUsage => self.aggregated = true,
            Key::Batch => self.batch |= value.as_bool() == Some(true),
            Key::ReportedCost => {
                if let Some(c) = value.as_f64().filter(|c| c.is_finite()) {
                    // `llm.cost.total` is preferred; `gen_ai.usage.cost` only fills a gap.
                    if key == b"llm.cost.total" || self.reported_cost.is_none() {
                        self.reported_cost = Some(c);
                    }
                }
            }
        }
        true
    }

    fn t(&self, x: Txt) -> Option<&'a str> {
        self.txt[x as usize]
    }

    fn first(&self, order: &[Txt]) -> Option<&'a str> {
        order.iter().find_map(|x| self.t(*x))
    }

    fn c(&self, t: Tok) -> Count {
        self.tok[t as usize]
    }

    /// True when no attribute was one of ours: the span is not an LLM span (checked before
    /// [`Self::finish`] on the hot path).
    pub fn saw_nothing(&self) -> bool {
        !self.any_key
    }

    /// Classifies the span from what was observed, given its name.
    pub fn finish(&self, span_name: &str) -> Recognised<'a> {
        let emitter = Emitter::identify(self.scope, self.sdk_name, self.any_ai);
        let model = self.first(&[
            Txt::RespModel,
            Txt::OiRespModel,
            Txt::LlmRespModel,
            Txt::AiRespModel,
            Txt::OiModel,
            Txt::LlmModel,
            Txt::ReqModel,
            Txt::OiReqModel,
            Txt::LlmReqModel,
            Txt::AiModel,
        ]);
        let provider_raw = self.first(&[
            Txt::ProviderName,
            Txt::System,
            Txt::LlmProvider,
            Txt::LlmSystem,
            Txt::AiProvider,
            Txt::LlmVendor,
        ]);
        let provider = provider_raw
            .map(provider_family)
            .or_else(|| model.and_then(provider_from_model));
        let op = self.t(Txt::Operation);
        let oi_kind = self.t(Txt::OiKind);
        let llm_kind = op.is_some_and(|o| {
            matches!(
                o,
                "chat" | "generate_content" | "text_completion" | "embeddings"
            )
        }) || oi_kind
            .is_some_and(|k| k.eq_ignore_ascii_case("LLM") || k.eq_ignore_ascii_case("EMBEDDING"));
        let llm_ish = self.any_tok || model.is_some() || llm_kind;
        let other_op =
            op.is_some_and(|o| matches!(o, "execute_tool" | "retrieval" | "create_agent"));
        let aggregate = self.aggregated
            || op.is_some_and(|o| matches!(o, "invoke_agent" | "agent_step" | "invoke_workflow"))
            || span_name.starts_with("invoke_agent")
            || span_name.starts_with("agent_step")
            || matches!(
                span_name,
                "ai.generateText" | "ai.streamText" | "ai.generateObject" | "ai.streamObject"
            )
            || oi_kind.is_some_and(|k| {
                k.eq_ignore_ascii_case("AGENT") || k.eq_ignore_ascii_case("CHAIN")
            })
            || self
                .t(Txt::TraceloopKind)
                .is_some_and(|k| matches!(k, "workflow" | "agent" | "task"));
        let class = if !llm_ish || (other_op && !self.any_tok) {
            SpanClass::NotLlm
        } else if aggregate {
            SpanClass::Aggregate
        } else {
            SpanClass::Call
        };
        let batch = self.batch
            || self
                .t(Txt::ServiceTier)
                .is_some_and(|t| t.eq_ignore_ascii_case("batch"));
        Recognised {
            class,
            provider,
            model,
            usage: if class == SpanClass::Call {
                // Token semantics follow the model's maker: Claude on Bedrock counts like
                // Anthropic.
                let maker = match provider {
                    Some("anthropic" | "openai" | "google") => provider,
                    _ => model.and_then(provider_from_model).or(provider),
                };
                self.usage(maker, emitter)
            } else {
                UsageRead::Missing
            },
            batch,
            response_id: self.t(Txt::ResponseId).or_else(|| {
                (class == SpanClass::Call && emitter.row().response_id_in_output_value)
                    .then(|| self.t(Txt::OutputValue).and_then(response_id_in_json))
                    .flatten()
            }),
            reported_cost: self.reported_cost,
            time_to_first_token_ns: self.ttft.iter().find_map(|t| *t),
            emitter,
        }
    }

    fn usage(&self, provider: Option<&str>, emitter: Emitter) -> UsageRead {
        let row = emitter.row();
        if self.tok.contains(&Count::Invalid) {
            return UsageRead::Invalid;
        }
        let v = |t: Tok| match self.c(t) {
            Count::Valid(n) => Some(n),
            _ => None,
        };
        let any = |ts: &[Tok]| ts.iter().find_map(|t| v(*t));
        // (convention, input, output, read, write, reasoning, default semantics, uncached)
        struct Raw {
            conv: Convention,
            input: Option<u64>,
            output: Option<u64>,
            read: Option<u64>,
            write: Option<u64>,
            reasoning: Option<u64>,
            semantics: InputSemantics,
            uncached: Option<u64>,
        }
        let raw_provider_semantics = match provider {
            Some("openai") | Some("google") => InputSemantics::IncludesCache,
            _ => InputSemantics::ExcludesCache,
        };
        let candidates = [
            // The AI SDK also writes `gen_ai.usage.{input,output}_tokens` on its call spans, but
            // only `ai.usage.*` has the cache split: when both are there, `ai.usage.*` wins.
            Raw {
                conv: Convention::VercelAi,
                input: any(&[Tok::VIn, Tok::VPrompt]),
                output: any(&[Tok::VOut, Tok::VCompletion]),
                read: any(&[Tok::VCacheRead, Tok::VCached]),
                write: match v(Tok::VCacheWrite) {
                    Some(w) => Some(w),
                    None if provider == Some("anthropic") => {
                        match anthropic_cache_creation(self.t(Txt::AiProviderMetadata)) {
                            Err(()) => return UsageRead::Invalid,
                            Ok(w) => w,
                        }
                    }
                    None => None,
                },
                reasoning: v(Tok::VReasoning),
                // AI SDK v4–v5 reported Anthropic input without cache tokens; v6+ also reports
                // `inputTokenDetails`, handled as explicit below.
                semantics: if provider == Some("anthropic") {
                    InputSemantics::ExcludesCache
                } else {
                    InputSemantics::IncludesCache
                },
                uncached: v(Tok::VNoCache),
            },
            Raw {
                conv: Convention::GenAi,
                input: any(&[Tok::GIn, Tok::GPrompt]),
                output: any(&[Tok::GOut, Tok::GCompletion]),
                read: any(&[Tok::GCacheRead, Tok::GCacheReadOld]),
                write: any(&[
                    Tok::GCacheWrite,
                    Tok::GCacheCreation,
                    Tok::GCacheCreationOld,
                ]),
                reasoning: any(&[Tok::GReasoning, Tok::GReasoningOld, Tok::LuReasoning]),
                // Per emitter: some write the raw Anthropic (cache-exclusive) input here.
                semantics: if provider == Some("anthropic") {
                    row.anthropic_gen_ai_input
                } else {
                    InputSemantics::IncludesCache
                },
                uncached: None,
            },
            Raw {
                conv: Convention::OpenInference,
                input: v(Tok::OiPrompt),
                output: v(Tok::OiCompletion),
                read: v(Tok::OiCacheRead),
                write: v(Tok::OiCacheWrite),
                reasoning: v(Tok::OiReasoning),
                semantics: InputSemantics::IncludesCache,
                uncached: None,
            },
            Raw {
                conv: Convention::LlmUsage,
                input: v(Tok::LuIn),
                output: v(Tok::LuOut),
                read: v(Tok::LuCacheRead),
                write: v(Tok::LuCacheWrite),
                reasoning: v(Tok::LuReasoning),
                semantics: raw_provider_semantics,
                uncached: None,
            },
            Raw {
                conv: Convention::HandWritten,
                input: v(Tok::HIn),
                output: v(Tok::HOut),
                read: v(Tok::HCacheRead),
                write: v(Tok::HCacheWrite),
                reasoning: None,
                semantics: raw_provider_semantics,
                uncached: None,
            },
        ];
        let Some(raw) = candidates
            .into_iter()
            .find(|r| r.input.is_some() || r.output.is_some() || r.uncached.is_some())
        else {
            return UsageRead::Missing;
        };
        let read = raw.read.unwrap_or(0);
        let (mut w5, mut w1h) = (v(Tok::Write5m), v(Tok::Write1h));
        if w5.is_none() && w1h.is_none() && provider == Some("anthropic") {
            // The emitter table says where else this source writes the lifetime split.
            let json = match row.write_split {
                WriteSplit::UsageRawJson => self.t(Txt::UsageRaw),
                WriteSplit::OutputValueJson => self.t(Txt::OutputValue),
                WriteSplit::ProviderMetadata => self.t(Txt::AiProviderMetadata),
                WriteSplit::DetailsOneHourOnly => {
                    w1h = Some(v(Tok::Write1hDetails).unwrap_or(0));
                    None
                }
                WriteSplit::Attributes | WriteSplit::NotReported => None,
            };
            match json.map(write_split_in_json) {
                Some(Err(())) => return UsageRead::Invalid,
                Some(Ok(Some((a, b)))) => (w5, w1h) = (a, b),
                _ => {}
            }
        }
        let write_split_known = w5.is_some() || w1h.is_some();
        let write = match (raw.write, w5, w1h) {
            (Some(w), _, _) => w,
            (None, a, b) => a.unwrap_or(0) + b.unwrap_or(0),
        };
        let (cache_write_5m, cache_write_1h) = match (w5, w1h) {
            (_, Some(h)) if h <= write => (write - h, h),
            (Some(m), None) if m <= write => (m, write - m),
            (None, None) => (write, 0),
            _ => return UsageRead::Invalid,
        };
        let input = raw.input.unwrap_or(0);
        let (semantics, uncached) = if let Some(u) = raw.uncached {
            (InputSemantics::Explicit, u)
        } else {
            match raw.semantics {
                InputSemantics::IncludesCache if read + write <= input => {
                    (InputSemantics::IncludesCache, input - read - write)
                }
                // A known source whose input includes cache cannot report more cache than input.
                InputSemantics::IncludesCache if emitter != Emitter::Unknown => {
                    return UsageRead::Invalid
                }
                // An unknown source that reports more cache than input can only have meant
                // exclusive input (the deprecated GenAI names were used both ways).
                _ => (InputSemantics::ExcludesCache, input),
            }
        };
        let mut output = raw.output.unwrap_or(0);
        let reasoning = raw.reasoning.unwrap_or(0);
        // Gemini's raw candidate count excludes thoughts; so does any source reporting more
        // reasoning than output.
        let gemini_raw = provider == Some("google")
            && matches!(raw.conv, Convention::LlmUsage | Convention::HandWritten);
        let reasoning_added_to_output = gemini_raw || reasoning > output;
        if reasoning_added_to_output {
            output += reasoning;
        }
        let usage = Usage {
            input: uncached,
            cache_read: read,
            cache_write_5m,
            cache_write_1h,
            output,
            reasoning,
        };
        if usage.total() > 4 * MAX_TOKENS {
            return UsageRead::Invalid;
        }
        UsageRead::Valid(Normalised {
            usage,
            convention: raw.conv,
            input_semantics: semantics,
            reasoning_added_to_output,
            write_split_known,
        })
    }
}

/// Cache-creation tokens from the AI SDK's `ai.response.providerMetadata` JSON
/// (`{"anthropic":{"cacheCreationInputTokens":N}}`), which is where AI SDK v4–v5 put Anthropic
/// cache writes. `Err` when present but not a valid count.
fn anthropic_cache_creation(metadata: Option<&str>) -> Result<Option<u64>, ()> {
    let Some(text) = metadata else {
        return Ok(None);
    };
    let Ok(json) = serde_json::from_str::<serde_json::Value>(text) else {
        return Ok(None);
    };
    match json
        .get("anthropic")
        .and_then(|a| a.get("cacheCreationInputTokens"))
    {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(n) => match n.as_u64() {
            Some(n) if n <= MAX_TOKENS => Ok(Some(n)),
            _ => Err(()),
        },
    }
}

/// (5-minute writes, 1-hour writes), each when stated.
type Split = (Option<u64>, Option<u64>);

/// The 5-minute / 1-hour cache-write split inside a provider usage JSON (Anthropic
/// `cache_creation.ephemeral_{5m,1h}_input_tokens`, LangChain `input_token_details`, the AI SDK's
/// `providerMetadata.anthropic.usage`): the first object, depth first, that has either key.
/// `Ok(None)` when the text is not JSON or has no split; `Err` when a split is not a valid count.
fn write_split_in_json(text: &str) -> Result<Option<Split>, ()> {
    let Ok(json) = serde_json::from_str::<serde_json::Value>(text) else {
        return Ok(None);
    };
    fn count(v: Option<&serde_json::Value>) -> Result<Option<u64>, ()> {
        match v {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(n) => match n.as_u64() {
                Some(n) if n <= MAX_TOKENS => Ok(Some(n)),
                _ => Err(()),
            },
        }
    }
    fn walk(v: &serde_json::Value, depth: u32) -> Result<Option<Split>, ()> {
        if depth > 32 {
            return Ok(None);
        }
        match v {
            serde_json::Value::Object(m) => {
                let (a, b) = (
                    m.get("ephemeral_5m_input_tokens"),
                    m.get("ephemeral_1h_input_tokens"),
                );
                if a.is_some() || b.is_some() {
                    return Ok(Some((count(a)?, count(b)?)));
                }
                for x in m.values() {
                    if let Some(found) = walk(x, depth + 1)? {
                        return Ok(Some(found));
                    }
                }
                Ok(None)
            }
            serde_json::Value::Array(a) => {
                for x in a {
                    if let Some(found) = walk(x, depth + 1)? {
                        return Ok(Some(found));
                    }
                }
                Ok(None)
            }
            _ => Ok(None),
        }
    }
    walk(&json, 0)
}

/// A provider response id inside an emitter's JSON payload (OpenInference `output.value`): the
/// first `"id"` string, depth first, that looks like one (`msg_…`, `chatcmpl-…`, `resp_…`),
/// returned as a slice of `text`.
fn response_id_in_json(text: &str) -> Option<&str> {
    let json = serde_json::from_str::<serde_json::Value>(text).ok()?;
    fn walk(v: &serde_json::Value, depth: u32) -> Option<&str> {
        if depth > 32 {
            return None;
        }
        match v {
            serde_json::Value::Object(m) => {
                if let Some(serde_json::Value::String(id)) = m.get("id") {
                    if ["msg_", "chatcmpl-", "resp_"]
                        .iter()
                        .any(|p| id.starts_with(p))
                    {
                        return Some(id);
                    }
                }
                m.values().find_map(|x| walk(x, depth + 1))
            }
            serde_json::Value::Array(a) => a.iter().find_map(|x| walk(x, depth + 1)),
            _ => None,
        }
    }
    let id = walk(&json, 0)?;
    // Ids have no characters JSON escapes, so the same bytes are in the text.
    let at = text.find(id)?;
    Some(&text[at..at + id.len()])
}

/// Recognises a span through any [`SpanAttrs`] view.
pub fn recognise<'a, S: SpanAttrs<'a>>(span: &S) -> Recognised<'a> {
    let mut r = Recogniser::new();
    let sdk = span
        .resource_attribute("telemetry.sdk.name")
        .and_then(|v| v.as_str())
        .unwrap_or("");
    r.set_origin(span.scope_name(), sdk);
    span.for_each_attribute(&mut |k, v| {
        r.observe(k, v);
    });
    r.finish(span.name())
}

/// The provider family of an emitter's provider value (`Anthropic`, `anthropic.messages`,
/// `gcp.vertex_ai`, …).
pub fn provider_family(raw: &str) -> &str {
    let lower_starts = |p: &str| raw.len() >= p.len() && raw[..p.len()].eq_ignore_ascii_case(p);
    if lower_starts("anthropic") || lower_starts("aws.bedrock.anthropic") {
        "anthropic"
    } else if lower_starts("openai") || lower_starts("azure") || lower_starts("az.ai.openai") {
        "openai"
    } else if lower_starts("google")
        || lower_starts("gcp.")
        || lower_starts("gemini")
        || lower_starts("vertex")
    {
        "google"
    } else {
        raw
    }
}

/// The provider a model id implies, for spans that do not say.
pub fn provider_from_model(model: &str) -> Option<&'static str> {
    let m = model.rsplit('/').next().unwrap_or(model);
    let m = m.to_ascii_lowercase();
    if m.contains("claude") {
        Some("anthropic")
    } else if m.contains("gemini") {
        Some("google")
    } else if m.starts_with("gpt")
        || m.starts_with("o1")
        || m.starts_with("o3")
        || m.starts_with("o4")
    {
        Some("openai")
    } else {
        None
    }
}

#[cfg(test)]
#[path = "recognise_tests.rs"]
mod tests;
