//! The pipeline's own metrics.

use std::sync::LazyLock;

use prometheus::core::Collector;
use prometheus::{IntCounterVec, IntGauge, Opts};
use serde::Serialize;

use crate::telemetry::registry;

/// Spans accepted, per receiver.
pub const ACCEPTED_SPANS: &str = "tollgate_receiver_accepted_spans_total";
/// Spans refused, per receiver and reason.
pub const REFUSED_SPANS: &str = "tollgate_receiver_refused_spans_total";
/// Bytes of span data held.
pub(crate) const MEMORY_BYTES: &str = "tollgate_pipeline_memory_bytes";
/// Traces remembered as containing an LLM span (for `spans = "llm_traces"`).
pub const LLM_TRACES: &str = "tollgate_pipeline_llm_traces";
/// Traces forgotten from that set, per reason (`capacity`, `expired`).
pub const LLM_TRACES_EVICTED: &str = "tollgate_pipeline_llm_traces_evicted_total";
/// The memory limit.
pub(crate) const MEMORY_LIMIT_BYTES: &str = "tollgate_pipeline_memory_limit_bytes";

/// Spans accepted and refused (all reasons) by one receiver since start: the typed snapshot the
/// read side shows (it never scrapes the registry by metric name).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReceiverSpans {
    /// `otlp_grpc` or `otlp_http`.
    pub receiver: String,
    /// Spans accepted.
    pub accepted_spans: u64,
    /// Spans refused (all reasons).
    pub refused_spans: u64,
}

/// Accepted and refused spans per receiver, sorted by receiver.
pub fn receiver_spans() -> Vec<ReceiverSpans> {
    by_receiver(&METRICS.accepted_spans, &METRICS.refused_spans)
}

fn by_receiver(accepted: &IntCounterVec, refused: &IntCounterVec) -> Vec<ReceiverSpans> {
    let mut rows: std::collections::BTreeMap<String, (u64, u64)> = Default::default();
    for (vec, is_refused) in [(accepted, false), (refused, true)] {
        for family in vec.collect() {
            for m in family.get_metric() {
                let receiver = m
                    .get_label()
                    .iter()
                    .find(|l| l.name() == "receiver")
                    .map(|l| l.value().to_string())
                    .unwrap_or_default();
                let value = m.get_counter().get_value().max(0.0) as u64;
                let row = rows.entry(receiver).or_default();
                if is_refused {
                    row.1 += value;
                } else {
                    row.0 += value;
                }
            }
        }
    }
    rows.into_iter()
        .map(
            |(receiver, (accepted_spans, refused_spans))| ReceiverSpans {
                receiver,
                accepted_spans,
                refused_spans,
            },
        )
        .collect()
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receiver_spans_sum_refusals_over_reasons() {
        let acc = IntCounterVec::new(Opts::new(ACCEPTED_SPANS, "a"), &["receiver"]).unwrap();
        let refused =
            IntCounterVec::new(Opts::new(REFUSED_SPANS, "r"), &["receiver", "reason"]).unwrap();
        acc.with_label_values(&["otlp_http"]).inc_by(7);
        refused
            .with_label_values(&["otlp_http", "invalid_id"])
            .inc_by(2);
        refused
            .with_label_values(&["otlp_http", "pipeline_full"])
            .inc_by(3);
        refused
            .with_label_values(&["otlp_grpc", "invalid_id"])
            .inc();
        assert_eq!(
            by_receiver(&acc, &refused),
            vec![
                ReceiverSpans {
                    receiver: "otlp_grpc".into(),
                    accepted_spans: 0,
                    refused_spans: 1
                },
                ReceiverSpans {
                    receiver: "otlp_http".into(),
                    accepted_spans: 7,
                    refused_spans: 5
                },
            ]
        );
    }
}
