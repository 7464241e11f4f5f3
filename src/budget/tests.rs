use std::str::FromStr;
use std::sync::Arc;

use tower::ServiceExt;

use super::*;
use crate::alert::{AlertState, AlertsConfig};
use crate::otlp::common::v1::{any_value, AnyValue, KeyValue};
use crate::otlp::trace::v1::Span;
use crate::state::MemoryStore;
use crate::task::{ManualClock, TaskTracker, TasksConfig};
use crate::wire::prost_view::ProstSpan;

/// 2025-11-20 10:00 UTC.
const T0: u64 = 1_763_632_800_000;
const DAY: u64 = 86_400_000;

fn budgets_toml(toml: &str) -> Vec<BudgetConfig> {
    #[derive(serde::Deserialize)]
    struct F {
        budgets: Vec<BudgetConfig>,
    }
    toml::from_str::<F>(toml).expect("budgets parse").budgets
}

const ONE_USD: &str = r#"
[[budgets]]
name = "per-user"
key = "user.id"
period = "day"
limit_usd = 1.00
warn_at = [0.8]
"#;

fn span(user: &str, n: u32) -> Span {
    Span {
        trace_id: vec![9; 16],
        span_id: n.to_be_bytes().repeat(2),
        attributes: vec![KeyValue {
            key: "user.id".into(),
            value: Some(AnyValue {
                value: Some(any_value::Value::StringValue(user.into())),
            }),
            ..KeyValue::default()
        }],
        ..Span::default()
    }
}

struct Rig {
    budgets: Arc<Budgets>,
    clock: Arc<ManualClock>,
    alerts: tokio::sync::broadcast::Receiver<Arc<crate::alert::Alert>>,
}

fn rig(toml: &str) -> Rig {
    let clock = Arc::new(ManualClock::new(T0));
    let tracker = Arc::new(TaskTracker::new(&TasksConfig::default(), clock.clone()));
    let engine = Arc::new(AlertEngine::new(&AlertsConfig::default(), tracker).unwrap());
    let alerts = engine.subscribe();
    let store: Arc<dyn StateStore> = Arc::new(MemoryStore::new());
    let budgets =
        Budgets::new(&budgets_toml(toml), store, clock.clone(), Some(engine)).expect("valid");
    Rig {
        budgets: Arc::new(budgets),
        clock,
        alerts,
    }
}

impl Rig {
    /// One request of one priced call.
    fn call(&self, s: &Span, nano_usd: i64) -> Vec<Crossing> {
        let mut p = Pending::default();
        let view = ProstSpan::new(s, None, None);
        self.budgets
            .collect(&mut p, 0, &view, NanoUsd(nano_usd), self.clock.now_ms());
        self.budgets.apply(p)
    }

    fn alerts(&mut self) -> Vec<Arc<crate::alert::Alert>> {
        let mut out = Vec::new();
        while let Ok(a) = self.alerts.try_recv() {
            out.push(a);
        }
        out
    }
}

#[test]
fn one_warning_at_the_crossing_call_one_limit_alert_exceeded_after_and_zero_the_next_day() {
    let mut r = rig(ONE_USD);
    let cents30 = 300_000_000;
    // 0.30, 0.60: nothing yet.
    assert!(r.call(&span("alice", 1), cents30).is_empty());
    assert!(r.call(&span("alice", 2), cents30).is_empty());
    assert!(r.alerts().is_empty());
    // 0.90 reaches 0.8 × 1.00: one warning, at this call.
    let c = r.call(&span("alice", 3), cents30);
    assert_eq!(c.len(), 1, "{c:?}");
    assert_eq!(c[0].warn_at.as_deref(), Some("0.8"));
    assert_eq!(c[0].spent, NanoUsd(900_000_000));
    assert_eq!(c[0].span_id, span("alice", 3).span_id);
    let a = r.alerts();
    assert_eq!(a.len(), 1);
    assert_eq!(a[0].state, AlertState::Firing);
    assert_eq!(a[0].severity, "warning");
    assert_eq!(a[0].labels["budget"], "per-user");
    assert_eq!(a[0].labels["user_id"], "alice");
    assert_eq!(a[0].labels["period_start"], "2025-11-20T00:00:00Z");
    assert_eq!(a[0].scope.as_str(), "budget");
    // A retried request adds nothing and fires nothing.
    assert!(r.call(&span("alice", 3), cents30).is_empty());
    assert!(r.alerts().is_empty());
    assert!(!r.budgets.status("per-user", &["alice"]).unwrap().exceeded);
    // 1.20 reaches the limit: one limit alert.
    let c = r.call(&span("alice", 4), cents30);
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].warn_at, None);
    let a = r.alerts();
    assert_eq!(a.len(), 1);
    assert_eq!(a[0].severity, "critical");
    assert_eq!(a[0].labels["threshold"], "limit");
    // More spend: no more alerts.
    assert!(r.call(&span("alice", 5), cents30).is_empty());
    assert!(r.alerts().is_empty());
    let s = r.budgets.status("per-user", &["alice"]).unwrap();
    assert!(s.exceeded);
    assert_eq!(s.spent_nano_usd, 1_500_000_000);
    assert_eq!(s.spent_usd, "1.500000000");
    assert_eq!(s.remaining_nano_usd, 0);
    assert_eq!(s.limit_usd, "1.000000000");
    assert_eq!(s.period_start, "2025-11-20T00:00:00Z");
    assert_eq!(s.period_end, "2025-11-21T00:00:00Z");
    // Others are not affected.
    let bob = r.budgets.status("per-user", &["bob"]).unwrap();
    assert_eq!((bob.spent_nano_usd, bob.exceeded), (0, false));

    // The next day starts from zero and alerts again.
    r.clock.advance_ms(DAY);
    let s = r.budgets.status("per-user", &["alice"]).unwrap();
    assert_eq!((s.spent_nano_usd, s.exceeded), (0, false));
    assert_eq!(s.remaining_nano_usd, 1_000_000_000);
    assert_eq!(s.period_start, "2025-11-21T00:00:00Z");
    let c = r.call(&span("alice", 6), 850_000_000);
    assert_eq!(c.len(), 1);
    assert_eq!(r.alerts()[0].labels["period_start"], "2025-11-21T00:00:00Z");
}

#[test]
fn one_call_across_both_thresholds_fires_both_and_a_span_without_the_key_is_not_counted() {
    let mut r = rig(ONE_USD);
    let c = r.call(&span("carol", 1), 1_000_000_000);
    assert_eq!(c.len(), 2);
    assert_eq!(r.alerts().len(), 2);
    let mut anonymous = span("x", 2);
    anonymous.attributes.clear();
    assert!(r.call(&anonymous, 5_000_000_000).is_empty());
    assert!(r.budgets.status("per-user", &["x"]).unwrap().spent_nano_usd == 0);
}

#[test]
fn where_filters_and_calendar_periods_in_a_time_zone() {
    let r = rig(r#"
[[budgets]]
name = "prod-month"
key = ["tenant.id", "user.id"]
period = "month"
timezone = "Europe/Berlin"
limit_usd = "20"
where = { "deployment.environment" = "prod" }
"#);
    let s = r.budgets.status("prod-month", &["t", "alice"]).unwrap();
    // November in Berlin starts at 23:00 UTC on 31 October.
    assert_eq!(s.period_start, "2025-10-31T23:00:00Z");
    assert_eq!(s.period_end, "2025-11-30T23:00:00Z");
    let mut sp = span("alice", 1);
    r.call(&sp, 5);
    assert_eq!(
        r.budgets
            .status("prod-month", &["t", "alice"])
            .unwrap()
            .spent_nano_usd,
        0,
        "no tenant.id, no prod: not counted"
    );
    for (k, v) in [("tenant.id", "t"), ("deployment.environment", "prod")] {
        sp.attributes.push(KeyValue {
            key: k.into(),
            value: Some(AnyValue {
                value: Some(any_value::Value::StringValue(v.into())),
            }),
            ..KeyValue::default()
        });
    }
    r.call(&sp, 5);
    assert_eq!(
        r.budgets
            .status("prod-month", &["t", "alice"])
            .unwrap()
            .spent_nano_usd,
        5
    );
    let week = Period::parse("week", None, None, None).unwrap().bounds(T0);
    // 2025-11-20 is a Thursday: the week started Monday the 17th.
    assert_eq!(period::rfc3339(week.start_ms), "2025-11-17T00:00:00Z");
    assert_eq!(week.end_ms - week.start_ms, 7 * DAY);
}

#[test]
fn bad_budgets_are_refused_with_the_reason() {
    for (toml, want) in [
        (
            "name='a'\nkey='u'\nperiod='year'\nlimit_usd=1",
            "unknown period",
        ),
        ("name='a'\nkey='u'\nperiod='day'\nlimit_usd=0", "above zero"),
        (
            "name='a'\nkey='u'\nperiod='day'\nlimit_usd=1\nwarn_at=[1.5]",
            "fraction",
        ),
        (
            "name='a'\nkey='u'\nperiod='day'\nlimit_usd=0.0000000001",
            "9 decimals",
        ),
        (
            "name='a'\nkey='u'\nperiod='day'\ntimezone='Mars/Base'\nlimit_usd=1",
            "timezone",
        ),
        ("name='a'\nkey=[]\nperiod='day'\nlimit_usd=1", "key"),
        (
            "name='a'\nkey='u'\nperiod='rolling'\nlimit_usd=1",
            "needs a window",
        ),
        (
            "name='a'\nkey='u'\nperiod='rolling'\nwindow='30s'\nlimit_usd=1",
            "at least 1m",
        ),
        (
            "name='a'\nkey='u'\nperiod='rolling'\nwindow='1h'\nbucket='7m'\nlimit_usd=1",
            "divide",
        ),
        (
            "name='a'\nkey='u'\nperiod='rolling'\nwindow='30d'\nbucket='1m'\nlimit_usd=1",
            "at most 1440",
        ),
        (
            "name='a'\nkey='u'\nperiod='rolling'\nwindow='1h 0.5s'\nlimit_usd=1",
            "whole seconds",
        ),
        (
            "name='a'\nkey='u'\nperiod='day'\nwindow='1h'\nlimit_usd=1",
            "rolling\" only",
        ),
        (
            "name='a'\nkey='u'\nperiod='day'\nlimit_usd=1\nwhere={x=[1]}",
            "where.x",
        ),
    ] {
        let cfg: BudgetConfig = toml::from_str(toml).unwrap();
        let e = compile(&[cfg]).unwrap_err();
        assert!(e[0].1.contains(want), "{toml}: {e:?}");
    }
    let cfgs = budgets_toml(&format!("{ONE_USD}{ONE_USD}"));
    assert!(compile(&cfgs).unwrap_err()[0].1.contains("twice"));
}

#[tokio::test]
async fn the_http_api_answers_from_memory() {
    let r = rig(ONE_USD);
    r.call(&span("dave", 1), 1_200_000_000);
    let app = http::router(r.budgets.clone());
    let get = |uri: &str| {
        axum::http::Request::builder()
            .uri(uri)
            .body(axum::body::Body::empty())
            .unwrap()
    };
    let resp = app
        .clone()
        .oneshot(get("/api/v1/budgets/per-user/dave"))
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body = axum::body::to_bytes(resp.into_body(), 1 << 16)
        .await
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["spent_usd"], "1.200000000");
    assert_eq!(v["exceeded"], true);
    assert_eq!(v["key"]["user.id"], "dave");
    let resp = app
        .clone()
        .oneshot(get("/api/v1/budgets/nope/dave"))
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    let resp = app
        .oneshot(get("/api/v1/budgets/per-user/a/b"))
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
}

/// A rolling window: spend of the last 24 h (in 60 buckets of 24 min), alerts once per window
/// length, and the API's period is the buckets counted now.
#[test]
fn a_rolling_budget_counts_the_last_window_and_forgets_what_left_it() {
    let mut r = rig(r#"
[[budgets]]
name = "rolling-user"
key = "user.id"
period = "rolling"
window = "24h"
limit_usd = 1.00
warn_at = [0.5]
"#);
    const BUCKET: u64 = DAY / 60;
    let half = 500_000_000;
    assert!(r.call(&span("erin", 1), 400_000_000).is_empty());
    // 12 h later: 0.40 + 0.10 reaches the 0.5 warning.
    r.clock.advance_ms(DAY / 2);
    let c = r.call(&span("erin", 2), 100_000_000);
    assert_eq!(c.len(), 1, "{c:?}");
    assert_eq!(c[0].spent, NanoUsd(half));
    let a = r.alerts();
    assert_eq!(a.len(), 1);
    assert_eq!(a[0].labels["threshold"], "0.5");
    let s = r.budgets.status("rolling-user", &["erin"]).unwrap();
    assert_eq!((s.spent_nano_usd, s.exceeded), (half, false));
    assert_eq!(s.period, "rolling");
    assert_eq!(s.window.as_deref(), Some("24h"));
    // The window ends with the current bucket and reaches back 24 h.
    let start = jiff::Timestamp::from_str(&s.period_start).unwrap();
    let end = jiff::Timestamp::from_str(&s.period_end).unwrap();
    assert_eq!(end.as_millisecond() - start.as_millisecond(), DAY as i64);
    // T0 is on a bucket boundary (10:00 UTC): the first call's bucket leaves the window when
    // the bucket starting 24 h after it begins.
    assert_eq!(T0 % BUCKET, 0);
    r.clock.advance_ms(DAY / 2 - 1);
    let s = r.budgets.status("rolling-user", &["erin"]).unwrap();
    assert_eq!(
        s.spent_nano_usd, half,
        "the first call is still in the window"
    );
    r.clock.advance_ms(1);
    let s = r.budgets.status("rolling-user", &["erin"]).unwrap();
    assert_eq!(
        s.spent_nano_usd, 100_000_000,
        "the first call left the window"
    );
    // Back above 0.5 within 24 h of the warning: not again (once per window length).
    assert!(r.call(&span("erin", 3), 450_000_000).is_empty());
    assert!(r.alerts().is_empty());
    // 1.00 reached: the limit alert.
    let c = r.call(&span("erin", 4), 450_000_000);
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].warn_at, None);
    assert!(
        r.budgets
            .status("rolling-user", &["erin"])
            .unwrap()
            .exceeded
    );
}
