//! OTLP/gRPC receiver acceptance tests: a real tonic client against the receiver on 127.0.0.1:0.

mod receiver_support;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use prost::Message;
use receiver_support::*;
use tollgate::config::Secret;
use tollgate::grpc_status::{RetryInfo, RpcStatus, RETRY_INFO_TYPE_URL};
use tollgate::otlp::collector::trace::v1::trace_service_client::TraceServiceClient;
use tollgate::otlp::collector::trace::v1::ExportTraceServiceRequest;
use tollgate::pipeline::Transport;
use tonic::codec::CompressionEncoding;
use tonic::transport::Channel;
use tonic::Code;

async fn client(server: &Server) -> TraceServiceClient<Channel> {
    TraceServiceClient::connect(format!("http://{}", server.addr))
        .await
        .expect("connect")
        .max_encoding_message_size(usize::MAX)
}

async fn export(
    client: &mut TraceServiceClient<Channel>,
    req: ExportTraceServiceRequest,
) -> Result<tollgate::otlp::collector::trace::v1::ExportTraceServiceResponse, tonic::Status> {
    client.export(req).await.map(tonic::Response::into_inner)
}

#[tokio::test]
async fn delivers_the_exact_bytes_plain_gzip_and_zstd() {
    let mut server = start_grpc(config()).await;
    for compression in [
        None,
        Some(CompressionEncoding::Gzip),
        Some(CompressionEncoding::Zstd),
    ] {
        let mut c = client(&server).await;
        if let Some(enc) = compression {
            c = c.send_compressed(enc);
        }
        let req = sample_request(20, 100);
        let resp = export(&mut c, req.clone()).await.expect("accepted");
        assert_eq!(resp.partial_success, None);
        let (body, transport) = server.next().await;
        assert_eq!(transport, Transport::Grpc);
        assert_eq!(body, Bytes::from(req.encode_to_vec()), "{compression:?}");
    }
    server.stop().await.unwrap();
}

#[tokio::test]
async fn garbage_is_passed_on_and_refused_as_invalid_argument() {
    let mut server = start_grpc(config()).await;
    let garbage = b"\xff\xff\xff\xff not a protobuf";
    let (code, message) = raw_grpc(server.addr, grpc_frame(false, garbage), None).await;
    assert_eq!(code, Code::InvalidArgument as i32);
    assert!(message.contains("invalid protobuf"), "{message}");
    let (body, _) = server.next().await;
    assert_eq!(&body[..], garbage);

    // Corrupt gzip never reaches the sink and is INVALID_ARGUMENT too (tonic says INTERNAL).
    let (code, message) = raw_grpc(
        server.addr,
        grpc_frame(true, b"not gzip at all"),
        Some("gzip"),
    )
    .await;
    assert_eq!(code, Code::InvalidArgument as i32, "{message}");
    assert!(server.nothing_submitted());

    // Still serving.
    export(&mut client(&server).await, sample_request(1, 0))
        .await
        .unwrap();
    server.stop().await.unwrap();
}

#[tokio::test]
async fn an_oversized_message_is_resource_exhausted_without_retry_info() {
    let mut cfg = config();
    cfg.max_recv_msg_size_mib = 1;
    let mut server = start_grpc(cfg).await;
    let mut c = client(&server).await;
    let status = export(&mut c, sample_request(2, 600 * 1024))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(status.details().is_empty(), "no RetryInfo");
    assert!(server.nothing_submitted());
    // Below the limit: fine, on a fresh client.
    export(&mut client(&server).await, sample_request(2, 1000))
        .await
        .unwrap();
    server.next().await;
    server.stop().await.unwrap();
}

#[tokio::test]
async fn the_decompressed_size_is_capped_separately() {
    let mut cfg = config();
    cfg.max_recv_msg_size_mib = 4;
    cfg.max_decompressed_mib = 1;
    let mut server = start_grpc(cfg).await;
    // 2 MiB of repetitive text: tiny on the wire, over the 1 MiB decompressed cap.
    let mut c = client(&server)
        .await
        .send_compressed(CompressionEncoding::Gzip);
    let status = export(&mut c, sample_request(1, 2 << 20))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(status.details().is_empty());
    assert!(server.nothing_submitted());
    // 3 MiB uncompressed is over the decompressed cap as well (one limit for the request size).
    let mut c = client(&server).await;
    let status = export(&mut c, sample_request(1, 3 << 20))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_gzip_bomb_is_refused() {
    let mut server = start_grpc(config()).await;
    // 1 GiB of zeros in about 1 MiB of gzip; the default cap is 64 MiB.
    let bomb = gzip_bomb(8, 128);
    assert!(bomb.len() < 2 << 20);
    let (code, message) = raw_grpc(server.addr, grpc_frame(true, &bomb), Some("gzip")).await;
    assert_eq!(code, Code::ResourceExhausted as i32, "{message}");
    assert!(server.nothing_submitted());
    export(&mut client(&server).await, sample_request(1, 0))
        .await
        .unwrap();
    server.stop().await.unwrap();
}

#[tokio::test]
async fn bearer_token_is_required_when_configured() {
    let mut cfg = config();
    cfg.auth.bearer_tokens = vec![Secret::new("s3cret-token")];
    let mut server = start_grpc(cfg).await;
    let mut c = client(&server).await;

    let status = export(&mut c, sample_request(1, 0)).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert!(!status.message().contains("s3cret"));

    let mut req = tonic::Request::new(sample_request(1, 0));
    req.metadata_mut()
        .insert("authorization", "Bearer wrong".parse().unwrap());
    assert_eq!(
        c.export(req).await.unwrap_err().code(),
        Code::Unauthenticated
    );
    assert!(server.nothing_submitted());

    let mut req = tonic::Request::new(sample_request(1, 0));
    req.metadata_mut()
        .insert("authorization", "Bearer s3cret-token".parse().unwrap());
    c.export(req).await.expect("accepted with the token");
    server.next().await;
    server.stop().await.unwrap();
}

#[tokio::test]
async fn partial_success_is_reported() {
    let server = start_grpc(config()).await;
    server
        .sink
        .set(Mode::Partial(3, "3 spans had invalid ids".into()));
    let resp = export(&mut client(&server).await, sample_request(5, 0))
        .await
        .unwrap();
    let partial = resp.partial_success.expect("partial_success");
    assert_eq!(partial.rejected_spans, 3);
    assert_eq!(partial.error_message, "3 spans had invalid ids");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_full_pipeline_is_unavailable_with_retry_info() {
    let server = start_grpc(config()).await;
    let mut c = client(&server).await;
    server.sink.set(Mode::Full(Duration::from_secs(3)));
    let status = export(&mut c, sample_request(1, 0)).await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);
    let details = RpcStatus::decode(status.details()).expect("google.rpc.Status details");
    assert_eq!(details.code, Code::Unavailable as i32);
    let retry = details
        .details
        .iter()
        .find(|d| d.type_url == RETRY_INFO_TYPE_URL)
        .expect("RetryInfo");
    let info = RetryInfo::decode(retry.value.as_slice()).unwrap();
    assert_eq!(info.retry_delay.unwrap().seconds, 3);

    server.sink.set(Mode::ShuttingDown);
    let status = export(&mut c, sample_request(1, 0)).await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);

    server.sink.set(Mode::Accept);
    export(&mut c, sample_request(1, 0)).await.unwrap();
    server.stop().await.unwrap();
}

#[tokio::test]
async fn cancellation_drains_in_flight_requests() {
    let mut server = start_grpc(config()).await;
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    server.sink.set(Mode::Block(gate.clone()));
    let mut c = client(&server).await;
    let in_flight = tokio::spawn(async move { export(&mut c, sample_request(1, 0)).await });
    server.next().await; // the request is inside the sink
    server.shutdown.cancel();
    tokio::time::sleep(Duration::from_millis(100)).await;
    gate.add_permits(1);
    let resp = tokio::time::timeout(Duration::from_secs(30), in_flight)
        .await
        .unwrap()
        .unwrap();
    assert!(resp.is_ok(), "{resp:?}");
    let addr = server.addr;
    server.stop().await.unwrap();
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "no longer accepting"
    );
}

#[tokio::test]
async fn unknown_methods_are_unimplemented() {
    let server = start_grpc(config()).await;
    let mut c = tollgate::otlp::collector::trace::v1::trace_service_client::TraceServiceClient::new(
        Channel::from_shared(format!("http://{}", server.addr))
            .unwrap()
            .connect()
            .await
            .unwrap(),
    );
    // The real method works; a made-up path is UNIMPLEMENTED.
    c.export(sample_request(1, 0)).await.unwrap();
    let mut raw = tonic::client::Grpc::new(
        Channel::from_shared(format!("http://{}", server.addr))
            .unwrap()
            .connect()
            .await
            .unwrap(),
    );
    raw.ready().await.unwrap();
    let codec =
        tonic_prost::ProstCodec::<ExportTraceServiceRequest, ExportTraceServiceRequest>::default();
    let status = raw
        .unary(
            tonic::Request::new(sample_request(1, 0)),
            "/opentelemetry.proto.collector.logs.v1.LogsService/Export"
                .parse()
                .unwrap(),
            codec,
        )
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unimplemented);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn an_unsupported_grpc_encoding_is_refused() {
    let mut server = start_grpc(config()).await;
    let before = requests("otlp_grpc", "unsupported_media_type");
    let pb = sample_request(1, 0).encode_to_vec();
    let (code, message) = raw_grpc(server.addr, grpc_frame(true, &pb), Some("snappy")).await;
    assert_eq!(code, Code::Unimplemented as i32, "{message}");
    assert!(requests("otlp_grpc", "unsupported_media_type") > before);
    assert!(server.nothing_submitted());
    // Uncompressed raw frames are fine.
    let (code, _) = raw_grpc(server.addr, grpc_frame(false, &pb), None).await;
    assert_eq!(code, 0);
    assert_eq!(server.next().await.0, Bytes::from(pb));
    server.stop().await.unwrap();
}
