//! Webhook delivery: JSON POST with a verifiable HMAC-SHA256 signature; 5xx retried, 400 not;
//! a hanging receiver never blocks `observe()`.

mod alert_support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use alert_support::{counter, TestSpan};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::sync::mpsc;

type Received = (HeaderMap, Bytes);

#[derive(Clone)]
struct Receiver {
    tx: mpsc::UnboundedSender<Received>,
    calls: Arc<AtomicUsize>,
    /// Statuses to answer in order; 200 after they run out.
    statuses: Arc<Vec<u16>>,
}

async fn hook(State(r): State<Receiver>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let n = r.calls.fetch_add(1, Ordering::SeqCst);
    r.tx.send((headers, body)).ok();
    StatusCode::from_u16(*r.statuses.get(n).unwrap_or(&200)).unwrap()
}

async fn receiver(
    statuses: Vec<u16>,
) -> (String, mpsc::UnboundedReceiver<Received>, Arc<AtomicUsize>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let calls = Arc::new(AtomicUsize::new(0));
    let state = Receiver {
        tx,
        calls: calls.clone(),
        statuses: Arc::new(statuses),
    };
    let app = axum::Router::new()
        .route("/hook", post(hook))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/hook"), rx, calls)
}

fn rules(url: &str, extra: &str) -> String {
    format!(
        r#"
        [[rules]]
        name = "any_llm_call"
        scope = "span"
        metric = "llm_calls"
        op = ">="
        threshold = 1

        [[notify]]
        kind = "webhook"
        url = "{url}"
        {extra}
        "#
    )
}

async fn next(rx: &mut mpsc::UnboundedReceiver<Received>) -> Received {
    tokio::time::timeout(Duration::from_secs(60), rx.recv())
        .await
        .expect("the webhook was called")
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_body_is_signed_with_hmac_sha256() {
    let (url, mut rx, _) = receiver(vec![]).await;
    let (engine, _clock) = alert_support::engine(&rules(&url, r#"secret = "s3cr3t-key""#));
    engine.observe(&TestSpan::llm("hooked", 1, 42).input());
    let (headers, body) = next(&mut rx).await;

    let sig = headers["x-tollgate-signature"].to_str().unwrap();
    let hex_sig = sig.strip_prefix("sha256=").expect("sha256= prefix");
    let mut mac = Hmac::<Sha256>::new_from_slice(b"s3cr3t-key").unwrap();
    mac.update(&body);
    mac.verify_slice(&hex::decode(hex_sig).unwrap())
        .expect("signature verifies");
    let mut wrong = Hmac::<Sha256>::new_from_slice(b"other-key").unwrap();
    wrong.update(&body);
    assert!(wrong.verify_slice(&hex::decode(hex_sig).unwrap()).is_err());
    let ts: u64 = headers["x-tollgate-timestamp"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(ts > 1_700_000_000);
    assert_eq!(headers["content-type"], "application/json");

    let alert: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(alert["rule"], "any_llm_call");
    assert_eq!(alert["state"], "firing");
    assert_eq!(alert["scope"], "span");
    assert_eq!(alert["labels"]["alertname"], "any_llm_call");
    assert_eq!(alert["task_id"], "hooked");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_are_retried_and_bad_requests_are_not() {
    let (url, mut rx, calls) = receiver(vec![503, 500]).await;
    let (engine, _clock) = alert_support::engine(&rules(&url, ""));
    engine.observe(&TestSpan::llm("retry", 1, 1).input());
    for _ in 0..3 {
        next(&mut rx).await;
    }
    assert_eq!(calls.load(Ordering::SeqCst), 3);

    let (url, mut rx, calls) = receiver(vec![400, 400, 400]).await;
    let (engine2, _clock) = alert_support::engine(&rules(&url, ""));
    engine2.observe(&TestSpan::llm("reject", 1, 1).input());
    engine2.observe(&TestSpan::llm("reject-2", 1, 1).input());
    // The second alert's delivery proves the first was not retried in between.
    let (_, first) = next(&mut rx).await;
    let (_, second) = next(&mut rx).await;
    assert_ne!(first, second);
    let second: serde_json::Value = serde_json::from_slice(&second).unwrap();
    assert_eq!(second["task_id"], "reject-2");
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_webhook_does_not_block_observe() {
    // Accepts connections and never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((sock, _)) = listener.accept().await {
            held.push(sock);
        }
    });
    let (engine, _clock) = alert_support::engine(&rules(
        &format!("http://{addr}/hook"),
        "name = \"hanging\"\nqueue_size = 4\ntimeout = \"1h\"",
    ));
    let dropped_before = counter(
        "tollgate_alert_notifications_total",
        &[("notifier", "hanging"), ("outcome", "dropped")],
    );
    let e = engine.clone();
    let done = tokio::task::spawn_blocking(move || {
        for i in 0..1000u32 {
            let s = TestSpan::llm(&format!("t{i}"), 1, 1);
            e.observe(&s.input());
        }
    });
    tokio::time::timeout(Duration::from_secs(120), done)
        .await
        .expect("observe() returned although the webhook hangs")
        .unwrap();
    let dropped = counter(
        "tollgate_alert_notifications_total",
        &[("notifier", "hanging"), ("outcome", "dropped")],
    ) - dropped_before;
    assert!(dropped >= 995.0, "dropped {dropped}");
}
