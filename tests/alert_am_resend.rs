//! Alertmanager delivery against two stand-in replicas that enforce the API v2 wire rules: every
//! replica gets every POST, firing window alerts are re-sent with a future `endsAt`, resolved
//! ones carry `endsAt` in the past.

mod alert_support;

use std::sync::Arc;
use std::time::Duration;

use alert_support::TestSpan;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use parking_lot::Mutex;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

type Posts = Arc<Mutex<Vec<serde_json::Value>>>;

/// Accepts only what Alertmanager accepts: JSON array of alerts with non-empty legacy labels and
/// RFC 3339 times.
async fn alerts_v2(State(posts): State<Posts>, headers: HeaderMap, body: Bytes) -> StatusCode {
    if headers.get("content-type").and_then(|v| v.to_str().ok()) != Some("application/json") {
        return StatusCode::UNSUPPORTED_MEDIA_TYPE;
    }
    let Ok(serde_json::Value::Array(alerts)) = serde_json::from_slice(&body) else {
        return StatusCode::BAD_REQUEST;
    };
    for a in &alerts {
        let Some(labels) = a["labels"].as_object().filter(|l| !l.is_empty()) else {
            return StatusCode::BAD_REQUEST;
        };
        let legacy = |k: &str| {
            k.chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        };
        if !labels.keys().all(|k| legacy(k)) {
            return StatusCode::BAD_REQUEST;
        }
        for t in ["startsAt", "endsAt"] {
            if OffsetDateTime::parse(a[t].as_str().unwrap_or(""), &Rfc3339).is_err() {
                return StatusCode::BAD_REQUEST;
            }
        }
        posts.lock().push(a.clone());
    }
    StatusCode::OK
}

async fn replica() -> (String, Posts) {
    let posts: Posts = Arc::default();
    let app = axum::Router::new()
        .route("/api/v2/alerts", post(alerts_v2))
        .with_state(posts.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), posts)
}

fn ends_at(a: &serde_json::Value) -> OffsetDateTime {
    OffsetDateTime::parse(a["endsAt"].as_str().unwrap(), &Rfc3339).unwrap()
}

async fn wait_for(posts: &Posts, what: impl Fn(&[serde_json::Value]) -> bool) {
    for _ in 0..600 {
        if what(&posts.lock()) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out; got {:#?}", posts.lock());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn firing_window_alerts_are_resent_to_every_replica_then_resolved() {
    let (a, posts_a) = replica().await;
    let (b, posts_b) = replica().await;
    let (engine, clock) = alert_support::engine(&format!(
        r#"
        [[rules]]
        name = "error_rate_high"
        scope = "window"
        window = "1m"
        metric = "error_rate"
        op = ">"
        threshold = 0.5
        labels = {{ team = "agents" }}

        [[notify]]
        kind = "alertmanager"
        url = ["{a}", "{b}/"]
        resend_interval = "200ms"
        "#
    ));
    let span = TestSpan::llm("w", 1, 1);
    let mut input = span.input();
    input.error = true;
    engine.observe(&input);

    let now = OffsetDateTime::now_utc();
    for posts in [&posts_a, &posts_b] {
        // The first POST plus at least two re-sends, all still firing.
        wait_for(posts, |p| p.len() >= 3).await;
        for alert in posts.lock().iter() {
            assert_eq!(alert["labels"]["alertname"], "error_rate_high");
            assert_eq!(alert["labels"]["team"], "agents");
            assert!(ends_at(alert) > now + time::Duration::minutes(3));
            assert!(alert.get("generatorURL").is_none());
        }
    }

    clock.advance_ms(61_000);
    engine.tick();
    let resolved = |p: &[serde_json::Value]| {
        p.iter()
            .any(|a| ends_at(a) <= OffsetDateTime::now_utc() && a["labels"]["team"] == "agents")
    };
    wait_for(&posts_a, resolved).await;
    wait_for(&posts_b, resolved).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_that_adds_a_notifier_hands_it_the_alerts_already_firing() {
    let (url, posts) = replica().await;
    let rules = r#"
        [[rules]]
        name = "errors_seen"
        scope = "window"
        window = "10m"
        metric = "error_count"
        op = ">="
        threshold = 1
        "#;
    let (engine, _clock) = alert_support::engine(rules);
    let span = TestSpan::llm("r", 1, 1);
    let mut input = span.input();
    input.error = true;
    engine.observe(&input);

    let bad: tollgate::alert::AlertsConfig = toml::from_str(&format!(
        "{rules}\n[[notify]]\nkind = \"alertmanager\"\nurl = \"ftp://nowhere\"\nsecret = \"x\""
    ))
    .unwrap();
    let errors = engine.reload(&bad).unwrap_err();
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(errors[0].to_string().contains("notifier #0"));

    let good: tollgate::alert::AlertsConfig = toml::from_str(&format!(
        "{rules}\n[[notify]]\nkind = \"alertmanager\"\nurl = \"{url}\""
    ))
    .unwrap();
    engine.reload(&good).unwrap();
    wait_for(&posts, |p| !p.is_empty()).await;
    assert_eq!(posts.lock()[0]["labels"]["alertname"], "errors_seen");
}
