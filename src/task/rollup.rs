//! The roll-up a task's root span carries downstream.

use crate::wire::attr::{push_span_attribute, NewValue};

use super::TaskTotals;

/// Total cost of the task in USD (double).
pub const COST_USD: &str = "tollgate.task.cost_usd";
/// LLM calls in the task, priced or not.
pub const LLM_CALLS: &str = "tollgate.task.llm_calls";
/// Of them, calls tollgate could not price (their cost is not in `cost_usd`); only when > 0.
pub const UNPRICED_CALLS: &str = "tollgate.task.unpriced_calls";
/// Input tokens in the task, cache reads and writes included.
pub const INPUT_TOKENS: &str = "tollgate.task.input_tokens";
/// Output tokens in the task.
pub const OUTPUT_TOKENS: &str = "tollgate.task.output_tokens";
/// Cache reads over all input tokens; absent when the task had no input.
pub const CACHE_HIT_RATIO: &str = "tollgate.task.cache_hit_ratio";

/// Appends the roll-up attributes (encoded `Span.attributes` fields) to `out`; nothing for a
/// task without LLM calls (a plain trace gets no `cost_usd = 0` noise).
pub fn encode(totals: &TaskTotals, out: &mut Vec<u8>) {
    if totals.llm_calls == 0 {
        return;
    }
    push_span_attribute(
        out,
        COST_USD,
        NewValue::Double(crate::units::NanoUsd(totals.cost_nano_usd).as_usd_f64()),
    );
    push_span_attribute(out, LLM_CALLS, NewValue::Int(totals.llm_calls as i64));
    let unpriced = totals.unpriced.total();
    if unpriced > 0 {
        push_span_attribute(out, UNPRICED_CALLS, NewValue::Int(unpriced as i64));
    }
    push_span_attribute(
        out,
        INPUT_TOKENS,
        NewValue::Int(totals.tokens.input() as i64),
    );
    push_span_attribute(
        out,
        OUTPUT_TOKENS,
        NewValue::Int(totals.tokens.output as i64),
    );
    if let Some(ratio) = totals.tokens.cache_hit_ratio() {
        push_span_attribute(out, CACHE_HIT_RATIO, NewValue::Double(ratio));
    }
}
