use std::collections::HashMap;
use std::time::Duration;

use prometheus::proto::MetricFamily;
use prometheus::{Encoder, Registry, TextEncoder};

use super::*;

fn user_config(max_values: usize, max_series: usize) -> MetricsConfig {
    MetricsConfig {
        extra_labels: vec![AttributeLabel {
            name: "user".into(),
            attribute: "user.id".into(),
            max_values,
        }],
        max_series,
        ..MetricsConfig::default()
    }
}

fn call<'a>(model: &'a str, extra: &'a [Option<&'a str>]) -> CallObservation<'a> {
    CallObservation {
        provider: "anthropic",
        model,
        service: "agent",
        task_type: "triage",
        extra,
        cost_nano_usd: Some(1_500_000_000),
        tokens: Tokens {
            input_uncached: 1200,
            cache_read: 800,
            cache_write: 100,
            output: 340,
        },
        duration: Some(Duration::from_secs(4)),
        time_to_first_token: None,
    }
}

fn family<'r>(families: &'r [MetricFamily], name: &str) -> Option<&'r MetricFamily> {
    families.iter().find(|f| f.name() == name)
}

fn labels(m: &prometheus::proto::Metric) -> HashMap<String, String> {
    m.get_label()
        .iter()
        .map(|l| (l.name().to_string(), l.value().to_string()))
        .collect()
}

fn counter_sum(families: &[MetricFamily], name: &str, filter: &[(&str, &str)]) -> f64 {
    let Some(f) = family(families, name) else {
        return 0.0;
    };
    f.get_metric()
        .iter()
        .filter(|m| {
            let l = labels(m);
            filter
                .iter()
                .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|m| m.get_counter().get_value())
        .sum()
}

fn text(registry: &Registry) -> String {
    let mut buf = Vec::new();
    TextEncoder::new()
        .encode(&registry.gather(), &mut buf)
        .unwrap();
    String::from_utf8(buf).unwrap()
}

#[test]
fn records_cost_tokens_calls_and_duration() {
    let registry = Registry::new();
    let m = LlmMetrics::with_registry(&MetricsConfig::default(), &registry).unwrap();
    m.observe_call(&call("claude-sonnet-4-6", &[]));
    m.observe_call(&call("claude-sonnet-4-6", &[]));
    let f = registry.gather();
    let sel = [("model", "claude-sonnet-4-6"), ("service", "agent")];
    assert_eq!(counter_sum(&f, COST, &sel), 3.0);
    assert_eq!(counter_sum(&f, CALLS, &sel), 2.0);
    assert_eq!(
        counter_sum(&f, TOKENS, &[("kind", "input_uncached")]),
        2400.0
    );
    assert_eq!(counter_sum(&f, TOKENS, &[("kind", "cache_read")]), 1600.0);
    assert_eq!(counter_sum(&f, TOKENS, &[("kind", "cache_write")]), 200.0);
    assert_eq!(counter_sum(&f, TOKENS, &[("kind", "output")]), 680.0);
    let hist = family(&f, CALL_DURATION).unwrap().get_metric()[0].get_histogram();
    assert_eq!(hist.get_sample_count(), 2);
    assert_eq!(hist.get_sample_sum(), 8.0);
    let l = labels(&family(&f, CALLS).unwrap().get_metric()[0]);
    assert_eq!(l.len(), 4);
    assert_eq!(l["provider"], "anthropic");
    assert_eq!(l["task_type"], "triage");
}

#[test]
fn cost_counter_sums_exactly_without_float_drift() {
    // A float counter adding $0.10 ten times shows 0.9999999999999999, and a million calls of
    // $0.000123457 drift further; the counter keeps nano-USD and divides once per scrape.
    let registry = Registry::new();
    let m = LlmMetrics::with_registry(&MetricsConfig::default(), &registry).unwrap();
    let mut obs = call("claude-sonnet-4-6", &[]);
    obs.cost_nano_usd = Some(100_000_000);
    for _ in 0..10 {
        m.observe_call(&obs);
    }
    assert_eq!(counter_sum(&registry.gather(), COST, &[]), 1.0);
    let mut float = 0.0f64;
    for _ in 0..10 {
        float += 0.1;
    }
    assert_ne!(float, 1.0, "the float sum this test guards against");

    let registry = Registry::new();
    let m = LlmMetrics::with_registry(&MetricsConfig::default(), &registry).unwrap();
    obs.cost_nano_usd = Some(123_457);
    for _ in 0..1_000_000 {
        m.observe_call(&obs);
    }
    // 1 000 000 × 123 457 nano-USD = $123.457 exactly.
    assert_eq!(counter_sum(&registry.gather(), COST, &[]), 123.457);
    assert!(text(&registry).contains("} 123.457\n"));
}

#[test]
fn unpriced_calls_count_but_add_no_cost_and_empty_values_are_unknown() {
    let registry = Registry::new();
    let m = LlmMetrics::with_registry(&MetricsConfig::default(), &registry).unwrap();
    let mut obs = call("", &[]);
    obs.cost_nano_usd = None;
    m.observe_call(&obs);
    let f = registry.gather();
    assert_eq!(counter_sum(&f, CALLS, &[("model", "unknown")]), 1.0);
    assert_eq!(counter_sum(&f, COST, &[]), 0.0);
}

#[test]
fn ttft_and_output_rate_only_when_the_span_carries_ttft() {
    let registry = Registry::new();
    let m = LlmMetrics::with_registry(&MetricsConfig::default(), &registry).unwrap();
    m.observe_call(&call("a", &[]));
    let f = registry.gather();
    assert!(family(&f, TTFT).is_none(), "no TTFT series without TTFT");
    assert!(family(&f, OUTPUT_TPS).is_none());

    let mut obs = call("a", &[]);
    obs.time_to_first_token = Some(Duration::from_millis(600));
    obs.duration = Some(Duration::from_millis(4_000)); // 340 tokens over 3.4 s = 100/s
    m.observe_call(&obs);
    let f = registry.gather();
    let ttft = family(&f, TTFT).unwrap().get_metric()[0].get_histogram();
    assert_eq!(ttft.get_sample_count(), 1);
    assert!((ttft.get_sample_sum() - 0.6).abs() < 1e-9);
    let tps = family(&f, OUTPUT_TPS).unwrap().get_metric()[0].get_histogram();
    assert!((tps.get_sample_sum() - 100.0).abs() < 1e-6);
}

#[test]
fn hundred_thousand_user_ids_stay_within_the_series_cap() {
    let registry = Registry::new();
    let max_series = 50;
    let m = LlmMetrics::with_registry(&user_config(100, max_series), &registry).unwrap();
    for i in 0..100_000 {
        let user = format!("user-{i}");
        let extra = [Some(user.as_str())];
        m.observe_call(&call("claude-sonnet-4-6", &extra));
        m.observe_task(&TaskObservation {
            service: "agent",
            task_type: "triage",
            extra: &extra,
            cost_nano_usd: 10_000_000,
            llm_calls: 3,
        });
    }
    let f = registry.gather();
    for name in [COST, CALLS, CALL_DURATION, TASK_COST, TASK_CALLS] {
        let series = family(&f, name).unwrap().get_metric().len();
        assert!(series <= max_series, "{name} has {series} series");
        assert_eq!(series, max_series, "{name} fills the cap then folds");
    }
    assert!(family(&f, TOKENS).unwrap().get_metric().len() <= max_series * TOKEN_KINDS.len());
    // Nothing is lost: every call is counted, folded ones under __other__.
    assert_eq!(counter_sum(&f, CALLS, &[]), 100_000.0);
    assert!(counter_sum(&f, CALLS, &[("user", OTHER)]) > 99_000.0);
    // The per-label cap (100 users) folded values, the series cap (50) folded label sets.
    assert_eq!(
        counter_sum(&f, LABEL_OVERFLOW, &[("label", "user")]),
        2.0 * 99_900.0
    );
    assert!(counter_sum(&f, SERIES_OVERFLOW, &[("group", "llm_call")]) > 0.0);
    assert!(counter_sum(&f, SERIES_OVERFLOW, &[("group", "task")]) > 0.0);
}

#[test]
fn per_label_cap_folds_values_into_other() {
    let registry = Registry::new();
    let m = LlmMetrics::with_registry(&user_config(3, 1000), &registry).unwrap();
    for i in 0..10 {
        let user = format!("u{i}");
        m.observe_call(&call("m", &[Some(user.as_str())]));
    }
    m.observe_call(&call("m", &[None]));
    let f = registry.gather();
    let users: Vec<String> = family(&f, CALLS)
        .unwrap()
        .get_metric()
        .iter()
        .map(|m| labels(m)["user"].clone())
        .collect();
    assert_eq!(users.len(), 5, "{users:?}"); // u0, u1, u2, __other__, unknown
    assert_eq!(counter_sum(&f, CALLS, &[("user", OTHER)]), 7.0);
    assert_eq!(counter_sum(&f, CALLS, &[("user", "unknown")]), 1.0);
    assert_eq!(counter_sum(&f, LABEL_OVERFLOW, &[("label", "user")]), 7.0);
}

#[test]
fn task_metrics_drop_provider_and_model() {
    let registry = Registry::new();
    let m = LlmMetrics::with_registry(&MetricsConfig::default(), &registry).unwrap();
    m.observe_task(&TaskObservation {
        service: "agent",
        task_type: "triage",
        extra: &[],
        cost_nano_usd: 250_000_000,
        llm_calls: 7,
    });
    let f = registry.gather();
    let metric = &family(&f, TASK_COST).unwrap().get_metric()[0];
    let l = labels(metric);
    assert_eq!(l.keys().count(), 2);
    assert_eq!(l["service"], "agent");
    assert_eq!(metric.get_histogram().get_sample_sum(), 0.25);
    let calls = &family(&f, TASK_CALLS).unwrap().get_metric()[0];
    assert_eq!(calls.get_histogram().get_sample_sum(), 7.0);
}

#[test]
fn exposition_parses_and_exports_no_cache_hit_gauge() {
    let registry = Registry::new();
    let m = LlmMetrics::with_registry(&user_config(10, 100), &registry).unwrap();
    let mut obs = call("claude-haiku-4-5", &[Some("alice \"quoted\"\nnewline")]);
    obs.time_to_first_token = Some(Duration::from_millis(300));
    m.observe_call(&obs);
    m.observe_task(&TaskObservation::default());
    let body = text(&registry);
    let lines = body.lines().map(|l| Ok(l.to_string()));
    let scrape = prometheus_parse::Scrape::parse(lines).expect("exposition parses");
    let names: std::collections::HashSet<&str> =
        scrape.samples.iter().map(|s| s.metric.as_str()).collect();
    for expected in [COST, TOKENS, CALLS, CALL_DURATION, TTFT, TASK_COST] {
        assert!(
            names.contains(expected),
            "{expected} missing from {names:?}"
        );
    }
    let duration = scrape
        .samples
        .iter()
        .find(|s| s.metric == CALL_DURATION)
        .unwrap();
    assert!(
        matches!(&duration.value, prometheus_parse::Value::Histogram(b) if b.len() == DURATION_BUCKETS.len() + 1)
    );
    let cost = scrape.samples.iter().find(|s| s.metric == COST).unwrap();
    assert!(matches!(cost.value, prometheus_parse::Value::Counter(v) if v == 1.5));
    // The encoder escaped the quote and newline (the parser keeps escapes as written).
    assert_eq!(
        cost.labels.get("user"),
        Some(r#"alice \"quoted\"\nnewline"#)
    );
    // The cache-hit ratio is computed in PromQL from the token counters, never exported.
    for f in registry.gather() {
        assert!(
            !f.name().contains("cache_hit") && !f.name().ends_with("_ratio"),
            "{}",
            f.name()
        );
        assert_ne!(
            f.get_field_type(),
            prometheus::proto::MetricType::GAUGE,
            "{}",
            f.name()
        );
    }
}

#[test]
fn concurrent_observations_are_all_counted() {
    let registry = Registry::new();
    let m = LlmMetrics::with_registry(&user_config(1000, 5000), &registry).unwrap();
    std::thread::scope(|scope| {
        for t in 0..4 {
            let m = m.clone();
            scope.spawn(move || {
                for i in 0..2_000 {
                    let user = format!("u{}", (i * 7 + t) % 300);
                    m.observe_call(&call("m", &[Some(user.as_str())]));
                }
            });
        }
    });
    let f = registry.gather();
    assert_eq!(counter_sum(&f, CALLS, &[]), 8_000.0);
    assert_eq!(
        counter_sum(&f, TOKENS, &[("kind", "output")]),
        8_000.0 * 340.0
    );
    assert_eq!(family(&f, CALLS).unwrap().get_metric().len(), 300);
}

#[test]
fn global_registration_is_reload_safe() {
    let a = LlmMetrics::new(&MetricsConfig::default()).unwrap();
    // A reload with the same or a changed config returns the same metrics instead of failing
    // with a duplicate registration.
    let b = LlmMetrics::new(&MetricsConfig::default()).unwrap();
    let c = LlmMetrics::new(&user_config(5, 10)).unwrap();
    assert!(Arc::ptr_eq(&a.inner, &b.inner));
    assert!(Arc::ptr_eq(&a.inner, &c.inner));
    let names: Vec<String> = crate::telemetry::registry()
        .gather()
        .iter()
        .map(|f| f.name().to_string())
        .collect();
    // Families without samples are not gathered; the overflow counters always have children.
    assert!(names.iter().any(|n| n == LABEL_OVERFLOW), "{names:?}");
}

#[test]
fn config_parses_and_validates() {
    let cfg: MetricsConfig = toml::from_str(
        r#"
        labels = ["model", "service"]
        max_series = 500
        extra_labels = [{ name = "user", attribute = "user.id", max_values = 100 }]
        "#,
    )
    .unwrap();
    assert_eq!(cfg.labels, vec![BuiltinLabel::Model, BuiltinLabel::Service]);
    assert_eq!(cfg.extra_labels[0].attribute, "user.id");
    cfg.validate().unwrap();

    let no_cap = toml::from_str::<MetricsConfig>(
        r#"extra_labels = [{ name = "user", attribute = "user.id" }]"#,
    );
    assert!(
        no_cap.is_err(),
        "an attribute label without max_values is refused"
    );
    assert!(toml::from_str::<MetricsConfig>("bogus = 1").is_err());
    assert!(toml::from_str::<MetricsConfig>(r#"labels = ["user"]"#).is_err());

    let bad = |f: fn(&mut MetricsConfig)| {
        let mut c = user_config(10, 100);
        f(&mut c);
        c.validate().unwrap_err()
    };
    assert!(matches!(
        bad(|c| c.extra_labels[0].name = "kind".into()),
        MetricsError::InvalidLabelName(_)
    ));
    assert!(matches!(
        bad(|c| c.extra_labels[0].name = "__x".into()),
        MetricsError::InvalidLabelName(_)
    ));
    assert!(matches!(
        bad(|c| c.extra_labels[0].name = "a-b".into()),
        MetricsError::InvalidLabelName(_)
    ));
    assert!(matches!(
        bad(|c| c.extra_labels[0].name = "model".into()),
        MetricsError::DuplicateLabel(_)
    ));
    assert!(matches!(
        bad(|c| c.extra_labels[0].max_values = 0),
        MetricsError::OutOfRange { .. }
    ));
    assert!(matches!(
        bad(|c| c.max_series = 1),
        MetricsError::OutOfRange { .. }
    ));
    assert!(matches!(
        bad(|c| c.max_values_per_label = 0),
        MetricsError::OutOfRange { .. }
    ));
}
