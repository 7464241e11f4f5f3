//! Retry behaviour against scripted generic OTLP sinks.

mod support;

use std::time::{Duration, Instant};

use support::standins::{self, Reply, Rules, Standin};
use support::{batch, eventually};
use tollgate::export::metrics::{dropped_spans, failed_requests, sent_spans};
use tollgate::export::{ExporterConfig, ExporterKind, Exporters};

fn cfg(name: &str, kind: ExporterKind, s: &Standin) -> ExporterConfig {
    let mut c = ExporterConfig::new(name, kind);
    c.endpoint = Some(s.url());
    c.insecure = true;
    c.batch.timeout = Duration::from_millis(10);
    c.retry.initial_interval = Duration::from_millis(20);
    c.retry.max_interval = Duration::from_millis(100);
    c
}

async fn run_one(c: ExporterConfig, spans: usize) -> Exporters {
    let ex = Exporters::from_configs(&[c]).expect("valid");
    ex.dispatch(batch("svc", "r", spans, 1));
    ex
}

#[tokio::test]
async fn http_503_retry_after_then_200_delivers_once_after_the_wait() {
    let s = standins::http(Rules::Generic).await;
    s.push([Reply::HttpRetryAfter(503, "1".into())]);
    let started = Instant::now();
    let ex = run_one(cfg("r_503", ExporterKind::OtlpHttp, &s), 5).await;
    let rec = s.record.clone();
    eventually("delivered", || rec.spans() == 5).await;
    // The retry waited for Retry-After (1 s), not the 20 ms backoff.
    assert!(started.elapsed() >= Duration::from_secs(1));
    ex.drain(Instant::now() + Duration::from_secs(5)).await;
    assert_eq!(s.record.attempts(), 2);
    assert_eq!(s.record.received.lock().len(), 1);
    assert_eq!(failed_requests("r_503", "throttled"), 1);
    assert_eq!(sent_spans("r_503"), 5);
}

#[tokio::test]
async fn http_400_is_dropped_and_counted() {
    let s = standins::http(Rules::Generic).await;
    s.push([Reply::Http(400)]);
    let ex = run_one(cfg("r_400", ExporterKind::OtlpHttp, &s), 6).await;
    eventually("dropped", || dropped_spans("r_400", "permanent_error") == 6).await;
    ex.drain(Instant::now() + Duration::from_secs(5)).await;
    assert_eq!(s.record.attempts(), 1);
    assert_eq!(sent_spans("r_400"), 0);
}

#[tokio::test]
async fn http_partial_success_is_not_retried() {
    let s = standins::http(Rules::Generic).await;
    s.push([Reply::Partial(2, "two bad spans".into())]);
    let ex = run_one(cfg("r_http_partial", ExporterKind::OtlpHttp, &s), 5).await;
    eventually("counted", || {
        dropped_spans("r_http_partial", "partial_success") == 2
    })
    .await;
    ex.drain(Instant::now() + Duration::from_secs(5)).await;
    assert_eq!(s.record.attempts(), 1);
    assert_eq!(sent_spans("r_http_partial"), 3);
}

#[tokio::test]
async fn grpc_unavailable_is_retried() {
    let s = standins::grpc(Rules::Generic).await;
    s.push([
        Reply::Grpc(tonic::Code::Unavailable),
        Reply::Grpc(tonic::Code::Unavailable),
    ]);
    let ex = run_one(cfg("r_unavail", ExporterKind::OtlpGrpc, &s), 4).await;
    let rec = s.record.clone();
    eventually("delivered", || rec.spans() == 4).await;
    ex.drain(Instant::now() + Duration::from_secs(5)).await;
    assert_eq!(s.record.attempts(), 3);
    assert_eq!(failed_requests("r_unavail", "grpc_status"), 2);
}

#[tokio::test]
async fn grpc_resource_exhausted_without_retry_info_is_not_retried() {
    let s = standins::grpc(Rules::Generic).await;
    s.push([Reply::Grpc(tonic::Code::ResourceExhausted)]);
    let ex = run_one(cfg("r_exhausted", ExporterKind::OtlpGrpc, &s), 4).await;
    eventually("dropped", || {
        dropped_spans("r_exhausted", "permanent_error") == 4
    })
    .await;
    ex.drain(Instant::now() + Duration::from_secs(5)).await;
    assert_eq!(s.record.attempts(), 1);
    assert_eq!(s.record.spans(), 0);
}

#[tokio::test]
async fn grpc_resource_exhausted_with_retry_info_is_retried_after_the_delay() {
    let s = standins::grpc(Rules::Generic).await;
    s.push([Reply::GrpcRetryInfo(
        tonic::Code::ResourceExhausted,
        Duration::from_millis(700),
    )]);
    let started = Instant::now();
    let ex = run_one(cfg("r_retryinfo", ExporterKind::OtlpGrpc, &s), 4).await;
    let rec = s.record.clone();
    eventually("delivered", || rec.spans() == 4).await;
    assert!(started.elapsed() >= Duration::from_millis(700));
    ex.drain(Instant::now() + Duration::from_secs(5)).await;
    assert_eq!(s.record.attempts(), 2);
    assert_eq!(failed_requests("r_retryinfo", "throttled"), 1);
}

#[tokio::test]
async fn grpc_partial_success_is_not_retried() {
    let s = standins::grpc(Rules::Generic).await;
    s.push([Reply::Partial(1, "one bad span".into())]);
    let ex = run_one(cfg("r_grpc_partial", ExporterKind::OtlpGrpc, &s), 4).await;
    eventually("counted", || {
        dropped_spans("r_grpc_partial", "partial_success") == 1
    })
    .await;
    ex.drain(Instant::now() + Duration::from_secs(5)).await;
    assert_eq!(s.record.attempts(), 1);
    assert_eq!(sent_spans("r_grpc_partial"), 3);
}

#[tokio::test]
async fn retries_stop_at_max_elapsed_time() {
    let s = standins::grpc(Rules::Generic).await;
    s.push(std::iter::repeat_n(
        Reply::Grpc(tonic::Code::Unavailable),
        1000,
    ));
    let mut c = cfg("r_exhaust", ExporterKind::OtlpGrpc, &s);
    c.retry.max_elapsed_time = Duration::from_millis(300);
    let ex = run_one(c, 3).await;
    eventually("given up", || {
        dropped_spans("r_exhaust", "retries_exhausted") == 3
    })
    .await;
    ex.drain(Instant::now() + Duration::from_secs(5)).await;
    assert!(s.record.attempts() >= 2);
    assert_eq!(s.record.spans(), 0);
}

#[tokio::test]
async fn connection_refused_is_retried() {
    // Bind then drop a listener to get a port nobody listens on, then start the sink there later.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let mut c = ExporterConfig::new("r_refused", ExporterKind::OtlpHttp);
    c.endpoint = Some(format!("http://{addr}"));
    c.insecure = true;
    c.batch.timeout = Duration::from_millis(10);
    c.retry.initial_interval = Duration::from_millis(20);
    c.retry.max_interval = Duration::from_millis(50);
    let ex = run_one(c, 2).await;
    eventually("a failed attempt", || {
        failed_requests("r_refused", "connection") >= 1
    })
    .await;
    ex.drain(Instant::now() + Duration::from_millis(200)).await;
    assert_eq!(dropped_spans("r_refused", "shutdown"), 2);
}

#[tokio::test]
async fn a_request_that_times_out_is_retried() {
    let s = standins::grpc(Rules::Generic).await;
    s.push([Reply::Hang]);
    let mut c = cfg("r_timeout", ExporterKind::OtlpGrpc, &s);
    c.timeout = Duration::from_millis(300);
    let ex = run_one(c, 2).await;
    let rec = s.record.clone();
    eventually("delivered on the second attempt", || rec.spans() == 2).await;
    ex.drain(Instant::now() + Duration::from_secs(5)).await;
    assert_eq!(failed_requests("r_timeout", "timeout"), 1);
    assert_eq!(s.record.attempts(), 2);
}
