//! The ledger row of an LLM call: what the llm stage concluded about it (its outcome), the
//! span's ids and times, its task, and the key attributes the ledger exporters store. Nothing is
//! priced again here.

use crate::ledger::{LedgerRow, RowAttribute, RowCost};
use crate::llm::{LlmOutcome, PricingStatus};
use crate::wire::{AttrValue, SpanAttrs, SpanRef};

/// Where the call belongs.
pub(crate) struct RowContext<'a> {
    pub(crate) task_id: &'a str,
    pub(crate) service: &'a str,
    pub(crate) task_type: &'a str,
}

/// The row of a counted call (`is_llm_call`): priced, or unpriced with its reason. `None` for
/// spans that are not a call of their own (aggregates, later reports of a call, no usage).
pub(crate) fn row(
    span: &SpanRef<'_>,
    o: &LlmOutcome,
    ctx: &RowContext<'_>,
    keys: &[String],
) -> Option<LedgerRow> {
    if !o.is_llm_call || matches!(o.status, PricingStatus::NoUsage | PricingStatus::Aggregate) {
        return None;
    }
    let usage = o.usage;
    let u = usage.unwrap_or_default();
    let attributes = keys
        .iter()
        .filter_map(|k| {
            let v = span.attribute(k).or_else(|| span.resource_attribute(k))?;
            text(&v).map(|value| RowAttribute {
                key: k.clone(),
                value,
            })
        })
        .collect();
    Some(LedgerRow {
        trace_id: span.trace_id().to_vec(),
        span_id: span.span_id().to_vec(),
        start_unix_nano: span.start_time_unix_nano(),
        end_unix_nano: span.end_time_unix_nano(),
        task_id: ctx.task_id.to_owned(),
        service: ctx.service.to_owned(),
        task_type: ctx.task_type.to_owned(),
        attributes,
        provider: o.provider.clone(),
        model: o.model.clone(),
        price_entry: o.entry.as_deref().map(str::to_owned),
        price_effective_from: o.entry_effective_from.as_deref().map(str::to_owned),
        tier: o.tier,
        batch: o.batch,
        status: o.status.as_str().to_owned(),
        has_usage: usage.is_some(),
        input_uncached_tokens: u.input,
        cache_read_tokens: u.cache_read,
        cache_write_5m_tokens: u.cache_write_5m,
        cache_write_1h_tokens: u.cache_write_1h,
        output_tokens: u.output,
        reasoning_tokens: u.reasoning,
        cost: o
            .cost
            .filter(|_| o.status == PricingStatus::Priced)
            .map(|c| RowCost {
                input: c.input,
                cache_read: c.cache_read,
                cache_write_5m: c.cache_write_5m,
                cache_write_1h: c.cache_write_1h,
                output: c.output,
            }),
        cache_write_lifetime_unknown: o.write_lifetime_unknown,
    })
}

/// A key attribute's value as text; `None` for empty strings, bytes, arrays and maps.
fn text(v: &AttrValue<'_>) -> Option<String> {
    match v {
        AttrValue::Str(s) if !s.is_empty() => Some((*s).to_owned()),
        AttrValue::Int(i) => Some(i.to_string()),
        AttrValue::Bool(b) => Some(b.to_string()),
        AttrValue::Double(d) if d.is_finite() => Some(d.to_string()),
        _ => None,
    }
}
