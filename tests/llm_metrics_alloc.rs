//! The per-call metrics path does not allocate once a label set has been seen.
//! (This test binary alone links `allocation-counter`, which replaces the global allocator with
//! a counting one; counts are per thread, so other tests don't interfere.)

use std::time::Duration;

use prometheus::Registry;
use tollgate::telemetry::llm_metrics::{
    AttributeLabel, CallObservation, LlmMetrics, MetricsConfig, TaskObservation,
};
use tollgate::units::Tokens;

#[test]
fn observing_a_known_label_set_does_not_allocate() {
    let config = MetricsConfig {
        extra_labels: vec![AttributeLabel {
            name: "user".into(),
            attribute: "user.id".into(),
            max_values: 2,
        }],
        ..MetricsConfig::default()
    };
    let metrics = LlmMetrics::with_registry(&config, &Registry::new()).unwrap();
    let extra = [Some("alice")];
    let call = CallObservation {
        provider: "anthropic",
        model: "claude-sonnet-4-6",
        service: "agent",
        task_type: "triage",
        extra: &extra,
        cost_nano_usd: Some(3_000_000),
        tokens: Tokens {
            input_uncached: 10,
            cache_read: 20,
            cache_write: 30,
            output: 40,
        },
        duration: Some(Duration::from_secs(3)),
        time_to_first_token: Some(Duration::from_millis(500)),
    };
    let task = TaskObservation {
        service: "agent",
        task_type: "triage",
        extra: &extra,
        cost_nano_usd: 9_000_000,
        llm_calls: 3,
    };
    let folded = [Some("bob"), Some("carol"), Some("dave")];
    let over_cap = |i: usize| CallObservation {
        extra: &folded[i..i + 1],
        ..call
    };

    // The first observation of a label set creates its series (allocates).
    let first = allocation_counter::measure(|| {
        metrics.observe_call(&call);
        metrics.observe_task(&task);
        metrics.observe_call(&over_cap(0));
        metrics.observe_call(&over_cap(1)); // past the user cap: the __other__ series
    });
    assert!(first.count_total > 0);

    // Later observations, including values folded into __other__, do not.
    let steady = allocation_counter::measure(|| {
        for _ in 0..1000 {
            metrics.observe_call(&call);
            metrics.observe_task(&task);
            metrics.observe_call(&over_cap(2));
        }
    });
    assert_eq!(steady.count_total, 0, "{steady:?}");
}
