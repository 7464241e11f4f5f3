//! The budget check an agent makes before its next call, with 100 000 users' keys held:
//! `Budgets::status` (what the HTTP and gRPC APIs call), the HTTP API in process (routing, JSON),
//! and counting one priced call into a budget (the span path's share).

use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use std::hint::black_box;
use tollgate::budget::{BudgetConfig, Budgets, Pending};
use tollgate::otlp::common::v1::{any_value, AnyValue, KeyValue};
use tollgate::otlp::trace::v1::Span;
use tollgate::state::{MemoryStore, StateStore};
use tollgate::task::{Clock, ManualClock};
use tollgate::units::NanoUsd;
use tollgate::wire::prost_view::ProstSpan;
use tower::ServiceExt;

const USERS: u32 = 100_000;
/// 2026-12-04 10:00 UTC.
const NOW: u64 = 1_796_378_400_000;

fn span(user: u32, n: u64) -> Span {
    Span {
        trace_id: vec![7; 16],
        span_id: n.to_be_bytes().to_vec(),
        attributes: vec![KeyValue {
            key: "user.id".into(),
            value: Some(AnyValue {
                value: Some(any_value::Value::StringValue(format!("user-{user}"))),
            }),
            ..KeyValue::default()
        }],
        ..Span::default()
    }
}

fn budgets(period: &str) -> (Arc<Budgets>, Arc<ManualClock>) {
    #[derive(serde::Deserialize)]
    struct F {
        budgets: Vec<BudgetConfig>,
    }
    let cfg: F = toml::from_str(&format!(
        "[[budgets]]\nname = \"per-user\"\nkey = \"user.id\"\n{period}\nlimit_usd = 1000\nwarn_at = [0.8]\n"
    ))
    .unwrap();
    let clock = Arc::new(ManualClock::new(NOW));
    let store: Arc<dyn StateStore> = Arc::new(MemoryStore::new());
    let b = Arc::new(Budgets::new(&cfg.budgets, store, clock.clone(), None).unwrap());
    // 100 000 users with three calls each.
    for n in 0..u64::from(USERS) * 3 {
        let s = span((n % u64::from(USERS)) as u32, n);
        let mut p = Pending::default();
        b.collect(
            &mut p,
            0,
            &ProstSpan::new(&s, None, None),
            NanoUsd(1_234_567),
            NOW,
        );
        b.apply(p);
    }
    (b, clock)
}

fn bench(c: &mut Criterion) {
    for (name, period) in [
        ("day", "period = \"day\""),
        ("rolling_24h", "period = \"rolling\"\nwindow = \"24h\""),
    ] {
        let (b, clock) = budgets(period);
        let mut user = 0u32;
        c.bench_function(&format!("budget_status_100k_users_{name}"), |bench| {
            bench.iter(|| {
                user = (user + 7919) % USERS;
                let key = format!("user-{user}");
                black_box(b.status("per-user", &[&key]).unwrap())
            })
        });
        let app = tollgate::budget::http::router(b.clone());
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        c.bench_function(&format!("budget_http_get_100k_users_{name}"), |bench| {
            bench.iter(|| {
                user = (user + 7919) % USERS;
                let req = axum::http::Request::builder()
                    .uri(format!("/api/v1/budgets/per-user/user-{user}"))
                    .body(axum::body::Body::empty())
                    .unwrap();
                let resp = rt.block_on(app.clone().oneshot(req)).unwrap();
                black_box(
                    rt.block_on(axum::body::to_bytes(resp.into_body(), 1 << 16))
                        .unwrap(),
                )
            })
        });
        let mut n = 10_000_000u64;
        c.bench_function(&format!("budget_count_one_call_{name}"), |bench| {
            bench.iter(|| {
                n += 1;
                let s = span((n % u64::from(USERS)) as u32, n);
                let mut p = Pending::default();
                b.collect(
                    &mut p,
                    0,
                    &ProstSpan::new(&s, None, None),
                    NanoUsd(1_000),
                    clock.now_ms(),
                );
                black_box(b.apply(p))
            })
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
