//! Receiver metrics: every outcome is counted once per request, on both receivers. The only
//! test in this binary, so the deltas are exact.

mod receiver_support;

use std::time::Duration;

use prost::Message;
use receiver_support::*;
use tollgate::config::Secret;
use tollgate::otlp::collector::trace::v1::trace_service_client::TraceServiceClient;
use tonic::codec::CompressionEncoding;

const PB: (&str, &str) = ("content-type", "application/x-protobuf");
const OUTCOMES: [&str; 10] = [
    "accepted",
    "partial",
    "invalid",
    "too_large",
    "unsupported_media_type",
    "method_not_allowed",
    "unknown_path",
    "unauthenticated",
    "pipeline_full",
    "shutting_down",
];

fn snapshot(receiver: &str) -> Vec<u64> {
    OUTCOMES.iter().map(|o| requests(receiver, o)).collect()
}

fn deltas(receiver: &str, before: &[u64]) -> Vec<(&'static str, u64)> {
    OUTCOMES
        .iter()
        .zip(before)
        .map(|(o, b)| (*o, requests(receiver, o) - b))
        .filter(|(_, d)| *d > 0)
        .collect()
}

#[tokio::test]
async fn every_outcome_is_counted() {
    // HTTP.
    let mut cfg = config();
    cfg.max_request_body_mib = 1;
    let mut server = start_http(cfg).await;
    let before = snapshot("otlp_http");
    let bytes_before = request_bytes("otlp_http");
    let pb = sample_request(2, 0).encode_to_vec();
    let post = |headers: Vec<(&'static str, &'static str)>, body: Vec<u8>| {
        let addr = server.addr;
        async move {
            send(addr, "POST", "/v1/traces", &headers, sized(body), false)
                .await
                .status
        }
    };
    assert_eq!(post(vec![PB], pb.clone()).await, 200);
    server.sink.set(Mode::Partial(1, "one bad span".into()));
    assert_eq!(post(vec![PB], pb.clone()).await, 200);
    server.sink.set(Mode::Accept);
    assert_eq!(post(vec![PB], b"\xff\xff".to_vec()).await, 400);
    assert_eq!(
        post(vec![("content-type", "application/json")], b"{".to_vec()).await,
        400
    );
    assert_eq!(post(vec![PB], vec![0; 2 << 20]).await, 413);
    assert_eq!(
        post(vec![("content-type", "text/plain")], pb.clone()).await,
        415
    );
    let get = send(
        server.addr,
        "GET",
        "/v1/traces",
        &[],
        sized(Vec::new()),
        false,
    )
    .await;
    assert_eq!(get.status, 405);
    let lost = send(
        server.addr,
        "POST",
        "/v1/metrics",
        &[PB],
        sized(Vec::new()),
        false,
    )
    .await;
    assert_eq!(lost.status, 404);
    // gRPC on the HTTP port is counted under the gRPC receiver.
    let grpc_before = snapshot("otlp_grpc");
    let (code, _) = raw_grpc(server.addr, grpc_frame(false, &pb), None).await;
    assert_eq!(code, 0);
    let (code, _) = raw_grpc_path(server.addr, "/foo.Bar/Baz").await;
    assert_eq!(code, tonic::Code::Unimplemented as i32);
    assert_eq!(
        deltas("otlp_grpc", &grpc_before),
        vec![("accepted", 1), ("unknown_path", 1)]
    );
    server.sink.set(Mode::Full(Duration::from_secs(1)));
    assert_eq!(post(vec![PB], pb.clone()).await, 503);
    server.sink.set(Mode::ShuttingDown);
    assert_eq!(post(vec![PB], pb.clone()).await, 503);
    assert_eq!(
        deltas("otlp_http", &before),
        vec![
            ("accepted", 1),
            ("partial", 1),
            ("invalid", 2),
            ("too_large", 1),
            ("unsupported_media_type", 1),
            ("method_not_allowed", 1),
            ("unknown_path", 1),
            ("pipeline_full", 1),
            ("shutting_down", 1),
        ]
    );
    // Bodies read: 2 good + partial + garbage(2) + json(1) + full + shutting down.
    let read = 4 * pb.len() as u64 + 2 + 1;
    assert_eq!(request_bytes("otlp_http") - bytes_before, read);
    while !server.nothing_submitted() {}
    server.stop().await.unwrap();

    let mut cfg = config();
    cfg.auth.bearer_tokens = vec![Secret::new("tok")];
    let server = start_http(cfg).await;
    let before = snapshot("otlp_http");
    let answer = send(
        server.addr,
        "POST",
        "/v1/traces",
        &[PB],
        sized(pb.clone()),
        false,
    )
    .await;
    assert_eq!(answer.status, 401);
    assert_eq!(deltas("otlp_http", &before), vec![("unauthenticated", 1)]);
    server.stop().await.unwrap();

    // gRPC.
    let mut cfg = config();
    cfg.max_recv_msg_size_mib = 1;
    cfg.auth.bearer_tokens = vec![Secret::new("tok")];
    let server = start_grpc(cfg).await;
    let before = snapshot("otlp_grpc");
    let bytes_before = request_bytes("otlp_grpc");
    let mut client = TraceServiceClient::connect(format!("http://{}", server.addr))
        .await
        .unwrap();
    let authed = |req| {
        let mut req = tonic::Request::new(req);
        req.metadata_mut()
            .insert("authorization", "Bearer tok".parse().unwrap());
        req
    };
    let small = sample_request(2, 0);
    client.export(authed(small.clone())).await.unwrap();
    server.sink.set(Mode::Partial(1, "x".into()));
    client.export(authed(small.clone())).await.unwrap();
    server.sink.set(Mode::Full(Duration::from_secs(1)));
    client.export(authed(small.clone())).await.unwrap_err();
    server.sink.set(Mode::ShuttingDown);
    client.export(authed(small.clone())).await.unwrap_err();
    client
        .export(tonic::Request::new(small.clone()))
        .await
        .unwrap_err();
    client
        .export(authed(sample_request(1, 2 << 20)))
        .await
        .unwrap_err();
    let mut gz = client.clone().send_compressed(CompressionEncoding::Gzip);
    server.sink.set(Mode::Accept);
    gz.export(authed(small.clone())).await.unwrap();
    assert_eq!(
        deltas("otlp_grpc", &before),
        vec![
            ("accepted", 2),
            ("partial", 1),
            ("too_large", 1),
            ("unauthenticated", 1),
            ("pipeline_full", 1),
            ("shutting_down", 1),
        ]
    );
    assert!(request_bytes("otlp_grpc") - bytes_before > 5 * small.encoded_len() as u64);
    server.stop().await.unwrap();

    // gRPC refusals tonic raises before the message reaches the sink, and sink refusals.
    let server = start_grpc(config()).await;
    let before = snapshot("otlp_grpc");
    let (code, _) = raw_grpc(server.addr, grpc_frame(false, b"\xff\xff"), None).await;
    assert_eq!(code, tonic::Code::InvalidArgument as i32);
    let (code, _) = raw_grpc(server.addr, grpc_frame(true, b"not gzip"), Some("gzip")).await;
    assert_eq!(code, tonic::Code::InvalidArgument as i32);
    let (code, _) = raw_grpc(server.addr, grpc_frame(true, b"x"), Some("snappy")).await;
    assert_eq!(code, tonic::Code::Unimplemented as i32);
    assert_eq!(
        deltas("otlp_grpc", &before),
        vec![("invalid", 2), ("unsupported_media_type", 1)]
    );
    server.stop().await.unwrap();
}
