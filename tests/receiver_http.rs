//! OTLP/HTTP receiver acceptance tests: real HTTP/1.1 and h2c clients against 127.0.0.1:0.

mod receiver_support;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use prost::Message;
use receiver_support::*;
use tollgate::config::Secret;
use tollgate::grpc_status::RpcStatus;
use tollgate::otlp::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use tollgate::pipeline::Transport;

const PB: (&str, &str) = ("content-type", "application/x-protobuf");
const JSON: (&str, &str) = ("content-type", "application/json; charset=utf-8");

/// A named request variant: headers and body.
type Case = (&'static str, Vec<(&'static str, &'static str)>, TestBody);

async fn post(server: &Server, headers: &[(&str, &str)], body: TestBody) -> Answer {
    send(server.addr, "POST", "/v1/traces", headers, body, false).await
}

fn json_of(req: &ExportTraceServiceRequest) -> Vec<u8> {
    tollgate::wire::json::protobuf_to_json(&req.encode_to_vec()).unwrap()
}

fn status_pb(answer: &Answer) -> RpcStatus {
    assert_eq!(answer.headers["content-type"], "application/x-protobuf");
    RpcStatus::decode(answer.body.clone()).expect("google.rpc.Status body")
}

fn status_json(answer: &Answer) -> serde_json::Value {
    assert_eq!(answer.headers["content-type"], "application/json");
    serde_json::from_slice(&answer.body).expect("JSON google.rpc.Status body")
}

/// One good request, to show the receiver still serves.
async fn still_serving(server: &mut Server) {
    let req = sample_request(1, 0);
    let answer = post(server, &[PB], sized(req.encode_to_vec())).await;
    assert_eq!(answer.status, 200);
    assert_eq!(server.next().await.0, Bytes::from(req.encode_to_vec()));
}

#[tokio::test]
async fn protobuf_is_delivered_plain_gzip_zstd_and_chunked() {
    let mut server = start_http(config()).await;
    let req = sample_request(30, 200);
    let pb = req.encode_to_vec();
    let cases: Vec<Case> = vec![
        ("plain", vec![PB], sized(pb.clone())),
        (
            "application/protobuf",
            vec![("content-type", "application/protobuf")],
            sized(pb.clone()),
        ),
        (
            "gzip",
            vec![PB, ("content-encoding", "gzip")],
            sized(gzip(&pb)),
        ),
        (
            "zstd",
            vec![PB, ("content-encoding", "zstd")],
            sized(zstd(&pb)),
        ),
        (
            "identity",
            vec![PB, ("content-encoding", "identity")],
            sized(pb.clone()),
        ),
        ("chunked", vec![PB], chunked(pb.clone(), 7)),
        (
            "chunked gzip",
            vec![PB, ("content-encoding", "gzip")],
            chunked(gzip(&pb), 5),
        ),
    ];
    for (name, headers, body) in cases {
        let answer = post(&server, &headers, body).await;
        assert_eq!(answer.status, 200, "{name}");
        assert_eq!(
            answer.headers["content-type"], "application/x-protobuf",
            "{name}"
        );
        let resp = ExportTraceServiceResponse::decode(answer.body).unwrap();
        assert_eq!(resp.partial_success, None, "{name}");
        let (body, transport) = server.next().await;
        assert_eq!(transport, Transport::HttpProtobuf, "{name}");
        assert_eq!(body, Bytes::from(pb.clone()), "{name}");
    }
    server.stop().await.unwrap();
}

#[tokio::test]
async fn json_arrives_as_the_prost_encoding_of_the_same_request() {
    let mut server = start_http(config()).await;
    let req = sample_request(10, 50);
    let pb = Bytes::from(req.encode_to_vec());
    let json = json_of(&req);
    let cases: Vec<Case> = vec![
        ("plain", vec![JSON], sized(json.clone())),
        (
            "no charset",
            vec![("content-type", "application/json")],
            sized(json.clone()),
        ),
        (
            "gzip",
            vec![JSON, ("content-encoding", "gzip")],
            sized(gzip(&json)),
        ),
        (
            "zstd",
            vec![JSON, ("content-encoding", "zstd")],
            sized(zstd(&json)),
        ),
        ("chunked", vec![JSON], chunked(json.clone(), 9)),
    ];
    for (name, headers, body) in cases {
        let answer = post(&server, &headers, body).await;
        assert_eq!(answer.status, 200, "{name}");
        assert_eq!(answer.headers["content-type"], "application/json", "{name}");
        let resp: ExportTraceServiceResponse = serde_json::from_slice(&answer.body).unwrap();
        assert_eq!(resp.partial_success, None, "{name}");
        let (body, transport) = server.next().await;
        assert_eq!(transport, Transport::HttpJson, "{name}");
        assert_eq!(body, pb, "{name}");
    }
    server.stop().await.unwrap();
}

#[tokio::test]
async fn h2c_is_served() {
    let mut server = start_http(config()).await;
    let req = sample_request(3, 0);
    let answer = send(
        server.addr,
        "POST",
        "/v1/traces",
        &[PB],
        sized(req.encode_to_vec()),
        true,
    )
    .await;
    assert_eq!(answer.status, 200);
    assert_eq!(server.next().await.0, Bytes::from(req.encode_to_vec()));
    server.stop().await.unwrap();
}

#[tokio::test]
async fn garbage_protobuf_is_400_with_the_sinks_message() {
    let mut server = start_http(config()).await;
    let garbage = b"\xff\xff\xff\xff definitely not protobuf";
    let answer = post(&server, &[PB], sized(&garbage[..])).await;
    assert_eq!(answer.status, 400);
    let status = status_pb(&answer);
    assert_eq!(status.code, tonic::Code::InvalidArgument as i32);
    assert!(
        status.message.contains("invalid protobuf"),
        "{}",
        status.message
    );
    assert_eq!(&server.next().await.0[..], garbage);
    still_serving(&mut server).await;
    server.stop().await.unwrap();
}

#[tokio::test]
async fn invalid_json_is_400_with_a_precise_message() {
    let mut server = start_http(config()).await;
    let answer = post(&server, &[JSON], sized(&b"{\"resourceSpans\": [{]}"[..])).await;
    assert_eq!(answer.status, 400);
    let status = status_json(&answer);
    assert_eq!(status["code"], tonic::Code::InvalidArgument as i32);
    assert!(
        status["message"].as_str().unwrap().contains("line 1"),
        "{status}"
    );
    // A field of the wrong type names its path.
    let bad = br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"startTimeUnixNano":"soon"}]}]}]}"#;
    let answer = post(&server, &[JSON], sized(&bad[..])).await;
    assert_eq!(answer.status, 400);
    let message = status_json(&answer)["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(message.contains("startTimeUnixNano"), "{message}");
    // Non-hex ids are invalid JSON input.
    let bad = br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"not-hex"}]}]}]}"#;
    assert_eq!(post(&server, &[JSON], sized(&bad[..])).await.status, 400);
    assert!(server.nothing_submitted());
    still_serving(&mut server).await;
    server.stop().await.unwrap();
}

#[tokio::test]
async fn wrong_length_json_ids_reach_the_pipeline() {
    let mut server = start_http(config()).await;
    let body = br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"ABC","spanId":"00112233"}]}]}]}"#;
    let answer = post(&server, &[JSON], sized(&body[..])).await;
    assert_eq!(answer.status, 200);
    let req = ExportTraceServiceRequest::decode(server.next().await.0).unwrap();
    let span = &req.resource_spans[0].scope_spans[0].spans[0];
    assert_eq!(span.trace_id, b"ABC");
    assert_eq!(span.span_id, vec![0x00, 0x11, 0x22, 0x33]);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn unsupported_content_type_or_encoding_is_415() {
    let mut server = start_http(config()).await;
    let pb = sample_request(1, 0).encode_to_vec();
    for headers in [
        vec![("content-type", "text/plain")],
        vec![],
        vec![("content-type", "application/grpc")],
    ] {
        let answer = post(&server, &headers, sized(pb.clone())).await;
        assert_eq!(answer.status, 415, "{headers:?}");
        assert!(status_pb(&answer).message.contains("content type"));
    }
    let answer = post(
        &server,
        &[JSON, ("content-encoding", "br")],
        sized(pb.clone()),
    )
    .await;
    assert_eq!(answer.status, 415);
    assert!(status_json(&answer)["message"]
        .as_str()
        .unwrap()
        .contains("br"));
    assert!(server.nothing_submitted());
    still_serving(&mut server).await;
    server.stop().await.unwrap();
}

#[tokio::test]
async fn oversized_bodies_are_413() {
    let mut cfg = config();
    cfg.max_request_body_mib = 1;
    cfg.max_decompressed_mib = 2;
    let mut server = start_http(cfg).await;
    let big = sample_request(1, (1 << 20) + 10).encode_to_vec();
    // With Content-Length: refused before reading.
    let answer = post(&server, &[PB], sized(big.clone())).await;
    assert_eq!(answer.status, 413);
    assert_eq!(
        status_pb(&answer).code,
        tonic::Code::ResourceExhausted as i32
    );
    // Chunked: refused once the limit is passed.
    let answer = post(&server, &[PB], chunked(big.clone(), 16)).await;
    assert_eq!(answer.status, 413);
    // Small on the wire, over the decompressed cap.
    let inflated = sample_request(1, 3 << 20).encode_to_vec();
    let answer = post(
        &server,
        &[PB, ("content-encoding", "gzip")],
        sized(gzip(&inflated)),
    )
    .await;
    assert_eq!(answer.status, 413);
    let answer = post(
        &server,
        &[JSON, ("content-encoding", "zstd")],
        sized(zstd(&json_of(&sample_request(1, 3 << 20)))),
    )
    .await;
    assert_eq!(answer.status, 413);
    assert!(status_json(&answer)["message"]
        .as_str()
        .unwrap()
        .contains("decompressed"));
    assert!(server.nothing_submitted());
    still_serving(&mut server).await;
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_gzip_bomb_is_413() {
    let mut server = start_http(config()).await;
    // 1 GiB of zeros in ~1 MiB of gzip, against the default 64 MiB cap. Inflating stops at the
    // cap (see decompress.rs), so the answer is 413, not an out-of-memory.
    let bomb = gzip_bomb(8, 128);
    assert!(bomb.len() < 2 << 20);
    for body in [sized(bomb.clone()), chunked(bomb.clone(), 10)] {
        let answer = post(&server, &[PB, ("content-encoding", "gzip")], body).await;
        assert_eq!(answer.status, 413);
    }
    let corrupt = post(
        &server,
        &[PB, ("content-encoding", "gzip")],
        sized(&b"not gzip"[..]),
    )
    .await;
    assert_eq!(corrupt.status, 400);
    assert!(server.nothing_submitted());
    still_serving(&mut server).await;
    server.stop().await.unwrap();
}

#[tokio::test]
async fn other_methods_are_405_and_other_paths_404() {
    let mut server = start_http(config()).await;
    for method in ["GET", "PUT", "DELETE"] {
        let answer = send(
            server.addr,
            method,
            "/v1/traces",
            &[],
            sized(Bytes::new()),
            false,
        )
        .await;
        assert_eq!(answer.status, 405, "{method}");
        assert_eq!(answer.headers["allow"], "POST");
    }
    let pb = sample_request(1, 0).encode_to_vec();
    let answer = send(
        server.addr,
        "POST",
        "/v1/logs",
        &[PB],
        sized(pb.clone()),
        false,
    )
    .await;
    assert_eq!(answer.status, 404);
    let answer = send(server.addr, "GET", "/", &[], sized(Bytes::new()), false).await;
    assert_eq!(answer.status, 404);
    assert!(server.nothing_submitted());
    still_serving(&mut server).await;
    server.stop().await.unwrap();
}

#[tokio::test]
async fn bearer_token_is_required_when_configured() {
    let mut cfg = config();
    cfg.auth.bearer_tokens = vec![Secret::new("first"), Secret::new("s3cret-token")];
    let mut server = start_http(cfg).await;
    let pb = sample_request(1, 0).encode_to_vec();
    for auth in [
        None,
        Some("Bearer wrong"),
        Some("Basic s3cret-token"),
        Some("Bearer s3cret-toke"),
    ] {
        let mut headers = vec![PB];
        if let Some(a) = auth {
            headers.push(("authorization", a));
        }
        let answer = post(&server, &headers, sized(pb.clone())).await;
        assert_eq!(answer.status, 401, "{auth:?}");
        assert_eq!(answer.headers["www-authenticate"], "Bearer");
        let status = status_pb(&answer);
        assert_eq!(status.code, tonic::Code::Unauthenticated as i32);
        assert!(!status.message.contains("s3cret"));
    }
    assert!(server.nothing_submitted());
    let answer = post(
        &server,
        &[PB, ("authorization", "Bearer s3cret-token")],
        sized(pb.clone()),
    )
    .await;
    assert_eq!(answer.status, 200);
    server.next().await;
    let answer = post(
        &server,
        &[JSON, ("authorization", "Bearer first")],
        sized(json_of(&sample_request(1, 0))),
    )
    .await;
    assert_eq!(answer.status, 200);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn partial_success_in_both_encodings() {
    let server = start_http(config()).await;
    server
        .sink
        .set(Mode::Partial(2, "2 spans had invalid ids".into()));
    let req = sample_request(4, 0);
    let answer = post(&server, &[PB], sized(req.encode_to_vec())).await;
    assert_eq!(answer.status, 200);
    let partial = ExportTraceServiceResponse::decode(answer.body)
        .unwrap()
        .partial_success
        .unwrap();
    assert_eq!(
        (partial.rejected_spans, partial.error_message.as_str()),
        (2, "2 spans had invalid ids")
    );

    let answer = post(&server, &[JSON], sized(json_of(&req))).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.headers["content-type"], "application/json");
    // Readable by opentelemetry-proto's own serde (what Rust OTLP/JSON clients use).
    let resp: ExportTraceServiceResponse = serde_json::from_slice(&answer.body).unwrap();
    let partial = resp.partial_success.unwrap();
    assert_eq!(
        (partial.rejected_spans, partial.error_message.as_str()),
        (2, "2 spans had invalid ids")
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_full_pipeline_is_503_with_retry_after() {
    let mut server = start_http(config()).await;
    let pb = sample_request(1, 0).encode_to_vec();
    server.sink.set(Mode::Full(Duration::from_millis(2500)));
    let answer = post(&server, &[PB], sized(pb.clone())).await;
    assert_eq!(answer.status, 503);
    assert_eq!(answer.headers["retry-after"], "3");
    assert_eq!(status_pb(&answer).code, tonic::Code::Unavailable as i32);
    let answer = post(&server, &[JSON], sized(json_of(&sample_request(1, 0)))).await;
    assert_eq!(answer.status, 503);
    assert_eq!(
        status_json(&answer)["code"],
        tonic::Code::Unavailable as i32
    );

    server.sink.set(Mode::ShuttingDown);
    let answer = post(&server, &[PB], sized(pb.clone())).await;
    assert_eq!(answer.status, 503);
    while !server.nothing_submitted() {}
    server.sink.set(Mode::Accept);
    still_serving(&mut server).await;
    server.stop().await.unwrap();
}

#[tokio::test]
async fn cancellation_drains_in_flight_requests() {
    let mut server = start_http(config()).await;
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    server.sink.set(Mode::Block(gate.clone()));
    let addr = server.addr;
    let pb = sample_request(1, 0).encode_to_vec();
    let in_flight = tokio::spawn(async move {
        send(addr, "POST", "/v1/traces", &[PB], sized(pb), false)
            .await
            .status
    });
    server.next().await; // inside the sink
    server.shutdown.cancel();
    tokio::time::sleep(Duration::from_millis(100)).await;
    gate.add_permits(1);
    let status = tokio::time::timeout(Duration::from_secs(30), in_flight)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status, 200);
    server.stop().await.unwrap();
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "no longer accepting"
    );
}

/// Issue 18 point 1: an SDK left at its default protocol (gRPC) but pointed at the HTTP port
/// delivers: `content-type: application/grpc` goes to the gRPC service, with its limits.
#[tokio::test]
async fn grpc_on_the_http_port_is_served() {
    use tollgate::otlp::collector::trace::v1::trace_service_client::TraceServiceClient;
    let mut cfg = config();
    cfg.max_recv_msg_size_mib = 1;
    let mut server = start_http(cfg).await;
    let mut client = TraceServiceClient::connect(format!("http://{}", server.addr))
        .await
        .unwrap();
    let req = sample_request(3, 10);
    let answer = client.export(req.clone()).await.unwrap().into_inner();
    assert_eq!(answer.partial_success, None);
    assert_eq!(
        server.next().await,
        (Bytes::from(req.encode_to_vec()), Transport::Grpc)
    );
    let mut gz = client
        .clone()
        .send_compressed(tonic::codec::CompressionEncoding::Gzip);
    gz.export(req.clone()).await.unwrap();
    assert_eq!(server.next().await.0, Bytes::from(req.encode_to_vec()));
    // The gRPC limit applies: RESOURCE_EXHAUSTED, not delivered.
    let big = client.export(sample_request(1, 2 << 20)).await.unwrap_err();
    assert_eq!(big.code(), tonic::Code::ResourceExhausted);
    // A method tollgate does not serve is UNIMPLEMENTED with a hint.
    let (code, message) = raw_grpc_path(
        server.addr,
        "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
    )
    .await;
    assert_eq!(code, tonic::Code::Unimplemented as i32);
    assert!(message.contains("OTEL_METRICS_EXPORTER=none"), "{message}");
    assert!(server.nothing_submitted());
    // HTTP on the same port still works, over HTTP/1.1 and h2c.
    still_serving(&mut server).await;
    let pb = sample_request(1, 0).encode_to_vec();
    let h2 = send(server.addr, "POST", "/v1/traces", &[PB], sized(pb), true).await;
    assert_eq!(h2.status, 200);
    server.next().await;
    server.stop().await.unwrap();
}

/// Unknown paths answer with a hint that names what to change.
#[tokio::test]
async fn unknown_paths_answer_with_a_hint() {
    let server = start_http(config()).await;
    let answer = send(
        server.addr,
        "POST",
        "/v1/traces/v1/traces",
        &[JSON],
        sized(b"{}".to_vec()),
        false,
    )
    .await;
    assert_eq!(answer.status, 404);
    let message = status_json(&answer)["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        message.contains("OTEL_EXPORTER_OTLP_ENDPOINT is a base URL"),
        "{message}"
    );
    server.stop().await.unwrap();
}
