use super::*;
use crate::alert::AlertsConfig;
use crate::export::ExporterConfig;
use crate::task::{LlmUsage, ManualClock, SpanInput, TasksConfig, Tokens};

const NOW_MS: u64 = 1_764_000_000_000;

fn llm(cost: i64) -> LlmUsage {
    LlmUsage {
        cost_nano_usd: cost,
        tokens: Tokens {
            input_uncached: 100,
            cache_read: 0,
            cache_write: 0,
            output: 10,
        },
        ..LlmUsage::default()
    }
}

async fn page_with_data(trace_url: Option<&str>) -> (Arc<StatusPage>, Arc<AlertEngine>) {
    let clock = Arc::new(ManualClock::new(NOW_MS));
    let tracker = Arc::new(TaskTracker::new(&TasksConfig::default(), clock));
    let mut alerts: AlertsConfig = toml::from_str(
        r#"
        [[rules]]
        name = "task_over_budget"
        scope = "task"
        metric = "cost_usd"
        op = ">"
        threshold = 0.5
        severity = "critical"
        "#,
    )
    .unwrap();
    alerts.trace_url = trace_url.map(str::to_string);
    let engine = Arc::new(AlertEngine::new(&alerts, tracker.clone()).unwrap());
    let console: ExporterConfig =
        toml::from_str("name = \"console-<1>\"\nkind = \"console\"").unwrap();
    let exporters = Arc::new(Exporters::from_configs(&[console]).unwrap());
    let recent = Arc::new(RecentSpend::default());
    let page = Arc::new(StatusPage::new(
        recent.clone(),
        tracker,
        engine.clone(),
        exporters,
    ));

    // The last hour: two models, two services; $0.333333333 + $0.333333334 + $0.000000001.
    let u = |cost: i64, read: u64, input: u64| Usage {
        cost_nano_usd: cost,
        calls: 1,
        tokens: Tokens {
            input_uncached: input - read,
            cache_read: read,
            ..Tokens::default()
        },
        ..Usage::default()
    };
    recent.record(
        NOW_MS - 120_000,
        "claude-x",
        "planner",
        &u(333_333_333, 800, 2_100),
    );
    recent.record(NOW_MS, "claude-x", "planner", &u(333_333_334, 0, 900));
    recent.record(NOW_MS, "gpt-<y>", "writer & co", &u(1, 200, 1_000));

    // Two tasks; the costly one fires the task rule.
    let mut rx = engine.subscribe();
    for (task, trace, cost) in [
        ("task-big", 0xab_u8, 700_000_000_i64),
        ("task-small", 0xcd, 1),
    ] {
        engine.observe(&SpanInput {
            task_key: task,
            trace_id: &[trace; 16],
            span_id: &[1; 8],
            service: "planner",
            task_type: "research",
            start_unix_nano: NOW_MS * 1_000_000,
            end_unix_nano: NOW_MS * 1_000_000 + 1,
            llm: Some(llm(cost)),
            ..SpanInput::default()
        });
    }
    let alert = rx.try_recv().expect("the task rule fired");
    page.note_alert(alert);
    (page, engine)
}

#[tokio::test]
async fn collects_and_renders_the_exact_numbers() {
    let (page, _engine) =
        page_with_data(Some("http://tempo.local/trace/{trace_id}?t={task_id}")).await;
    let d = page.collect();
    assert_eq!(d.spend_last_hour_usd, "0.666666668");
    assert_eq!(d.spend_last_hour_nano_usd, 666_666_668);
    assert_eq!(d.llm_calls_last_hour, 3);
    assert_eq!(d.cache_read_tokens_last_hour, 1_000);
    assert_eq!(d.input_tokens_last_hour, 4_000);
    assert_eq!(d.cache_hit_ratio_last_hour, Some(0.25));
    assert_eq!(d.by_model[0].name, "claude-x");
    assert_eq!(d.by_model[0].cost_usd, "0.666666667");
    assert_eq!(d.by_model[1].name, "gpt-<y>");
    assert_eq!(d.by_service[1].name, "writer & co");
    assert_eq!(d.per_minute.len(), 60);
    assert_eq!(d.per_minute[57].cost_nano_usd, 333_333_333);
    assert_eq!(d.per_minute[59].cost_nano_usd, 333_333_335);
    assert_eq!(d.top_tasks[0].task_id, "task-big");
    assert_eq!(d.top_tasks[0].cost_usd, "0.7");
    let trace = "ab".repeat(16);
    assert_eq!(
        d.top_tasks[0].trace_url.as_deref(),
        Some(format!("http://tempo.local/trace/{trace}?t=task-big").as_str())
    );
    // A task rule fires once: recent, not firing.
    assert!(d.firing_alerts.is_empty());
    assert_eq!(d.recent_alerts.len(), 1);
    assert_eq!(d.recent_alerts[0].rule, "task_over_budget");
    assert_eq!(d.exporters[0].name, "console-<1>");
    assert_eq!(d.exporters[0].fill_percent, 0.0);

    let html = render(&d);
    assert!(html.contains(r#"<meta http-equiv="refresh" content="10">"#));
    assert!(html.contains(r#"<b id="spend-total">$0.666666668</b>"#));
    assert!(html.contains(r#"<b id="cache-hit">25.0%</b>"#));
    assert!(html.contains(r#"<b id="calls-total">3</b>"#));
    assert!(html.contains("<td>claude-x</td>"));
    assert!(html.contains("$0.666666667"));
    assert!(html.contains(&format!(
        r#"<a href="http://tempo.local/trace/{trace}?t=task-big">{trace}</a>"#
    )));
    assert!(html.contains(r#"<td class="bad">task_over_budget</td>"#));
    assert!(html.contains(r#"<b id="alerts-count" class="ok">0</b>"#));
    assert!(html.contains(r#"<b id="recent-alerts-count">1</b>"#));
    assert!(html.contains("<svg"));
    // Escaped output, no external assets.
    assert!(html.contains("gpt-&lt;y&gt;"));
    assert!(html.contains("writer &amp; co"));
    assert!(html.contains("console-&lt;1&gt;"));
    assert!(!html.contains("gpt-<y>"));
    assert!(!html.contains("src=\"http") && !html.contains("<link") && !html.contains("<script"));
}

#[tokio::test]
async fn without_a_template_the_trace_id_is_shown_and_json_matches() {
    let (page, _engine) = page_with_data(None).await;
    let d = page.collect();
    let trace = "cd".repeat(16);
    assert_eq!(d.top_tasks[1].trace_url, None);
    let html = render(&d);
    assert!(html.contains(&format!("<code>{trace}</code>")));
    let json = serde_json::to_value(&d).unwrap();
    assert_eq!(json["spend_last_hour_usd"], "0.666666668");
    assert_eq!(json["cache_hit_ratio_last_hour"], 0.25);
}

#[tokio::test]
async fn resolved_window_alerts_leave_the_page() {
    let (page, _engine) = page_with_data(None).await;
    let mut a = Alert {
        rule: "cache_low".into(),
        state: AlertState::Firing,
        scope: Scope::Window,
        metric: crate::alert::Metric::parse("cache_hit_ratio").unwrap(),
        op: crate::alert::Op::parse("<").unwrap(),
        severity: "warning".into(),
        value: 0.1,
        value_text: "0.1".into(),
        threshold: 0.7,
        labels: [("alertname".to_string(), "cache_low".to_string())].into(),
        annotations: Default::default(),
        task_id: None,
        trace_id: None,
        span_id: None,
        starts_at_unix_ms: NOW_MS,
        at_unix_ms: NOW_MS,
        generator_url: None,
    };
    page.note_alert(Arc::new(a.clone()));
    page.note_alert(Arc::new(a.clone())); // re-sent: still one
    let rules = |d: &StatusData| -> (Vec<String>, Vec<String>) {
        let names = |v: &[AlertRow]| v.iter().map(|a| a.rule.clone()).collect();
        (names(&d.firing_alerts), names(&d.recent_alerts))
    };
    assert_eq!(
        rules(&page.collect()),
        (vec!["cache_low".into()], vec!["task_over_budget".into()])
    );
    a.state = AlertState::Resolved;
    page.note_alert(Arc::new(a));
    assert_eq!(
        rules(&page.collect()),
        (vec![], vec!["task_over_budget".into()])
    );
}

/// Issue 18 point 2: an unknown model's calls are shown as unpriced with reason and count, never
/// as `$0`, and left out of the spend with a note saying so.
#[tokio::test]
async fn unpriced_calls_are_shown_as_unpriced() {
    let (page, _engine) = page_with_data(None).await;
    let unknown = Usage {
        calls: 1,
        unpriced: crate::units::Unpriced::one("unknown_model").unwrap(),
        ..Usage::default()
    };
    for _ in 0..4 {
        page.recent
            .record(NOW_MS, "mystery-9000", "planner", &unknown);
    }
    let d = page.collect();
    assert_eq!(d.unpriced_calls_last_hour, 4);
    assert_eq!(d.unpriced_last_hour.unknown_model, 4);
    assert_eq!(d.spend_last_hour_usd, "0.666666668");
    let row = d
        .by_model
        .iter()
        .find(|r| r.name == "mystery-9000")
        .unwrap();
    assert_eq!((row.llm_calls, row.unpriced_calls), (4, 4));
    let planner = d.by_service.iter().find(|r| r.name == "planner").unwrap();
    assert_eq!((planner.llm_calls, planner.unpriced_calls), (6, 4));
    let html = render(&d);
    let mystery = html
        .split("<tr>")
        .find(|r| r.contains("<td>mystery-9000</td>"))
        .unwrap();
    assert!(mystery.contains(">unpriced</span>"), "{mystery}");
    assert!(
        mystery.contains("4 unpriced (unknown_model 4)"),
        "{mystery}"
    );
    assert!(!mystery.contains("$0<"), "{mystery}");
    let planner = html
        .split("<tr>")
        .find(|r| r.contains("<td>planner</td>"))
        .unwrap();
    assert!(
        planner
            .contains("$0.666666667<small class=\"warn unpriced\">+ 4 unpriced (unknown_model 4)"),
        "{planner}"
    );
    assert!(html.contains(
        r#"<small id="spend-unpriced" class="warn">not included: 4 unpriced (unknown_model 4)</small>"#
    ));
    let json = serde_json::to_value(&d).unwrap();
    assert_eq!(json["unpriced_last_hour"]["unknown_model"], 4);
}

#[test]
fn human_units() {
    assert_eq!(bytes(0), "0 B");
    assert_eq!(bytes(512), "512 B");
    assert_eq!(bytes(1536), "1.5 KiB");
    assert_eq!(bytes(67_108_864), "64 MiB");
    assert_eq!(ago(12), "12 s");
    assert_eq!(ago(245), "4 min 5 s");
    assert_eq!(ago(3 * 3600 + 120), "3 h 2 min");
    assert_eq!(ago(2 * 86_400 + 3600), "2 d 1 h");
}
