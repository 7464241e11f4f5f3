//! Normalised token usage: one meaning whatever the emitter's conventions were.

/// How the source's input count was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InputSemantics {
    /// The source's input count includes cache reads and writes (OTel GenAI ≥ 1.40, OpenLLMetry,
    /// OpenInference, AI SDK v6+, OpenAI and Gemini raw usage); uncached = input − read − write.
    IncludesCache,
    /// The source's input count excludes cache tokens (raw Anthropic usage, the hand-written
    /// `llm.input_tokens` convention, AI SDK v4 with Anthropic, or any source reporting
    /// read + write > input).
    ExcludesCache,
    /// The source reported uncached input on its own (AI SDK v7 `noCacheTokens`).
    Explicit,
}

impl InputSemantics {
    /// A short label.
    pub fn as_str(self) -> &'static str {
        match self {
            InputSemantics::IncludesCache => "input_includes_cache",
            InputSemantics::ExcludesCache => "input_excludes_cache",
            InputSemantics::Explicit => "input_uncached_explicit",
        }
    }
}

/// Token counts of one model call, normalised. All counts are at most [`MAX_TOKENS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Usage {
    /// Input tokens read neither from nor into the cache.
    pub input: u64,
    /// Input tokens read from the cache.
    pub cache_read: u64,
    /// Input tokens written to the cache with a 5-minute lifetime (or an unknown lifetime).
    pub cache_write_5m: u64,
    /// Input tokens written to the cache with a 1-hour lifetime.
    pub cache_write_1h: u64,
    /// Output tokens, reasoning included (what is billed as output).
    pub output: u64,
    /// Reasoning tokens (a part of `output`, kept apart for display).
    pub reasoning: u64,
}

/// Largest token count accepted for one field; larger values are `invalid_usage`.
pub const MAX_TOKENS: u64 = 1_000_000_000;

impl Usage {
    /// All cache-write tokens.
    pub fn cache_write(&self) -> u64 {
        self.cache_write_5m + self.cache_write_1h
    }

    /// Input tokens including cache reads and writes (the denominator of the cache-hit ratio and
    /// the quantity long-context tiers compare against).
    pub fn input_with_cache(&self) -> u64 {
        self.input + self.cache_read + self.cache_write()
    }

    /// Cache reads over input incl. cache; `None` when there was no input.
    pub fn cache_hit_ratio(&self) -> Option<f64> {
        self.tokens().cache_hit_ratio()
    }

    /// The counts by kind, as tasks, alerts and metrics hold them (`input_uncached` is `input`).
    pub fn tokens(&self) -> crate::units::Tokens {
        crate::units::Tokens {
            input_uncached: self.input,
            cache_read: self.cache_read,
            cache_write: self.cache_write(),
            output: self.output,
        }
    }

    /// All tokens (input incl. cache + output).
    pub fn total(&self) -> u64 {
        self.input_with_cache() + self.output
    }
}

/// Where the usage was read from, and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Convention {
    /// OpenTelemetry GenAI semantic conventions, any era (also OpenLLMetry and the Anthropic SDKs).
    GenAi,
    /// OpenInference `llm.token_count.*`.
    OpenInference,
    /// Vercel AI SDK `ai.usage.*`.
    VercelAi,
    /// `llm.usage.*` (hand-written variant).
    LlmUsage,
    /// Hand-written `llm.input_tokens` / `llm.output_tokens` / ….
    HandWritten,
}

impl Convention {
    /// A short label.
    pub fn as_str(self) -> &'static str {
        match self {
            Convention::GenAi => "gen_ai",
            Convention::OpenInference => "openinference",
            Convention::VercelAi => "vercel_ai",
            Convention::LlmUsage => "llm_usage",
            Convention::HandWritten => "llm",
        }
    }
}

/// A usage together with how it was interpreted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Normalised {
    /// The counts.
    pub usage: Usage,
    /// Which attribute family they came from.
    pub convention: Convention,
    /// How the input count was read.
    pub input_semantics: InputSemantics,
    /// True when the source's output count did not include reasoning and reasoning was added.
    pub reasoning_added_to_output: bool,
    /// True when the source said which cache writes were 5-minute and which 1-hour.
    pub write_split_known: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratio_is_read_over_input_including_cache() {
        let u = Usage {
            input: 1200,
            cache_read: 800,
            cache_write_5m: 100,
            ..Usage::default()
        };
        assert_eq!(u.input_with_cache(), 2100);
        assert_eq!(u.cache_hit_ratio(), Some(800.0 / 2100.0));
        assert_eq!(Usage::default().cache_hit_ratio(), None);
    }
}
