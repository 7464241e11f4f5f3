//! Shared fixtures for the receiver tests: a scriptable TraceSink, servers on 127.0.0.1:0,
//! sample requests and compression helpers (including a gzip bomb).
#![allow(dead_code)]

use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use parking_lot::Mutex;
use prost::Message;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tollgate::otlp::collector::trace::v1::ExportTraceServiceRequest;
use tollgate::otlp::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use tollgate::otlp::resource::v1::Resource;
use tollgate::otlp::trace::v1::{ResourceSpans, ScopeSpans, Span};
use tollgate::pipeline::{Accepted, Refused, TraceSink, Transport};
use tollgate::receiver::{GrpcReceiver, HttpReceiver, OtlpReceiverConfig, ReceiverError};

/// What the sink answers.
#[derive(Debug, Clone)]
pub enum Mode {
    /// Accept anything prost can decode; refuse the rest as Invalid.
    Accept,
    /// Accept with this many spans rejected.
    Partial(i64, String),
    /// Refuse as full.
    Full(Duration),
    /// Refuse as shutting down.
    ShuttingDown,
    /// Wait for a permit, then accept.
    Block(Arc<tokio::sync::Semaphore>),
}

/// A TraceSink that records every submission.
pub struct TestSink {
    mode: Mutex<Mode>,
    tx: mpsc::UnboundedSender<(Bytes, Transport)>,
}

impl TestSink {
    pub fn new() -> (Arc<Self>, mpsc::UnboundedReceiver<(Bytes, Transport)>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (
            Arc::new(Self {
                mode: Mutex::new(Mode::Accept),
                tx,
            }),
            rx,
        )
    }

    pub fn set(&self, mode: Mode) {
        *self.mode.lock() = mode;
    }
}

#[async_trait::async_trait]
impl TraceSink for TestSink {
    async fn submit(&self, body: Bytes, transport: Transport) -> Result<Accepted, Refused> {
        let mode = self.mode.lock().clone();
        // The receiving side may be gone at the end of a test.
        self.tx.send((body.clone(), transport)).ok();
        match mode {
            Mode::Accept => ExportTraceServiceRequest::decode(body)
                .map(|_| Accepted::default())
                .map_err(|e| Refused::Invalid(format!("invalid protobuf: {e}"))),
            Mode::Partial(rejected_spans, error_message) => Ok(Accepted {
                rejected_spans,
                error_message,
            }),
            Mode::Full(retry_after) => Err(Refused::Full { retry_after }),
            Mode::ShuttingDown => Err(Refused::ShuttingDown),
            Mode::Block(gate) => {
                let _permit = gate.acquire().await.expect("gate open");
                Ok(Accepted::default())
            }
        }
    }
}

/// A running receiver.
pub struct Server {
    pub addr: SocketAddr,
    pub sink: Arc<TestSink>,
    pub rx: mpsc::UnboundedReceiver<(Bytes, Transport)>,
    pub shutdown: CancellationToken,
    pub task: JoinHandle<Result<(), ReceiverError>>,
}

impl Server {
    /// The next submission the sink saw.
    pub async fn next(&mut self) -> (Bytes, Transport) {
        tokio::time::timeout(Duration::from_secs(30), self.rx.recv())
            .await
            .expect("a submission within 30 s")
            .expect("sink alive")
    }

    /// True when the sink has seen nothing (more).
    pub fn nothing_submitted(&mut self) -> bool {
        self.rx.try_recv().is_err()
    }

    /// Cancels and waits for the receiver to return.
    pub async fn stop(self) -> Result<(), ReceiverError> {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(30), self.task)
            .await
            .expect("receiver stops within 30 s")
            .expect("receiver task did not panic")
    }
}

pub async fn start_grpc(cfg: OtlpReceiverConfig) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (sink, rx) = TestSink::new();
    let shutdown = CancellationToken::new();
    let receiver = GrpcReceiver::new(&cfg, sink.clone());
    let task = tokio::spawn(receiver.serve(listener, shutdown.clone()));
    Server {
        addr,
        sink,
        rx,
        shutdown,
        task,
    }
}

pub async fn start_http(cfg: OtlpReceiverConfig) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (sink, rx) = TestSink::new();
    let shutdown = CancellationToken::new();
    let receiver = HttpReceiver::new(&cfg, sink.clone());
    let task = tokio::spawn(receiver.serve(listener, shutdown.clone()));
    Server {
        addr,
        sink,
        rx,
        shutdown,
        task,
    }
}

fn kv(key: &str, value: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

/// A request with `n` LLM-ish spans; `pad` bytes of attribute text per span.
pub fn sample_request(n: usize, pad: usize) -> ExportTraceServiceRequest {
    let spans = (0..n)
        .map(|i| Span {
            trace_id: (0..16u8).map(|b| b.wrapping_add(1)).collect(),
            span_id: vec![1, 2, 3, 4, 5, 6, 7, i as u8 + 1],
            name: format!("chat gpt-4o #{i}"),
            kind: 3,
            start_time_unix_nano: 1_700_000_000_000_000_000,
            end_time_unix_nano: 1_700_000_000_500_000_000,
            attributes: vec![
                kv(
                    "gen_ai.request.model",
                    any_value::Value::StringValue("gpt-4o".into()),
                ),
                kv(
                    "gen_ai.usage.input_tokens",
                    any_value::Value::IntValue(1200),
                ),
                kv("pad", any_value::Value::StringValue("x".repeat(pad))),
            ],
            ..Default::default()
        })
        .collect();
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![kv(
                    "service.name",
                    any_value::Value::StringValue("agent".into()),
                )],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: "test".into(),
                    ..Default::default()
                }),
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

pub fn zstd(data: &[u8]) -> Vec<u8> {
    zstd::stream::encode_all(data, 1).unwrap()
}

/// A valid single-member gzip stream of `chunks * chunk_mib` MiB of zeros, built without
/// compressing all of it: one sync-flushed deflate chunk of zeros is repeated (its back
/// references only ever see zeros), then an empty final block and the exact CRC-32 and size.
pub fn gzip_bomb(chunk_mib: usize, chunks: usize) -> Vec<u8> {
    let zeros = vec![0u8; chunk_mib << 20];
    let mut enc = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
    enc.write_all(&zeros).unwrap();
    enc.flush().unwrap();
    let chunk = enc.get_ref().clone();
    let mut chunk_crc = flate2::Crc::new();
    chunk_crc.update(&zeros);
    let mut crc = flate2::Crc::new();
    let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
    for _ in 0..chunks {
        out.extend_from_slice(&chunk);
        crc.combine(&chunk_crc);
    }
    out.extend_from_slice(&[0x01, 0x00, 0x00, 0xff, 0xff]);
    out.extend_from_slice(&crc.sum().to_le_bytes());
    let size = ((chunks as u64 * chunk_mib as u64) << 20) as u32;
    out.extend_from_slice(&size.to_le_bytes());
    out
}

/// The current value of `tollgate_receiver_requests_total{receiver,outcome}`.
pub fn requests(receiver: &str, outcome: &str) -> u64 {
    tollgate::receiver::metrics::METRICS
        .requests
        .with_label_values(&[receiver, outcome])
        .get()
}

/// The current value of `tollgate_receiver_request_bytes_total{receiver}`.
pub fn request_bytes(receiver: &str) -> u64 {
    tollgate::receiver::metrics::METRICS
        .request_bytes
        .with_label_values(&[receiver])
        .get()
}

pub fn config() -> OtlpReceiverConfig {
    OtlpReceiverConfig::default()
}

/// A request body for the raw clients: sized, or chunked (no Content-Length) in `parts` pieces.
pub type TestBody = http_body_util::combinators::BoxBody<Bytes, std::io::Error>;

pub fn sized(data: impl Into<Bytes>) -> TestBody {
    use http_body_util::BodyExt;
    http_body_util::Full::new(data.into())
        .map_err(|never| match never {})
        .boxed()
}

pub fn chunked(data: impl Into<Bytes>, parts: usize) -> TestBody {
    use http_body_util::BodyExt;
    let data: Bytes = data.into();
    let step = data.len().div_ceil(parts.max(1)).max(1);
    let frames: Vec<Result<http_body::Frame<Bytes>, std::io::Error>> = (0..data.len())
        .step_by(step)
        .map(|at| {
            Ok(http_body::Frame::data(
                data.slice(at..(at + step).min(data.len())),
            ))
        })
        .collect();
    http_body_util::StreamBody::new(futures::stream::iter(frames)).boxed()
}

/// An HTTP client (HTTP/1.1, or h2c with prior knowledge).
pub fn http_client(
    h2c: bool,
) -> hyper_util::client::legacy::Client<hyper_util::client::legacy::connect::HttpConnector, TestBody>
{
    hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .http2_only(h2c)
        .build_http()
}

/// An answer, read fully.
pub struct Answer {
    pub status: http::StatusCode,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

/// Sends one request (HTTP/1.1 unless `h2c`) and reads the answer.
pub async fn send(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: TestBody,
    h2c: bool,
) -> Answer {
    use http_body_util::BodyExt;
    let mut req = http::Request::builder()
        .method(method)
        .uri(format!("http://{addr}{path}"));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req.body(body).unwrap();
    let resp = tokio::time::timeout(Duration::from_secs(60), http_client(h2c).request(req))
        .await
        .expect("an answer within 60 s")
        .expect("request sent");
    let (parts, body) = resp.into_parts();
    let body = body.collect().await.expect("body read").to_bytes();
    Answer {
        status: parts.status,
        headers: parts.headers,
        body,
    }
}

/// Sends one raw gRPC Export call over h2c: `frame` is the whole length-prefixed message,
/// `encoding` the `grpc-encoding` header. Returns grpc-status and grpc-message.
pub async fn raw_grpc(addr: SocketAddr, frame: Bytes, encoding: Option<&str>) -> (i32, String) {
    raw_grpc_call(
        addr,
        "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
        frame,
        encoding,
    )
    .await
}

/// A gRPC call of `path` with an empty message; returns grpc-status and grpc-message.
pub async fn raw_grpc_path(addr: SocketAddr, path: &str) -> (i32, String) {
    raw_grpc_call(addr, path, grpc_frame(false, b""), None).await
}

async fn raw_grpc_call(
    addr: SocketAddr,
    path: &str,
    frame: Bytes,
    encoding: Option<&str>,
) -> (i32, String) {
    let mut req = http::Request::builder()
        .method("POST")
        .uri(format!("http://{addr}{path}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers");
    if let Some(e) = encoding {
        req = req.header("grpc-encoding", e);
    }
    let req = req.body(sized(frame)).unwrap();
    let resp = tokio::time::timeout(Duration::from_secs(60), http_client(true).request(req))
        .await
        .expect("an answer within 60 s")
        .expect("request sent");
    let (parts, mut body) = resp.into_parts();
    let mut headers = parts.headers;
    use http_body_util::BodyExt;
    while let Some(frame) = body.frame().await {
        if let Ok(trailers) = frame.expect("frame").into_trailers() {
            headers.extend(trailers);
        }
    }
    let code = headers
        .get("grpc-status")
        .expect("grpc-status")
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let message = headers
        .get("grpc-message")
        .map(|m| percent_decode(m.to_str().unwrap()))
        .unwrap_or_default();
    (code, message)
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A gRPC length-prefixed message.
pub fn grpc_frame(compressed: bool, message: &[u8]) -> Bytes {
    let mut out = vec![u8::from(compressed)];
    out.extend_from_slice(&(message.len() as u32).to_be_bytes());
    out.extend_from_slice(message);
    Bytes::from(out)
}

#[test]
fn the_bomb_is_valid_gzip_of_zeros() {
    use std::io::Read;
    let bomb = gzip_bomb(1, 3);
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(&bomb[..])
        .read_to_end(&mut out)
        .unwrap();
    assert_eq!(out.len(), 3 << 20);
    assert!(out.iter().all(|b| *b == 0));
}
