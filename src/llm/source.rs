//! Which instrumentation emitted a span, and what its token counts mean.
//!
//! The same attribute names carry different meanings in different libraries: OpenLLMetry for
//! Node writes the raw Anthropic `input_tokens` (cache excluded) under `gen_ai.usage.input_tokens`,
//! where the Anthropic SDKs, OpenLLMetry for Python, Pydantic AI, Strands, Logfire and the Vercel
//! AI SDK write input including cache. tollgate decides per source, from the instrumentation
//! scope, the resource's `telemetry.sdk.name` and the attribute family — never from the numbers.
//! Each row of [`EMITTERS`] was read from spans the library really emitted against the end-to-end
//! suite's fake LLM APIs (`tests/fixtures/emitters/`, one Rust test per row in
//! `tests/llm_emitters.rs`).

use super::usage::InputSemantics;

/// A known instrumentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Emitter {
    /// The Anthropic SDKs' own spans (`com.anthropic.sdk.python` / `.typescript`).
    AnthropicSdk,
    /// OpenLLMetry for Python (`opentelemetry.instrumentation.anthropic`, `.openai`, ...).
    OpenLlmetryPython,
    /// OpenLLMetry for Node (`@traceloop/instrumentation-*`, `@traceloop/node-server-sdk`).
    OpenLlmetryNode,
    /// OpenLIT (`telemetry.sdk.name = openlit`, scope `openlit.*`).
    OpenLit,
    /// Pydantic Logfire's `instrument_anthropic` / `instrument_openai` (`logfire.anthropic`, ...).
    Logfire,
    /// Pydantic AI's own instrumentation (`pydantic-ai`).
    PydanticAi,
    /// Strands Agents (`strands.telemetry.tracer`).
    Strands,
    /// Any OpenInference instrumentation (`openinference.instrumentation.*`: LangChain, OpenAI
    /// Agents, Anthropic, OpenAI, ...).
    OpenInference,
    /// The OpenTelemetry GenAI instrumentations (`opentelemetry-instrumentation-openai-v2`, whose
    /// spans carry the scope `opentelemetry.util.genai.handler` or
    /// `opentelemetry.instrumentation.openai_v2`).
    OtelGenAi,
    /// The Vercel AI SDK v4–v6 (`ai`, `ai.*` attributes).
    VercelAi,
    /// The Vercel AI SDK v7 through `@ai-sdk/otel` (scope `gen_ai`, GenAI names only).
    VercelAiOtel,
    /// Not recognised: the attribute family decides alone.
    Unknown,
}

/// Where an emitter writes the Anthropic cache-write lifetime split (5 minutes / 1 hour).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteSplit {
    /// In its own attributes (`anthropic.usage.cache_creation.ephemeral_{5m,1h}_input_tokens`,
    /// `gen_ai.usage.cache_creation.ephemeral_*`, `llm.cache_creation.ephemeral_*`).
    Attributes,
    /// `gen_ai.usage.details.ephemeral_1h_input_tokens`, written only when non-zero: its absence
    /// means no 1-hour writes.
    DetailsOneHourOnly,
    /// In the raw provider usage JSON of `gen_ai.usage.raw` (`cache_creation.ephemeral_*`).
    UsageRawJson,
    /// In the LangChain message of `output.value` (`response_metadata.usage.cache_creation`,
    /// `usage_metadata.input_token_details.ephemeral_*`); absent from streamed calls.
    OutputValueJson,
    /// In `ai.response.providerMetadata` (`anthropic.usage.cache_creation.ephemeral_*`).
    ProviderMetadata,
    /// Nowhere: 1-hour writes cannot be told from 5-minute ones.
    NotReported,
}

/// One row of the table: how to read a source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EmitterRow {
    /// The source.
    pub emitter: Emitter,
    /// Its label (`tollgate.pricing.emitter`).
    pub label: &'static str,
    /// Whether `gen_ai.usage.input_tokens` includes cache reads and writes, for Anthropic calls.
    /// (OpenAI and Gemini usage always counts cached tokens inside the prompt.)
    pub anthropic_gen_ai_input: InputSemantics,
    /// Where the Anthropic 5 m / 1 h cache-write split is.
    pub write_split: WriteSplit,
    /// The provider response id is (also) inside `output.value` JSON.
    pub response_id_in_output_value: bool,
}

const fn row(
    emitter: Emitter,
    label: &'static str,
    anthropic_gen_ai_input: InputSemantics,
    write_split: WriteSplit,
    response_id_in_output_value: bool,
) -> EmitterRow {
    EmitterRow {
        emitter,
        label,
        anthropic_gen_ai_input,
        write_split,
        response_id_in_output_value,
    }
}

use InputSemantics::{ExcludesCache as Excl, IncludesCache as Incl};

/// The table, one row per emitter (see the module docs and README "What each emitter writes").
pub const EMITTERS: [EmitterRow; 12] = [
    row(
        Emitter::AnthropicSdk,
        "anthropic_sdk",
        Incl,
        WriteSplit::Attributes,
        false,
    ),
    row(
        Emitter::OpenLlmetryPython,
        "openllmetry_python",
        Incl,
        WriteSplit::Attributes,
        false,
    ),
    // `@traceloop/instrumentation-anthropic` 0.27 sets `gen_ai.usage.input_tokens` from the
    // raw API `usage.input_tokens`, which excludes cache reads and writes.
    row(
        Emitter::OpenLlmetryNode,
        "openllmetry_node",
        Excl,
        WriteSplit::NotReported,
        false,
    ),
    row(
        Emitter::OpenLit,
        "openlit",
        Excl,
        WriteSplit::NotReported,
        false,
    ),
    row(
        Emitter::Logfire,
        "logfire",
        Incl,
        WriteSplit::UsageRawJson,
        false,
    ),
    row(
        Emitter::PydanticAi,
        "pydantic_ai",
        Incl,
        WriteSplit::DetailsOneHourOnly,
        false,
    ),
    row(
        Emitter::Strands,
        "strands",
        Incl,
        WriteSplit::NotReported,
        false,
    ),
    row(
        Emitter::OpenInference,
        "openinference",
        Incl,
        WriteSplit::OutputValueJson,
        true,
    ),
    row(
        Emitter::OtelGenAi,
        "otel_genai",
        Incl,
        WriteSplit::Attributes,
        false,
    ),
    row(
        Emitter::VercelAi,
        "vercel_ai",
        Incl,
        WriteSplit::ProviderMetadata,
        false,
    ),
    row(
        Emitter::VercelAiOtel,
        "vercel_ai_otel",
        Incl,
        WriteSplit::NotReported,
        false,
    ),
    row(
        Emitter::Unknown,
        "unknown",
        Incl,
        WriteSplit::Attributes,
        false,
    ),
];

impl Emitter {
    /// Its row of [`EMITTERS`].
    pub fn row(self) -> &'static EmitterRow {
        // The table is small and ordered like the enum; a miss would be a bug caught by tests.
        EMITTERS
            .iter()
            .find(|r| r.emitter == self)
            .unwrap_or(&EMITTERS[EMITTERS.len() - 1])
    }

    /// The label written as `tollgate.pricing.emitter`.
    pub fn label(self) -> &'static str {
        self.row().label
    }

    /// Identifies the emitter from the span's instrumentation scope and the resource's
    /// `telemetry.sdk.name`. `vercel_family` is true when the span carries `ai.*` attributes.
    pub fn identify(scope: &str, sdk_name: &str, vercel_family: bool) -> Emitter {
        let starts = |p: &str| scope.len() >= p.len() && scope[..p.len()].eq_ignore_ascii_case(p);
        if sdk_name.eq_ignore_ascii_case("openlit") || starts("openlit") {
            Emitter::OpenLit
        } else if starts("com.anthropic.sdk") {
            Emitter::AnthropicSdk
        } else if starts("@traceloop/") {
            Emitter::OpenLlmetryNode
        } else if starts("openinference.instrumentation") {
            Emitter::OpenInference
        } else if starts("opentelemetry.util.genai")
            || starts("opentelemetry.instrumentation.openai_v2")
        {
            Emitter::OtelGenAi
        } else if starts("opentelemetry.instrumentation.") {
            Emitter::OpenLlmetryPython
        } else if starts("logfire.") {
            Emitter::Logfire
        } else if scope.eq_ignore_ascii_case("pydantic-ai") || starts("pydantic_ai") {
            Emitter::PydanticAi
        } else if starts("strands.") {
            Emitter::Strands
        } else if vercel_family || scope == "ai" {
            Emitter::VercelAi
        } else if scope == "gen_ai" {
            Emitter::VercelAiOtel
        } else {
            Emitter::Unknown
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_emitter_has_exactly_one_row() {
        for (i, r) in EMITTERS.iter().enumerate() {
            assert_eq!(
                EMITTERS.iter().filter(|o| o.emitter == r.emitter).count(),
                1
            );
            assert_eq!(r.emitter.row().label, r.label, "row {i}");
        }
    }

    #[test]
    fn scopes_seen_in_the_fixtures_identify_their_emitter() {
        use Emitter::*;
        let cases = [
            ("com.anthropic.sdk.python", "opentelemetry", AnthropicSdk),
            ("com.anthropic.sdk.typescript", "", AnthropicSdk),
            (
                "opentelemetry.instrumentation.anthropic",
                "opentelemetry",
                OpenLlmetryPython,
            ),
            ("@traceloop/instrumentation-anthropic", "", OpenLlmetryNode),
            ("openlit.otel.tracing", "openlit", OpenLit),
            ("anything", "openlit", OpenLit),
            ("logfire.anthropic", "opentelemetry", Logfire),
            ("logfire.openai", "opentelemetry", Logfire),
            ("pydantic-ai", "opentelemetry", PydanticAi),
            ("strands.telemetry.tracer", "opentelemetry", Strands),
            (
                "openinference.instrumentation.langchain",
                "opentelemetry",
                OpenInference,
            ),
            (
                "openinference.instrumentation.openai_agents",
                "opentelemetry",
                OpenInference,
            ),
            (
                "opentelemetry.util.genai.handler",
                "opentelemetry",
                OtelGenAi,
            ),
            ("gen_ai", "opentelemetry", VercelAiOtel),
            ("ai", "opentelemetry", VercelAi),
            ("my-app", "opentelemetry", Unknown),
        ];
        for (scope, sdk, want) in cases {
            assert_eq!(Emitter::identify(scope, sdk, false), want, "{scope}");
        }
        assert_eq!(Emitter::identify("", "", true), VercelAi);
    }
}
