//! The LLM module's metrics.

use std::sync::LazyLock;

use prometheus::{IntCounter, IntCounterVec, Opts};

/// `tollgate_llm_unpriced_spans_total{reason}`: LLM spans given no cost, by status.
pub const UNPRICED_SPANS: &str = "tollgate_llm_unpriced_spans_total";
/// `tollgate_llm_priced_spans_total`: LLM-call spans priced.
pub const PRICED_SPANS: &str = "tollgate_llm_priced_spans_total";
/// `tollgate_llm_pricing_reloads_total{result}`: price-table reloads, `ok` or `error`.
pub const PRICING_RELOADS: &str = "tollgate_llm_pricing_reloads_total";

/// `tollgate_llm_invalid_timestamps_total{reason}`: LLM spans whose duration is not observed.
pub const INVALID_TIMESTAMPS: &str = "tollgate_llm_invalid_timestamps_total";

/// The LLM module's counters, registered once in [`crate::telemetry::registry`].
#[derive(Debug)]
pub struct LlmMetrics {
    /// LLM spans given no cost, by reason (the `tollgate.pricing.status` value).
    pub unpriced_spans: IntCounterVec,
    /// LLM-call spans priced.
    pub priced_spans: IntCounter,
    /// Price-table reloads by result.
    pub pricing_reloads: IntCounterVec,
    /// LLM spans whose timestamps give no usable duration (`missing`, `end_before_start`,
    /// `implausible`): still priced and forwarded, but kept out of the duration histograms.
    pub invalid_timestamps: IntCounterVec,
}

static METRICS: LazyLock<LlmMetrics> = LazyLock::new(|| {
    let m = LlmMetrics {
        unpriced_spans: IntCounterVec::new(
            Opts::new(UNPRICED_SPANS, "LLM spans given no cost, by reason."),
            &["reason"],
        )
        .expect("valid metric"),
        priced_spans: IntCounter::new(PRICED_SPANS, "LLM-call spans priced.")
            .expect("valid metric"),
        pricing_reloads: IntCounterVec::new(
            Opts::new(PRICING_RELOADS, "Price-table reloads by result."),
            &["result"],
        )
        .expect("valid metric"),
        invalid_timestamps: IntCounterVec::new(
            Opts::new(
                INVALID_TIMESTAMPS,
                "LLM spans whose timestamps give no usable duration (kept out of the duration histograms), by reason.",
            ),
            &["reason"],
        )
        .expect("valid metric"),
    };
    let r = crate::telemetry::registry();
    // Registration fails only if the name is taken, which would be a programming error; the
    // counters still count either way.
    for c in [
        Box::new(m.unpriced_spans.clone()) as Box<dyn prometheus::core::Collector>,
        Box::new(m.priced_spans.clone()),
        Box::new(m.pricing_reloads.clone()),
        Box::new(m.invalid_timestamps.clone()),
    ] {
        if let Err(error) = r.register(c) {
            tracing::warn!(%error, "Could not register an LLM metric.");
        }
    }
    m
});

/// The LLM module's metrics.
pub fn metrics() -> &'static LlmMetrics {
    &METRICS
}
