//! The stand-ins really enforce the services' wire rules (so a passing delivery test means
//! something): requests the real service refuses are refused here too.

mod support;

use prost::Message;
use support::standins::{self, Rules};

fn client() -> reqwest::Client {
    let _installed = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

fn body() -> Vec<u8> {
    support::request("svc", "s", 2, 1).encode_to_vec()
}

fn gzip(b: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(b).unwrap();
    e.finish().unwrap()
}

#[tokio::test]
async fn honeycomb_refuses_a_content_type_with_charset() {
    let s = standins::http(Rules::Honeycomb {
        api_key: "k".into(),
        dataset: None,
    })
    .await;
    let url = format!("{}/v1/traces", s.url());
    let send = |ct: &'static str| {
        client()
            .post(&url)
            .header("x-honeycomb-team", "k")
            .header("content-type", ct)
            .body(body())
            .send()
    };
    assert_eq!(
        send("application/x-protobuf; charset=utf-8")
            .await
            .unwrap()
            .status(),
        415
    );
    assert_eq!(send("application/x-protobuf").await.unwrap().status(), 200);
    assert_eq!(send("application/protobuf").await.unwrap().status(), 200);
    let no_key = client()
        .post(&url)
        .header("content-type", "application/x-protobuf")
        .body(body())
        .send()
        .await
        .unwrap();
    assert_eq!(no_key.status(), 401);
}

#[tokio::test]
async fn langfuse_refuses_what_langfuse_refuses() {
    let s = standins::http(Rules::Langfuse {
        public_key: "pk".into(),
        secret_key: "sk".into(),
    })
    .await;
    let url = format!("{}/api/public/otel/v1/traces", s.url());
    let base = || {
        client()
            .post(&url)
            .basic_auth("pk", Some("sk"))
            .header("content-type", "application/x-protobuf")
    };
    let ok = base()
        .header("x-langfuse-ingestion-version", "4")
        .body(body())
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    assert!(
        ok.text().await.unwrap().starts_with('{'),
        "a JSON body, not OTLP"
    );
    let no_version = base().body(body()).send().await.unwrap();
    assert_eq!(no_version.status(), 400);
    let zstd = base()
        .header("x-langfuse-ingestion-version", "4")
        .header("content-encoding", "zstd")
        .body(zstd::bulk::compress(&body(), 1).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(zstd.status(), 400);
    let gz = base()
        .header("x-langfuse-ingestion-version", "4")
        .header("content-encoding", "gzip")
        .body(gzip(&body()))
        .send()
        .await
        .unwrap();
    assert_eq!(gz.status(), 200);
    let wrong = client()
        .post(&url)
        .basic_auth("pk", Some("nope"))
        .header("x-langfuse-ingestion-version", "4")
        .header("content-type", "application/x-protobuf")
        .body(body())
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let mut bad_ids = support::request("svc", "s", 1, 1);
    bad_ids.resource_spans[0].scope_spans[0].spans[0].span_id = vec![0; 8];
    let r = base()
        .header("x-langfuse-ingestion-version", "4")
        .body(bad_ids.encode_to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
}

#[tokio::test]
async fn tempo_http_needs_one_tenant_and_caps_bodies_at_20_mib() {
    let s = standins::http(Rules::Tempo {
        tenant: Some("t1".into()),
    })
    .await;
    let url = format!("{}/v1/traces", s.url());
    let post = || {
        client()
            .post(&url)
            .header("content-type", "application/x-protobuf")
    };
    assert_eq!(post().body(body()).send().await.unwrap().status(), 401);
    let two = post()
        .header("x-scope-orgid", "t1")
        .header("x-scope-orgid", "t2")
        .body(body());
    assert_eq!(two.send().await.unwrap().status(), 401);
    assert_eq!(
        post()
            .header("x-scope-orgid", "t1")
            .body(body())
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let huge = post()
        .header("x-scope-orgid", "t1")
        .body(vec![0u8; 21 << 20]);
    assert_eq!(huge.send().await.unwrap().status(), 413);
}

#[tokio::test]
async fn tempo_grpc_refuses_messages_over_4_mib() {
    use tollgate::otlp::collector::trace::v1::trace_service_client::TraceServiceClient;
    let s = standins::grpc(Rules::Tempo { tenant: None }).await;
    let mut c = TraceServiceClient::connect(s.url())
        .await
        .unwrap()
        .max_encoding_message_size(64 << 20);
    let big = support::request("svc", "b", 5000, 1000);
    let err = c.export(big).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::ResourceExhausted);
    assert!(
        tollgate::export::otlp_grpc::retry_info_delay(err.details()).is_none(),
        "not retryable"
    );
    let ok = c.export(support::request("svc", "s", 2, 1)).await;
    assert!(ok.is_ok());
}
