//! Each preset delivers to a stand-in that enforces the real service's wire rules.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use support::standins::{self, Rules, Standin};
use support::{batch, eventually};
use tollgate::config::Secret;
use tollgate::export::config::{Compression, Protocol};
use tollgate::export::{ExporterConfig, ExporterKind, Exporters};

fn fast(mut c: ExporterConfig) -> ExporterConfig {
    c.insecure = true;
    c.batch.timeout = Duration::from_millis(10);
    c.retry.initial_interval = Duration::from_millis(20);
    c.retry.max_interval = Duration::from_millis(100);
    c
}

/// Sends three batches and waits until the stand-in holds all 30 spans.
async fn deliver(cfg: ExporterConfig, s: &Standin) {
    let name = cfg.name.clone();
    let ex = Exporters::from_configs(&[cfg]).expect("valid");
    for i in 0..3 {
        ex.dispatch(batch("svc", &format!("b{i}"), 10, 20));
    }
    let rec = s.record.clone();
    eventually("all spans delivered", || rec.spans() == 30).await;
    ex.drain(Instant::now() + Duration::from_secs(5)).await;
    assert!(
        s.record.rejections.lock().is_empty(),
        "{:?}",
        s.record.rejections.lock()
    );
    assert_eq!(tollgate::export::metrics::sent_spans(&name), 30);
    let mut names = s.record.span_names();
    names.sort();
    assert_eq!(names.len(), 30);
    names.dedup();
    assert_eq!(names.len(), 30, "no span delivered twice");
}

#[tokio::test]
async fn langfuse_delivers() {
    let s = standins::http(Rules::Langfuse {
        public_key: "pk-lf-1".into(),
        secret_key: "sk-lf-2".into(),
    })
    .await;
    let mut c = fast(ExporterConfig::new("p_langfuse", ExporterKind::Langfuse));
    c.host = Some(s.url());
    c.public_key = Some(Secret::new("pk-lf-1"));
    c.secret_key = Some(Secret::new("sk-lf-2"));
    deliver(c, &s).await;
    let r = s.record.received.lock()[0].clone();
    assert_eq!(r.headers["content-encoding"], "gzip");
    assert_eq!(r.headers["content-type"], "application/x-protobuf");
}

/// Issue 18 point 4: `endpoint` is a base URL for langfuse as for otlp_http: the traces path is
/// appended (the stand-in refuses any other path).
#[tokio::test]
async fn langfuse_endpoint_is_a_base_url() {
    let s = standins::http(Rules::Langfuse {
        public_key: "pk-lf-1".into(),
        secret_key: "sk-lf-2".into(),
    })
    .await;
    let mut c = fast(ExporterConfig::new(
        "p_langfuse_base",
        ExporterKind::Langfuse,
    ));
    c.endpoint = Some(format!("{}/", s.url()));
    c.public_key = Some(Secret::new("pk-lf-1"));
    c.secret_key = Some(Secret::new("sk-lf-2"));
    deliver(c, &s).await;
}

#[tokio::test]
async fn langfuse_wrong_key_is_dropped_not_retried() {
    let s = standins::http(Rules::Langfuse {
        public_key: "pk-lf-1".into(),
        secret_key: "sk-lf-2".into(),
    })
    .await;
    let mut c = fast(ExporterConfig::new(
        "p_langfuse_401",
        ExporterKind::Langfuse,
    ));
    c.host = Some(s.url());
    c.public_key = Some(Secret::new("pk-lf-1"));
    c.secret_key = Some(Secret::new("wrong"));
    let ex = Exporters::from_configs(&[c]).expect("valid");
    ex.dispatch(batch("svc", "a", 4, 1));
    eventually("dropped", || {
        tollgate::export::metrics::dropped_spans("p_langfuse_401", "permanent_error") == 4
    })
    .await;
    ex.drain(Instant::now() + Duration::from_secs(5)).await;
    assert_eq!(s.record.attempts(), 1);
    assert_eq!(s.record.rejections.lock()[0].0, 401);
}

#[tokio::test]
async fn tempo_grpc_with_tenant_delivers() {
    let s = standins::grpc(Rules::Tempo {
        tenant: Some("team-a".into()),
    })
    .await;
    let mut c = fast(ExporterConfig::new("p_tempo_grpc", ExporterKind::Tempo));
    c.endpoint = Some(s.url());
    c.tenant = Some("team-a".into());
    deliver(c, &s).await;
}

#[tokio::test]
async fn tempo_http_with_tenant_and_basic_auth_delivers() {
    let s = standins::http(Rules::Tempo {
        tenant: Some("team-b".into()),
    })
    .await;
    let mut c = fast(ExporterConfig::new("p_tempo_http", ExporterKind::Tempo));
    c.endpoint = Some(s.url());
    c.protocol = Some(Protocol::Http);
    c.tenant = Some("team-b".into());
    c.username = Some("12345".into());
    c.password = Some(Secret::new("glc_token"));
    deliver(c, &s).await;
    let r = s.record.received.lock()[0].clone();
    assert_eq!(r.headers["authorization"], "Basic MTIzNDU6Z2xjX3Rva2Vu");
}

#[tokio::test]
async fn tempo_splits_requests_under_4_mib() {
    let s = standins::grpc(Rules::Tempo { tenant: None }).await;
    let mut c = fast(ExporterConfig::new("p_tempo_split", ExporterKind::Tempo));
    c.endpoint = Some(s.url());
    c.batch.max_bytes = 64 << 20;
    c.batch.max_spans = 100_000;
    c.batch.timeout = Duration::from_millis(300);
    let ex = Exporters::from_configs(&[c]).expect("valid");
    // 3 batches of 2000 spans × ~1 KiB ≈ 6 MiB: more than one 4 MiB message.
    for i in 0..3 {
        ex.dispatch(batch("svc", &format!("big{i}"), 2000, 1000));
    }
    let rec = s.record.clone();
    eventually("all 6000 spans", || rec.spans() == 6000).await;
    ex.drain(Instant::now() + Duration::from_secs(5)).await;
    let received = s.record.received.lock();
    assert!(received.len() >= 2, "the request was split");
    assert!(received.iter().all(|r| r.raw_bytes <= 4 << 20));
    assert!(s.record.rejections.lock().is_empty());
}

#[tokio::test]
async fn honeycomb_http_content_type_is_exact() {
    let s = standins::http(Rules::Honeycomb {
        api_key: "hcaik_env_key".into(),
        dataset: None,
    })
    .await;
    let mut c = fast(ExporterConfig::new(
        "p_honeycomb_http",
        ExporterKind::Honeycomb,
    ));
    c.endpoint = Some(s.url());
    c.protocol = Some(Protocol::Http);
    c.api_key = Some(Secret::new("hcaik_env_key"));
    c.compression = Some(Compression::Zstd);
    deliver(c, &s).await;
    let r = s.record.received.lock()[0].clone();
    assert_eq!(r.headers["content-type"], "application/x-protobuf");
    assert_eq!(r.headers["content-encoding"], "zstd");
    assert!(r.headers.get("x-honeycomb-dataset").is_none());
}

#[tokio::test]
async fn honeycomb_grpc_classic_key_with_dataset_delivers() {
    let key = "0123456789abcdef0123456789abcdef";
    let s = standins::grpc(Rules::Honeycomb {
        api_key: key.into(),
        dataset: Some("traces".into()),
    })
    .await;
    let mut c = fast(ExporterConfig::new(
        "p_honeycomb_grpc",
        ExporterKind::Honeycomb,
    ));
    c.endpoint = Some(s.url());
    c.api_key = Some(Secret::new(key));
    c.dataset = Some("traces".into());
    deliver(c, &s).await;
}

#[tokio::test]
async fn otlp_grpc_delivers_with_each_compression() {
    for (i, comp) in [Compression::Gzip, Compression::Zstd, Compression::None]
        .into_iter()
        .enumerate()
    {
        let s = standins::grpc(Rules::Generic).await;
        let mut c = fast(ExporterConfig::new(
            &format!("p_otlp_grpc_{i}"),
            ExporterKind::OtlpGrpc,
        ));
        c.endpoint = Some(s.url());
        c.compression = Some(comp);
        deliver(c, &s).await;
    }
}

#[tokio::test]
async fn otlp_http_json_and_traces_endpoint_deliver() {
    let s = standins::http(Rules::Generic).await;
    let mut c = fast(ExporterConfig::new(
        "p_otlp_http_json",
        ExporterKind::OtlpHttp,
    ));
    c.endpoint = Some(format!("{}/", s.url()));
    c.encoding = Some(tollgate::export::config::Encoding::Json);
    deliver(c, &s).await;
    assert_eq!(
        s.record.received.lock()[0].headers["content-type"],
        "application/json"
    );

    let s = standins::http(Rules::Generic).await;
    let mut c = fast(ExporterConfig::new(
        "p_otlp_http_full",
        ExporterKind::OtlpHttp,
    ));
    c.traces_endpoint = Some(format!("{}/v1/traces", s.url()));
    c.headers
        .insert("authorization".into(), Secret::new("Bearer t"));
    deliver(c, &s).await;
    assert_eq!(
        s.record.received.lock()[0].headers["authorization"],
        "Bearer t"
    );
}

#[tokio::test]
async fn guard_lives_until_sent() {
    let s = standins::http(Rules::Generic).await;
    let mut c = fast(ExporterConfig::new("p_guard", ExporterKind::OtlpHttp));
    c.endpoint = Some(s.url());
    let ex = Exporters::from_configs(&[c]).expect("valid");
    let guard = Arc::new(());
    let b = support::batch("svc", "g", 3, 1);
    let b = Arc::new(
        tollgate::export::ExportBatch::new(b.bytes.clone(), 3).with_guard(Box::new(guard.clone())),
    );
    ex.dispatch(b);
    let g = guard.clone();
    eventually("guard released after delivery", || {
        Arc::strong_count(&g) == 2
    })
    .await;
    let rec = s.record.clone();
    assert_eq!(rec.spans(), 3);
    ex.drain(Instant::now() + Duration::from_secs(5)).await;
}

#[tokio::test]
async fn tempo_refuses_an_unsplit_6_mib_request() {
    // The control for `tempo_splits_requests_under_4_mib`: with splitting effectively off the
    // same data is refused (RESOURCE_EXHAUSTED, not retried) and dropped.
    let s = standins::grpc(Rules::Tempo { tenant: None }).await;
    let mut c = fast(ExporterConfig::new("p_tempo_nosplit", ExporterKind::Tempo));
    c.endpoint = Some(s.url());
    c.max_request_bytes = Some(64 << 20);
    c.batch.max_bytes = 64 << 20;
    c.batch.max_spans = 100_000;
    c.batch.timeout = Duration::from_millis(300);
    let ex = Exporters::from_configs(&[c]).expect("valid");
    for i in 0..3 {
        ex.dispatch(batch("svc", &format!("big{i}"), 2000, 1000));
    }
    eventually("dropped", || {
        tollgate::export::metrics::dropped_spans("p_tempo_nosplit", "permanent_error") == 6000
    })
    .await;
    ex.drain(Instant::now() + Duration::from_secs(5)).await;
    assert_eq!(s.record.spans(), 0);
}
