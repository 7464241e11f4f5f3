//! Enriching spans: recognise, dedupe, price, and say what to write on the span.

use std::ops::Range;
use std::sync::Arc;

use super::config::PricingConfig;
use super::dedupe::{CallRegistry, Fingerprint, Sighting, Verdict};
use super::metrics::metrics;
use super::price_table::{Cost, PriceRequest, PricingError, Unpriced, ValidatedTable};
use super::pricer::Pricer;
use super::recognise::{may_be_ours, Recognised, Recogniser, SpanClass, UsageRead};
use super::source::Emitter;
use super::usage::{Convention, InputSemantics, Usage};
use crate::wire::attr::{push_span_attribute, NewValue};
use crate::wire::edit::SpanEdit;
use crate::wire::{AttrValue, RequestIndex, SpanAttrs, SpanRef};

/// `tollgate.pricing.status` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PricingStatus {
    /// Priced.
    Priced,
    /// No table entry matches the model (or the span names no model) and no fallback is set.
    UnknownModel,
    /// A model call without token counts.
    NoUsage,
    /// The span repeats usage reported elsewhere (agent roots, Vercel outer spans, a second
    /// report of one call).
    Aggregate,
    /// A token count is not a non-negative integer up to 10⁹, or the counts contradict.
    InvalidUsage,
    /// The entry lacks a price for tokens the call used (e.g. cache writes).
    IncompletePrice,
}

impl PricingStatus {
    /// The attribute value and metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            PricingStatus::Priced => "priced",
            PricingStatus::UnknownModel => "unknown_model",
            PricingStatus::NoUsage => "no_usage",
            PricingStatus::Aggregate => "aggregate",
            PricingStatus::InvalidUsage => "invalid_usage",
            PricingStatus::IncompletePrice => "incomplete_price",
        }
    }
}

/// What tollgate concluded about one LLM span, for task roll-ups, alerts and metrics.
#[derive(Debug, Clone, PartialEq)]
pub struct LlmOutcome {
    /// The pricing status written on the span.
    pub status: PricingStatus,
    /// True for a model call counted once: false for aggregate spans and later reports of a call
    /// another span already reported. Roll-ups sum `cost` and `usage` over these only.
    pub is_llm_call: bool,
    /// True when this span was a later report of an already-seen call.
    pub duplicate: bool,
    /// Provider family (`anthropic`, `openai`, `google`, …).
    pub provider: Option<String>,
    /// Model id as reported (response model preferred).
    pub model: Option<String>,
    /// The price-table entry used (also set for `incomplete_price`).
    pub entry: Option<Arc<str>>,
    /// The `effective_from` of the entry version used.
    pub entry_effective_from: Option<Arc<str>>,
    /// The long-context tier applied (its `above_input_tokens`).
    pub tier: Option<u64>,
    /// The cost in nano-USD, when priced.
    pub cost: Option<Cost>,
    /// Normalised usage, when valid.
    pub usage: Option<Usage>,
    /// Where the usage came from.
    pub convention: Option<Convention>,
    /// How the source's input count was read.
    pub input_semantics: Option<InputSemantics>,
    /// The instrumentation that emitted the span, when recognised (its row of the emitter table
    /// decided how the counts were read).
    pub emitter: Option<Emitter>,
    /// True when the call wrote to the cache but its report does not say which writes were
    /// 5-minute and which 1-hour (priced at the 5-minute rate; `tollgate.pricing.cache_write_lifetime
    /// = "unknown"` on the span).
    pub write_lifetime_unknown: bool,
    /// A batch-API call.
    pub batch: bool,
    /// The cost the emitter reported (USD), if any.
    pub reported_cost_usd: Option<f64>,
    /// Span duration in nanoseconds; `None` when the timestamps give none that is usable
    /// (see [`call_duration_ns`]).
    pub duration_ns: Option<u64>,
    /// Time to the first streamed token in nanoseconds, when the span carries it and it lies
    /// within the span (a longer one is rejected, not recorded).
    pub time_to_first_token_ns: Option<u64>,
}

impl LlmOutcome {
    /// Total cost in nano-USD (0 when not priced).
    pub fn total_nanos(&self) -> i64 {
        self.cost.map_or(0, |c| c.total())
    }
    /// Cache-read tokens (numerator of the cache-hit ratio).
    pub fn cache_read_tokens(&self) -> u64 {
        self.usage.map_or(0, |u| u.cache_read)
    }
    /// Input tokens incl. cache (denominator of the cache-hit ratio).
    pub fn input_with_cache_tokens(&self) -> u64 {
        self.usage.map_or(0, |u| u.input_with_cache())
    }
}

/// An enriched span: the edit to apply and the outcome.
#[derive(Debug, Clone, PartialEq)]
pub struct Enriched {
    /// `SpanEdit::Modify` with the attributes to remove and append.
    pub edit: SpanEdit,
    /// What was concluded.
    pub outcome: LlmOutcome,
}

/// An LLM span read but not yet concluded: what was recognised, and the attribute ranges
/// tollgate will remove (its own, and a reported cost).
pub struct Prepared<'a> {
    rec: Recognised<'a>,
    own: Vec<Range<u32>>,
    reported: Vec<Range<u32>>,
}

impl Prepared<'_> {
    /// True when the span said which cache writes were 5-minute and which 1-hour (the Anthropic
    /// SDK spans): such a report of a call should be checked in before the others.
    pub fn knows_write_split(&self) -> bool {
        matches!(self.rec.usage, UsageRead::Valid(u) if u.write_split_known)
    }

    /// True when the span reports a call with valid usage: the spans that claim their call in
    /// the shared state before pricing (see [`Enricher::finish_claimed`]).
    pub fn reports_call(&self) -> bool {
        self.rec.class == SpanClass::Call && matches!(self.rec.usage, UsageRead::Valid(_))
    }
}

/// One pass over a span's indexed attributes; `None` for a span that is not an LLM span. Keys
/// are tested as bytes first, and values are read only for the keys recognition uses.
pub fn prepare<'a>(span: &SpanRef<'a>) -> Option<Prepared<'a>> {
    let mut r = Recogniser::new();
    let mut own: Vec<Range<u32>> = Vec::new();
    let mut reported: Vec<Range<u32>> = Vec::new();
    for a in span.attrs() {
        // Every key below (ours, reported costs, recognition's) passes `may_be_ours`.
        let k = span.key_bytes(a);
        if !may_be_ours(k) {
            continue;
        }
        if r.observe_lazy(k, || span.value(a.value)) {
            if is_reported_cost_key(k) {
                reported.push(a.field.clone());
            }
        } else if is_own_key(k) {
            own.push(a.field.clone());
        } else if is_reported_cost_key(k) {
            reported.push(a.field.clone());
        }
    }
    if r.saw_nothing() {
        return None;
    }
    let sdk = span
        .resource_attribute("telemetry.sdk.name")
        .and_then(|v| v.as_str())
        .unwrap_or("");
    r.set_origin(span.scope_name(), sdk);
    let rec = r.finish(span.name());
    (rec.class != SpanClass::NotLlm).then_some(Prepared { rec, own, reported })
}

/// Recognises, dedupes and prices LLM spans.
#[derive(Debug)]
pub struct Enricher {
    pricer: Pricer,
    registry: CallRegistry,
}

/// Attributes tollgate owns on an LLM span (removed before writing fresh ones).
fn is_own_key(k: &[u8]) -> bool {
    k.starts_with(b"tollgate.pricing.")
        || k.starts_with(b"tollgate.cost.")
        || k == b"llm.cache_hit_ratio"
}

/// Cost attributes an emitter may have set.
fn is_reported_cost_key(k: &[u8]) -> bool {
    k.starts_with(b"llm.cost.") || k == b"gen_ai.usage.cost"
}

impl Enricher {
    /// An enricher over the validated `config`.
    pub fn new(config: &PricingConfig) -> Result<Self, Vec<PricingError>> {
        Ok(Self {
            pricer: Pricer::new(config)?,
            registry: CallRegistry::new(config.dedupe_capacity, config.dedupe_ttl),
        })
    }

    /// The live price table (for reload).
    pub fn pricer(&self) -> &Pricer {
        &self.pricer
    }

    /// Enriches every span of a scanned request: one edit per span (`Keep` for non-LLM spans) and
    /// the outcome of each LLM span.
    ///
    /// When one call is reported by several spans of the request, the first one checked in is
    /// priced. Spans that say which cache writes were 5-minute and which 1-hour (the Anthropic SDK
    /// spans) are checked in before the others, so the call is priced from the report that
    /// knows the split, whatever order the emitter exported the spans in.
    pub fn enrich_request(
        &self,
        buf: &[u8],
        index: &RequestIndex,
    ) -> (Vec<SpanEdit>, Vec<Option<LlmOutcome>>) {
        let n = index.spans.len();
        let spans: Vec<SpanRef<'_>> = (0..n).map(|i| SpanRef::new(buf, index, i)).collect();
        let mut prepared: Vec<Option<Prepared<'_>>> = spans.iter().map(prepare).collect();
        let mut edits = vec![SpanEdit::Keep; n];
        let mut outcomes = vec![None; n];
        let knows_split =
            |p: &Option<Prepared<'_>>| p.as_ref().is_some_and(|p| p.knows_write_split());
        let first: Vec<usize> = (0..n).filter(|&i| knows_split(&prepared[i])).collect();
        let rest: Vec<usize> = (0..n).filter(|&i| !knows_split(&prepared[i])).collect();
        for i in first.into_iter().chain(rest) {
            if let Some(p) = prepared[i].take() {
                let e = self.finish(&spans[i], p);
                edits[i] = e.edit;
                outcomes[i] = Some(e.outcome);
            }
        }
        (edits, outcomes)
    }

    /// Enriches one span; `None` for a span that is not an LLM span (leave it untouched).
    /// One pass over the attributes; nothing is allocated for non-LLM spans.
    pub fn enrich(&self, span: &SpanRef<'_>) -> Option<Enriched> {
        prepare(span).map(|p| self.finish(span, p))
    }

    /// Concludes a [`prepare`]d span (dedupe, price) and says what to write on it.
    pub fn finish<'a>(&self, span: &SpanRef<'a>, p: Prepared<'a>) -> Enriched {
        self.finish_claimed(span, p, true)
    }

    /// [`Self::finish`], told whether the span's claim on its call (trace id + span id, see
    /// [`super::dedupe::claim_key`]) was the first in the shared state: `claimed = false` (the
    /// span was priced before, e.g. before a restart) makes a reported call a duplicate.
    pub fn finish_claimed<'a>(
        &self,
        span: &SpanRef<'a>,
        p: Prepared<'a>,
        claimed: bool,
    ) -> Enriched {
        let Prepared { rec, own, reported } = p;
        let table = self.pricer.snapshot();
        let outcome = self.conclude(span, &rec, &table, claimed);
        let had_reported = !reported.is_empty();
        let replace =
            outcome.status == PricingStatus::Priced && table.replace_reported_cost && had_reported;
        let mut remove = own;
        if replace {
            remove.extend(reported);
            remove.sort_by_key(|r| r.start);
        }
        let mut append = Vec::with_capacity(512);
        write_attributes(&mut append, &outcome, &table, had_reported);
        Enriched {
            edit: SpanEdit::Modify { remove, append },
            outcome,
        }
    }

    /// The outcome for any span view (no edit); `None` for non-LLM spans.
    pub fn assess<'a, S: SpanAttrs<'a>>(&self, span: &S) -> Option<LlmOutcome> {
        let rec = super::recognise::recognise(span);
        if rec.class == SpanClass::NotLlm {
            return None;
        }
        let table = self.pricer.snapshot();
        Some(self.conclude(span, &rec, &table, true))
    }

    fn conclude<'a, S: SpanAttrs<'a>>(
        &self,
        span: &S,
        rec: &Recognised<'a>,
        table: &ValidatedTable,
        claimed: bool,
    ) -> LlmOutcome {
        let duration_ns = call_duration_ns(span.start_time_unix_nano(), span.end_time_unix_nano());
        let mut o = LlmOutcome {
            status: PricingStatus::Aggregate,
            is_llm_call: false,
            duplicate: false,
            provider: rec.provider.map(str::to_string),
            model: rec.model.map(str::to_string),
            entry: None,
            entry_effective_from: None,
            tier: None,
            cost: None,
            usage: None,
            convention: None,
            input_semantics: None,
            emitter: (rec.emitter != Emitter::Unknown).then_some(rec.emitter),
            write_lifetime_unknown: false,
            batch: rec.batch,
            reported_cost_usd: rec.reported_cost,
            duration_ns,
            time_to_first_token_ns: rec
                .time_to_first_token_ns
                .filter(|t| duration_ns.is_some_and(|d| *t <= d)),
        };
        o.status = match (rec.class, rec.usage) {
            (SpanClass::Aggregate | SpanClass::NotLlm, _) => PricingStatus::Aggregate,
            (SpanClass::Call, UsageRead::Invalid) => {
                o.is_llm_call = true;
                PricingStatus::InvalidUsage
            }
            // A span without usage is not a call: a streamed call's request span next to the
            // report that has the usage (Logfire), or a call whose emitter recorded no usage.
            (SpanClass::Call, UsageRead::Missing) => PricingStatus::NoUsage,
            (SpanClass::Call, UsageRead::Valid(n)) => {
                o.usage = Some(n.usage);
                o.convention = Some(n.convention);
                o.input_semantics = Some(n.input_semantics);
                o.write_lifetime_unknown = !n.write_split_known
                    && n.usage.cache_write() > 0
                    && rec.provider == Some("anthropic");
                let verdict = self.registry.check_in(&Sighting {
                    trace_id: span.trace_id(),
                    span_id: span.span_id(),
                    parent_span_id: span.parent_span_id(),
                    start_unix_nano: span.start_time_unix_nano(),
                    end_unix_nano: span.end_time_unix_nano(),
                    response_id: rec.response_id,
                    fingerprint: Fingerprint::new(n.usage, rec.model),
                });
                if verdict == Verdict::Duplicate || !claimed {
                    o.duplicate = true;
                    PricingStatus::Aggregate
                } else {
                    o.is_llm_call = true;
                    self.price(span, rec, &n.usage, table, &mut o)
                }
            }
        };
        if o.status == PricingStatus::Priced {
            metrics().priced_spans.inc();
        } else {
            metrics()
                .unpriced_spans
                .with_label_values(&[o.status.as_str()])
                .inc();
        }
        o
    }

    fn price<'a, S: SpanAttrs<'a>>(
        &self,
        span: &S,
        rec: &Recognised<'a>,
        usage: &Usage,
        table: &ValidatedTable,
        o: &mut LlmOutcome,
    ) -> PricingStatus {
        let Some(model) = rec.model else {
            return PricingStatus::UnknownModel;
        };
        let discount = if table.has_overrides() {
            table.override_discount(|key| {
                span.attribute(key)
                    .or_else(|| span.resource_attribute(key))
                    .and_then(|v| match v {
                        AttrValue::Str(s) => Some(s),
                        _ => None,
                    })
            })
        } else {
            None
        };
        let req = PriceRequest {
            model,
            usage,
            at_unix_nano: span.start_time_unix_nano(),
            batch: rec.batch,
            discount,
        };
        match table.price(&req) {
            Ok(q) => {
                if o.provider.is_none() {
                    o.provider = q.entry.provider.as_deref().map(str::to_string);
                }
                o.entry = Some(q.entry.name);
                o.entry_effective_from = q.entry.effective_from;
                o.tier = q.tier;
                o.cost = Some(q.cost);
                PricingStatus::Priced
            }
            Err(Unpriced::UnknownModel) => PricingStatus::UnknownModel,
            Err(Unpriced::IncompletePrice { entry, tier, .. }) => {
                o.entry = Some(entry.name);
                o.entry_effective_from = entry.effective_from;
                o.tier = tier;
                PricingStatus::IncompletePrice
            }
            Err(Unpriced::Overflow) => PricingStatus::InvalidUsage,
        }
    }
}

fn usd(nanos: i64) -> NewValue<'static> {
    NewValue::Double(crate::units::NanoUsd(nanos).as_usd_f64())
}

/// Appends the attributes for `o` (see the module docs of [`super`]).
fn write_attributes(
    out: &mut Vec<u8>,
    o: &LlmOutcome,
    table: &ValidatedTable,
    had_reported_cost: bool,
) {
    push_span_attribute(
        out,
        "tollgate.pricing.status",
        NewValue::Str(o.status.as_str()),
    );
    if o.status == PricingStatus::Aggregate {
        return;
    }
    if let Some(e) = &o.entry {
        push_span_attribute(out, "tollgate.pricing.entry", NewValue::Str(e));
    }
    if let Some(d) = &o.entry_effective_from {
        push_span_attribute(out, "tollgate.pricing.effective_from", NewValue::Str(d));
    }
    if let Some(t) = o.tier {
        push_span_attribute(
            out,
            "tollgate.pricing.tier",
            NewValue::Str(&format!("above_{t}")),
        );
    }
    if o.write_lifetime_unknown {
        push_span_attribute(
            out,
            "tollgate.pricing.cache_write_lifetime",
            NewValue::Str("unknown"),
        );
    }
    if let Some(ratio) = o.usage.and_then(|u| u.cache_hit_ratio()) {
        push_span_attribute(out, "llm.cache_hit_ratio", NewValue::Double(ratio));
    }
    let Some(c) = o.cost else { return };
    if o.batch {
        push_span_attribute(out, "tollgate.pricing.batch", NewValue::Bool(true));
    }
    if let Some(rep) = o.reported_cost_usd {
        push_span_attribute(out, "tollgate.cost.reported_usd", NewValue::Double(rep));
    }
    if had_reported_cost && !table.replace_reported_cost {
        push_span_attribute(out, "tollgate.cost.total_usd", usd(c.total()));
        return;
    }
    push_span_attribute(out, "llm.cost.total", usd(c.total()));
    push_span_attribute(out, "llm.cost.prompt", usd(c.prompt()));
    push_span_attribute(out, "llm.cost.completion", usd(c.output));
    push_span_attribute(out, "llm.cost.prompt_details.input", usd(c.input));
    push_span_attribute(out, "llm.cost.prompt_details.cache_read", usd(c.cache_read));
    push_span_attribute(
        out,
        "llm.cost.prompt_details.cache_write",
        usd(c.cache_write()),
    );
    push_span_attribute(out, "llm.cost.completion_details.output", usd(c.output));
    push_span_attribute(out, "gen_ai.usage.cost", usd(c.total()));
}

/// The Langfuse observation extras for an outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LangfuseDetails {
    /// `langfuse.observation.usage_details` (JSON object string).
    pub usage_details: String,
    /// `langfuse.observation.cost_details` (JSON object string, USD), when priced.
    pub cost_details: Option<String>,
}

/// `langfuse.observation.usage_details` / `cost_details` for a priced or usage-bearing call:
/// keys `input` (uncached), `input_cache_read`, `input_cache_creation_5m`,
/// `input_cache_creation_1h`, `output` and `total`. Aggregate spans get none, so Langfuse does
/// not count them.
pub fn langfuse_details(o: &LlmOutcome) -> Option<LangfuseDetails> {
    if !o.is_llm_call {
        return None;
    }
    let u = o.usage?;
    let usage = serde_json::json!({
        "input": u.input,
        "input_cache_read": u.cache_read,
        "input_cache_creation_5m": u.cache_write_5m,
        "input_cache_creation_1h": u.cache_write_1h,
        "output": u.output,
        "total": u.total(),
    });
    let cost = o.cost.map(|c| {
        let d = |n| crate::units::NanoUsd(n).as_usd_f64();
        serde_json::json!({
            "input": d(c.input),
            "input_cache_read": d(c.cache_read),
            "input_cache_creation_5m": d(c.cache_write_5m),
            "input_cache_creation_1h": d(c.cache_write_1h),
            "output": d(c.output),
            "total": d(c.total()),
        })
        .to_string()
    });
    Some(LangfuseDetails {
        usage_details: usage.to_string(),
        cost_details: cost,
    })
}

/// The longest LLM call duration taken as real: a span longer than this has a broken clock or
/// made-up timestamps (`start = 1`, `end = u64::MAX` would add 584 years to a histogram's sum).
pub const MAX_CALL_DURATION_NS: u64 = 24 * 3600 * 1_000_000_000;

/// A call's duration from its span's timestamps, or `None` (counted in
/// `tollgate_llm_invalid_timestamps_total{reason}`) when a timestamp is missing (0), the end is
/// before the start, or the call would have lasted more than a day. The span itself is still
/// priced and forwarded unchanged; only the duration (and TTFT) histograms leave it out.
pub fn call_duration_ns(start: u64, end: u64) -> Option<u64> {
    let reason = if start == 0 || end == 0 {
        "missing"
    } else if end < start {
        "end_before_start"
    } else if end - start > MAX_CALL_DURATION_NS {
        "implausible"
    } else {
        return Some(end - start);
    };
    super::metrics::metrics()
        .invalid_timestamps
        .with_label_values(&[reason])
        .inc();
    None
}
