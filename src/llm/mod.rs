//! Understanding and pricing LLM calls.
//!
//! For each span: [`recognise`] reads the attributes of whatever emitted it (OTel GenAI semconv in
//! every era, OpenInference, OpenLLMetry, the Vercel AI SDK, the Anthropic SDKs, hand-written
//! `llm.*`) into a normalised [`usage::Usage`]; aggregate spans and second reports of one call
//! ([`dedupe::CallRegistry`]) are not priced; the rest are priced exactly
//! ([`money`], [`price_table`]) from the table in force ([`pricer::Pricer`], reloadable), and
//! [`enrich`] says which attributes to write:
//!
//! - priced spans: `llm.cost.{total,prompt,completion}`, `llm.cost.prompt_details.{input,
//!   cache_read,cache_write}`, `llm.cost.completion_details.output`, `gen_ai.usage.cost` (USD),
//!   `llm.cache_hit_ratio`, `tollgate.pricing.{status,entry,effective_from,tier,batch}`, and
//!   `tollgate.cost.reported_usd` when the emitter had set a cost;
//! - other LLM-call spans: `tollgate.pricing.status` (why unpriced), the entry when one matched,
//!   and the cache-hit ratio when usage was readable — never a cost of $0;
//! - aggregate spans: `tollgate.pricing.status = aggregate` only;
//! - everything else: untouched.
//!
//! Nothing derived is ever written under `gen_ai.usage.*` (except `gen_ai.usage.cost`) or
//! `llm.token_count.*`.

pub mod cli;
pub mod config;
pub mod dedupe;
pub mod enrich;
pub mod metrics;
pub mod money;
pub mod price_table;
pub mod pricer;
pub mod recognise;
pub mod source;
pub mod usage;

pub use config::PricingConfig;
pub use enrich::{
    langfuse_details, Enriched, Enricher, LangfuseDetails, LlmOutcome, PricingStatus,
};
pub use price_table::{Cost, PricingError, ValidatedTable};
pub use pricer::Pricer;
pub use usage::Usage;
