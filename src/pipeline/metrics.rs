//! The pipeline's own metrics.

use std::sync::LazyLock;

use prometheus::{IntCounterVec, IntGauge, Opts};

use crate::telemetry::registry;

/// Spans accepted, per receiver.
pub const ACCEPTED_SPANS: &str = "tollgate_receiver_accepted_spans_total";
/// Spans refused, per receiver and reason.
pub const REFUSED_SPANS: &str = "tollgate_receiver_refused_spans_total";
/// Bytes of span data held.
pub const MEMORY_BYTES: &str = "tollgate_pipeline_memory_bytes";
/// Traces remembered as containing an LLM span (for `spans = "llm_traces"`).
pub const LLM_TRACES: &str = "tollgate_pipeline_llm_traces";
/// Traces forgotten from that set, per reason (`capacity`, `expired`).
pub const LLM_TRACES_EVICTED: &str = "tollgate_pipeline_llm_traces_evicted_total";
/// The memory limit.
pub const MEMORY_LIMIT_BYTES: &str = "tollgate_pipeline_memory_limit_bytes";

pub(crate) struct PipelineMetrics {
    pub accepted_spans: IntCounterVec,
    pub refused_spans: IntCounterVec,
    pub memory_bytes: IntGauge,
    pub memory_limit_bytes: IntGauge,
    pub llm_traces: IntGauge,
    pub llm_traces_evicted: IntCounterVec,
}

pub(crate) static METRICS: LazyLock<PipelineMetrics> = LazyLock::new(|| {
    let m = PipelineMetrics {
        accepted_spans: IntCounterVec::new(
            Opts::new(ACCEPTED_SPANS, "Spans accepted into the pipeline, per receiver."),
            &["receiver"],
        )
        .expect("valid metric"),
        refused_spans: IntCounterVec::new(
            Opts::new(
                REFUSED_SPANS,
                "Spans refused at ingest, per receiver and reason (invalid_id, pipeline_full, shutting_down).",
            ),
            &["receiver", "reason"],
        )
        .expect("valid metric"),
        memory_bytes: IntGauge::new(MEMORY_BYTES, "Bytes of span data held in the pipeline.")
            .expect("valid metric"),
        memory_limit_bytes: IntGauge::new(
            MEMORY_LIMIT_BYTES,
            "The pipeline's memory limit; receivers refuse above it.",
        )
        .expect("valid metric"),
        llm_traces: IntGauge::new(
            LLM_TRACES,
            "Traces remembered as containing an LLM span (spans = \"llm_traces\" exporters).",
        )
        .expect("valid metric"),
        llm_traces_evicted: IntCounterVec::new(
            Opts::new(
                LLM_TRACES_EVICTED,
                "Traces forgotten from the LLM-trace set, per reason (capacity, expired).",
            ),
            &["reason"],
        )
        .expect("valid metric"),
    };
    let r = registry();
    r.register(Box::new(m.accepted_spans.clone()))
        .expect("register once");
    r.register(Box::new(m.refused_spans.clone()))
        .expect("register once");
    r.register(Box::new(m.memory_bytes.clone()))
        .expect("register once");
    r.register(Box::new(m.memory_limit_bytes.clone()))
        .expect("register once");
    r.register(Box::new(m.llm_traces.clone()))
        .expect("register once");
    r.register(Box::new(m.llm_traces_evicted.clone()))
        .expect("register once");
    m
});
