//! Window rules fire while their condition holds and resolve when it stops; the clock is driven
//! by hand. Reloads keep window state for unchanged rules and keep old rules on error.

mod alert_support;

use std::sync::Arc;

use alert_support::{counter, decode_added, engine, TestSpan};
use tokio::sync::broadcast::Receiver;
use tollgate::alert::{Alert, AlertState, AlertsConfig};
use tollgate::task::{LlmUsage, Tokens};
use tollgate::wire::AttrValue;

const RULES: &str = r#"
[[rules]]
name = "cache_hit_ratio_low"
scope = "window"
window = "15m"
group_by = ["service.name", "deployment.environment"]
metric = "cache_hit_ratio"
op = "<"
threshold = 0.70
min_input_tokens = 10000
severity = "critical"
"#;

/// The tests in this file read process-wide gauges (`tollgate_alerts_firing{rule}`) and share rule
/// names, so they run one at a time to keep the before/after deltas exact.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn span_with_ratio(task: &str, n: u8, read: u64, uncached: u64) -> TestSpan {
    let mut s = TestSpan::llm(task, n, 1_000);
    s.llm = Some(LlmUsage {
        cost_nano_usd: 1_000,
        tokens: Tokens {
            input_uncached: uncached,
            cache_read: read,
            cache_write: 0,
            output: 10,
        },
        ..Default::default()
    });
    s
}

fn drain(rx: &mut Receiver<Arc<Alert>>) -> Vec<Arc<Alert>> {
    let mut out = Vec::new();
    while let Ok(a) = rx.try_recv() {
        out.push(a);
    }
    out
}

fn observe_prod(engine: &tollgate::alert::AlertEngine, s: &TestSpan) -> Vec<u8> {
    let attrs = [("deployment.environment", AttrValue::Str("prod"))];
    let mut input = s.input();
    input.attributes = &attrs;
    engine.observe(&input)
}

#[tokio::test]
async fn window_fires_on_low_ratio_and_resolves_when_the_ratio_recovers() {
    let _serial = SERIAL.lock().await;
    let (engine, clock) = engine(RULES);
    let mut rx = engine.subscribe();
    let firing_before = counter("tollgate_alerts_firing", &[("rule", "cache_hit_ratio_low")]);

    // Ratio 0.4 but below min_input_tokens: not judged yet.
    let out = observe_prod(&engine, &span_with_ratio("t1", 1, 2_000, 3_000));
    assert!(out.is_empty());
    assert!(drain(&mut rx).is_empty());
    clock.advance_ms(1_000);
    // The window now holds 10 000 input tokens at ratio 0.4: fires on this span.
    let out = observe_prod(&engine, &span_with_ratio("t1", 2, 2_000, 3_000));
    let ev = &decode_added(&out).events[0];
    assert_eq!(ev.name, "tollgate.alert");
    let fired = drain(&mut rx);
    assert_eq!(fired.len(), 1);
    let a = &fired[0];
    assert_eq!(a.state, AlertState::Firing);
    assert_eq!(a.labels["alertname"], "cache_hit_ratio_low");
    assert_eq!(a.labels["severity"], "critical");
    assert_eq!(a.labels["service"], "agent-svc");
    assert_eq!(a.labels["service_name"], "agent-svc");
    assert_eq!(a.labels["deployment_environment"], "prod");
    assert!(!a.labels.contains_key("task_id"));
    assert!((a.value - 0.4).abs() < 1e-9);
    assert_eq!(
        counter("tollgate_alerts_firing", &[("rule", "cache_hit_ratio_low")]) - firing_before,
        1.0
    );

    // Still low: no second alert.
    clock.advance_ms(60_000);
    observe_prod(&engine, &span_with_ratio("t2", 3, 4_000, 6_000));
    engine.tick();
    assert!(drain(&mut rx).is_empty());

    // A reload that keeps this rule unchanged (and adds one) keeps its state: no re-fire.
    let mut cfg: AlertsConfig = toml::from_str(RULES).unwrap();
    let extra: AlertsConfig = toml::from_str(
        "[[rules]]\nname='slow'\nscope='span'\nmetric='duration_ms'\nop='>'\nthreshold=1e9",
    )
    .unwrap();
    cfg.rules.extend(extra.rules);
    engine.reload(&cfg).unwrap();
    observe_prod(&engine, &span_with_ratio("t2", 4, 4_000, 6_000));
    assert!(drain(&mut rx).is_empty());

    // A broken reload is refused and changes nothing.
    let bad: AlertsConfig = toml::from_str(
        "[[rules]]\nname='broken'\nscope='window'\nwindow='1m'\nmetric='nope'\nop='>'\nthreshold=1",
    )
    .unwrap();
    let errs = engine.reload(&bad).unwrap_err();
    assert!(errs[0].to_string().contains("broken"));
    assert_eq!(engine.rules().names(), vec!["cache_hit_ratio_low", "slow"]);

    // Fifteen minutes of ratio 0.9 traffic: the 0.4 traffic leaves the window and it resolves.
    let mut resolved = Vec::new();
    for i in 0..16u8 {
        clock.advance_ms(60_000);
        observe_prod(&engine, &span_with_ratio("t3", 10 + i, 9_000, 1_000));
        engine.tick();
        resolved.extend(drain(&mut rx));
    }
    assert_eq!(resolved.len(), 1, "{resolved:#?}");
    assert_eq!(resolved[0].state, AlertState::Resolved);
    assert_eq!(resolved[0].labels, a.labels);
    assert_eq!(
        counter("tollgate_alerts_firing", &[("rule", "cache_hit_ratio_low")]) - firing_before,
        0.0
    );
}

#[tokio::test]
async fn window_resolves_when_traffic_stops_and_groups_are_separate() {
    let _serial = SERIAL.lock().await;
    let (engine, clock) = engine(RULES);
    let mut rx = engine.subscribe();
    observe_prod(&engine, &span_with_ratio("a", 1, 4_000, 6_000));
    let mut other = span_with_ratio("b", 2, 9_000, 1_000);
    other.service = "healthy-svc".into();
    observe_prod(&engine, &other);
    let fired = drain(&mut rx);
    assert_eq!(fired.len(), 1);
    assert_eq!(fired[0].labels["service"], "agent-svc");
    clock.advance_ms(16 * 60_000);
    engine.tick();
    let resolved = drain(&mut rx);
    assert_eq!(resolved.len(), 1);
    assert_eq!(resolved[0].state, AlertState::Resolved);
}

#[tokio::test]
async fn p95_duration_window_fires_on_slow_spans() {
    let _serial = SERIAL.lock().await;
    let (engine, clock) = engine(
        r#"
        [[rules]]
        name = "p95_slow"
        scope = "window"
        window = "1m"
        metric = "p95_duration_ms"
        op = ">"
        threshold = 5000
        "#,
    );
    let mut rx = engine.subscribe();
    for i in 0..20u8 {
        let mut s = TestSpan::llm("p", i, 1);
        s.end = s.start + 100_000_000; // 100 ms
        engine.observe(&s.input());
    }
    assert!(drain(&mut rx).is_empty());
    for i in 0..5u8 {
        let mut s = TestSpan::llm("p", 100 + i, 1);
        s.end = s.start + 20_000_000_000; // 20 s
        engine.observe(&s.input());
    }
    let fired = drain(&mut rx);
    assert_eq!(fired.len(), 1);
    assert!(fired[0].value > 5000.0);
    clock.advance_ms(61_000);
    engine.tick();
    assert_eq!(drain(&mut rx)[0].state, AlertState::Resolved);
}

#[tokio::test]
async fn span_rule_fires_per_matching_span_only() {
    let _serial = SERIAL.lock().await;
    let (engine, _clock) = engine(
        r#"
        [[rules]]
        name = "slow_llm_call"
        scope = "span"
        metric = "duration_ms"
        op = ">"
        threshold = 30000
        where = { "gen_ai.provider.name" = "anthropic" }
        "#,
    );
    let keys = engine.rules().referenced_keys();
    assert_eq!(keys, vec!["gen_ai.provider.name".to_string()]);
    let mut rx = engine.subscribe();
    let mut s = TestSpan::llm("s", 1, 1);
    s.end = s.start + 31_000_000_000;
    let anthropic = [("gen_ai.provider.name", AttrValue::Str("anthropic"))];
    let openai = [("gen_ai.provider.name", AttrValue::Str("openai"))];
    let mut input = s.input();
    input.attributes = &openai;
    assert!(engine.observe(&input).is_empty());
    input.attributes = &anthropic;
    let added = decode_added(&engine.observe(&input));
    assert_eq!(added.events.len(), 1);
    let fired = drain(&mut rx);
    assert_eq!(fired.len(), 1);
    assert_eq!(fired[0].labels["task_id"], "s");
}

#[tokio::test]
async fn for_delays_firing_until_the_condition_held_long_enough() {
    let _serial = SERIAL.lock().await;
    let (engine, clock) = engine(
        r#"
        [[rules]]
        name = "errors_for_2m"
        scope = "window"
        window = "10m"
        for = "2m"
        metric = "error_count"
        op = ">="
        threshold = 1
        "#,
    );
    let mut rx = engine.subscribe();
    let span = TestSpan::llm("f", 1, 1);
    let mut input = span.input();
    input.error = true;
    assert!(engine.observe(&input).is_empty());
    clock.advance_ms(60_000);
    engine.tick();
    assert!(drain(&mut rx).is_empty());
    clock.advance_ms(60_000);
    engine.tick();
    let fired = drain(&mut rx);
    assert_eq!(fired.len(), 1);
    assert_eq!(fired[0].state, AlertState::Firing);
}
