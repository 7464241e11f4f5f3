//! The OTLP/gRPC receiver: `opentelemetry.proto.collector.trace.v1.TraceService/Export`.
//!
//! The unary call is read here, not by `tonic::server::Grpc`, so every byte is accounted for:
//! the message is never decoded into structs. Limits, outermost first:
//! 1. `content-type` must be `application/grpc` (HTTP 415 otherwise), `grpc-encoding` one of
//!    gzip, zstd, identity (UNIMPLEMENTED otherwise);
//! 2. the 5-byte message prefix is read before the body: a message longer than
//!    `max_recv_msg_size_mib` on the wire (or, uncompressed, longer than `max_decompressed_mib`)
//!    is refused with RESOURCE_EXHAUSTED without reading it;
//! 3. the message is reserved in the memory budget before it is buffered (UNAVAILABLE with a
//!    RetryInfo when there is no room now), and inflated under `max_decompressed_mib` and the
//!    budget;
//! 4. a second message in the call is a cardinality violation (INTERNAL), never half-accepted.
//!
//! The same service also answers gRPC requests that reach the OTLP/HTTP port (the HTTP receiver
//! hands every `content-type: application/grpc` request to [`GrpcReceiver::service`]): SDKs
//! default to gRPC and are often pointed at 4318. A call to any other method (an SDK's metrics or
//! logs exporter, a typo) is answered UNIMPLEMENTED, counted (`outcome="unknown_path"`) and logged
//! with a hint.

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use futures::future::BoxFuture;
use http_body::Frame;
use http_body_util::BodyExt;
use prost::Message;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::body::Body;
use tonic::{Code, Status};

use super::auth::BearerAuth;
use super::config::OtlpReceiverConfig;
use super::decompress::{self, DecompressError, Encoding};
use super::metrics::{self, Outcome, Receiver};
use super::{export_response, ReceiverError};
use crate::grpc_status::RpcStatus;
use crate::pipeline::{MemoryPermit, Refused, TraceSink, Transport};

/// The one method served.
pub const EXPORT_PATH: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

/// Length of the gRPC message prefix: compressed flag (1) + length (4).
const FRAME_HEADER: usize = 5;

/// The OTLP/gRPC receiver.
pub struct GrpcReceiver {
    shared: Arc<Shared>,
}

struct Shared {
    sink: Arc<dyn TraceSink>,
    auth: BearerAuth,
    max_recv_msg_size: usize,
    max_decompressed: usize,
    body_read_timeout: std::time::Duration,
    config_error: Option<super::ReceiverConfigError>,
    limits: super::conn::Limits,
}

impl GrpcReceiver {
    /// Builds the receiver; nothing is bound until [`serve`](Self::serve).
    pub fn new(cfg: &OtlpReceiverConfig, sink: Arc<dyn TraceSink>) -> Self {
        Self {
            shared: Arc::new(Shared {
                sink,
                auth: BearerAuth::new(&cfg.auth.bearer_tokens),
                max_recv_msg_size: cfg.max_recv_msg_size(),
                max_decompressed: cfg.max_decompressed(),
                body_read_timeout: cfg.body_read_timeout,
                config_error: cfg.validate().err(),
                limits: super::conn::Limits::new(cfg),
            }),
        }
    }

    /// The tower service that answers one gRPC request (for serving gRPC on another listener).
    pub fn service(&self) -> ExportService {
        ExportService {
            shared: self.shared.clone(),
        }
    }

    /// Serves on `listener` until `shutdown` is cancelled, then stops accepting, lets in-flight
    /// requests finish and returns.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: CancellationToken,
    ) -> Result<(), ReceiverError> {
        self.serve_until(listener, shutdown, CancellationToken::new())
            .await
    }

    /// As [`serve`](Self::serve), but connections still open when `cut` is cancelled are
    /// dropped (the shutdown deadline).
    pub async fn serve_until(
        self,
        listener: TcpListener,
        shutdown: CancellationToken,
        cut: CancellationToken,
    ) -> Result<(), ReceiverError> {
        if let Some(error) = &self.shared.config_error {
            return Err(error.clone().into());
        }
        let addr = listener.local_addr()?;
        tracing::info!(%addr, "OTLP/gRPC receiver listening.");
        let mut limits = self.shared.limits.clone();
        limits.http2_only = true;
        let shared = self.shared;
        let handler: super::conn::Handler =
            Arc::new(move |req: http::Request<hyper::body::Incoming>| {
                let shared = shared.clone();
                Box::pin(async move {
                    shared
                        .handle(req.map(Body::new))
                        .await
                        .map(axum::body::Body::new)
                })
            });
        let refusal = super::conn::refusal(limits.max_connections());
        super::conn::serve(
            listener,
            Receiver::Grpc,
            handler,
            refusal,
            limits,
            shutdown,
            cut,
        )
        .await;
        tracing::info!(%addr, "OTLP/gRPC receiver stopped.");
        Ok(())
    }
}

/// The tower service tonic's server runs for every request.
#[derive(Clone)]
pub struct ExportService {
    shared: Arc<Shared>,
}

impl tower::Service<http::Request<Body>> for ExportService {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<Body>) -> Self::Future {
        let shared = self.shared.clone();
        Box::pin(async move { Ok(shared.handle(req).await) })
    }
}

impl Shared {
    async fn handle(self: Arc<Self>, req: http::Request<Body>) -> http::Response<Body> {
        if req.uri().path() != EXPORT_PATH {
            let message = unknown_method(req.uri().path());
            metrics::refuse(Receiver::Grpc, Outcome::UnknownPath, &message);
            return Status::unimplemented(message).into_http();
        }
        if !self.auth.allows(req.headers()) {
            let message = "missing or invalid bearer token";
            metrics::refuse(Receiver::Grpc, Outcome::Unauthenticated, message);
            return Status::unauthenticated(message).into_http();
        }

        if !is_grpc_content_type(req.headers()) {
            // gRPC over HTTP/2: a content type that is not application/grpc is answered with
            // HTTP 415 (the client is not speaking gRPC).
            let got = req
                .headers()
                .get(http::header::CONTENT_TYPE)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                .unwrap_or_else(|| "none".into());
            let message = format!("content type {got:?} is not application/grpc");
            metrics::refuse(Receiver::Grpc, Outcome::UnsupportedMediaType, &message);
            let mut response = http::Response::new(Body::empty());
            *response.status_mut() = http::StatusCode::UNSUPPORTED_MEDIA_TYPE;
            return response;
        }
        let encoding = match req.headers().get("grpc-encoding").map(|v| v.to_str()) {
            None => Encoding::Identity,
            Some(Ok(v)) if v.eq_ignore_ascii_case("identity") => Encoding::Identity,
            Some(Ok(v)) if v.eq_ignore_ascii_case("gzip") => Encoding::Gzip,
            Some(Ok(v)) if v.eq_ignore_ascii_case("zstd") => Encoding::Zstd,
            Some(v) => {
                let message = format!(
                    "message encoding {:?} is not supported; use gzip, zstd or identity",
                    v.unwrap_or("(not text)")
                );
                metrics::refuse(Receiver::Grpc, Outcome::UnsupportedMediaType, &message);
                let mut response = Status::unimplemented(message).into_http();
                response.headers_mut().insert(
                    "grpc-accept-encoding",
                    http::HeaderValue::from_static("gzip,zstd,identity"),
                );
                return response;
            }
        };
        let mut held = match self.sink.memory() {
            Some(budget) => budget.empty(),
            None => crate::pipeline::MemoryBudget::new(usize::MAX).empty(),
        };
        let message = match self
            .read_message(req.into_body(), encoding, &mut held)
            .await
        {
            Ok(message) => message,
            Err(status) => return status.into_http(),
        };
        let answer = self.export(message).await;
        drop(held);
        match answer {
            Ok(response) => unary_response(response.into_inner()),
            Err(status) => status.into_http(),
        }
    }

    /// [`second_message_status`], after reading the rest of the request body (discarded, at most
    /// `max_recv_msg_size` more bytes, until the body deadline): answering while the client is
    /// still sending makes HTTP/2 reset the stream, and the client would see a reset instead of
    /// the status.
    async fn second_message(&self, mut body: Body, deadline: tokio::time::Instant) -> Status {
        let mut left = self.max_recv_msg_size;
        while let Ok(Some(Ok(frame))) = tokio::time::timeout_at(deadline, body.frame()).await {
            let n = frame.data_ref().map_or(0, |d| d.len());
            if n > left {
                break;
            }
            left -= n;
        }
        second_message_status()
    }

    /// Reads the one message of a unary call: the 5-byte prefix first (an oversized message is
    /// refused before its body), then the message, reserved in `held` before it is buffered,
    /// then inflated under the cap and the budget. A second message is a protocol violation.
    async fn read_message(
        &self,
        mut body: Body,
        encoding: Encoding,
        held: &mut MemoryPermit,
    ) -> Result<Bytes, Status> {
        let mut buf = BytesMut::new();
        let mut want = FRAME_HEADER;
        let mut message_len = None;
        let deadline = tokio::time::Instant::now() + self.body_read_timeout;
        loop {
            if buf.len() >= want {
                if message_len.is_none() {
                    let compressed = buf[0];
                    let wire_len = (&buf[1..FRAME_HEADER]).get_u32() as usize;
                    metrics::count_bytes(Receiver::Grpc, wire_len + FRAME_HEADER);
                    if compressed > 1 {
                        return Err(invalid(format!(
                            "the message prefix has compressed flag {compressed}; it must be 0 or 1"
                        )));
                    }
                    if compressed == 1 && encoding == Encoding::Identity {
                        return Err(invalid(
                            "the message is flagged compressed but no grpc-encoding was sent"
                                .into(),
                        ));
                    }
                    // An uncompressed message is also the decompressed size.
                    let limit = if compressed == 0 {
                        self.max_recv_msg_size.min(self.max_decompressed)
                    } else {
                        self.max_recv_msg_size
                    };
                    if wire_len > limit {
                        let message = format!(
                            "message of {wire_len} bytes is larger than the limit of {limit} bytes"
                        );
                        metrics::refuse(Receiver::Grpc, Outcome::TooLarge, &message);
                        return Err(Status::resource_exhausted(message));
                    }
                    if !held.try_grow(wire_len + FRAME_HEADER) {
                        return Err(no_memory(wire_len));
                    }
                    buf.reserve((wire_len + FRAME_HEADER).saturating_sub(buf.len()));
                    message_len = Some((compressed == 1, wire_len));
                    want = FRAME_HEADER + wire_len;
                    continue;
                }
                if buf.len() > want {
                    return Err(self.second_message(body, deadline).await);
                }
            }
            let Ok(frame) = tokio::time::timeout_at(deadline, body.frame()).await else {
                let message = format!(
                    "the request message did not arrive within body_read_timeout ({:?}); {} bytes read",
                    self.body_read_timeout,
                    buf.len()
                );
                metrics::refuse(Receiver::Grpc, Outcome::Timeout, &message);
                return Err(Status::deadline_exceeded(message));
            };
            match frame {
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        if message_len.is_some() && buf.len() + data.len() > want {
                            return Err(self.second_message(body, deadline).await);
                        }
                        buf.extend_from_slice(&data);
                    }
                }
                Some(Err(status)) => {
                    metrics::refuse(Receiver::Grpc, Outcome::Invalid, status.message());
                    return Err(status);
                }
                None => break,
            }
        }
        let Some((compressed, _)) = message_len.filter(|_| buf.len() == want) else {
            return Err(invalid(format!(
                "the request ended after {} bytes, inside a message",
                buf.len()
            )));
        };
        let message = buf.freeze().slice(FRAME_HEADER..);
        if !compressed {
            return Ok(message);
        }
        let mut inflated = held.split_empty();
        let cap = self.max_decompressed;
        let raw = super::decode_blocking(move || {
            let out = decompress::decompress_within(encoding, &message, cap, &mut inflated);
            (out, inflated)
        })
        .await;
        let (out, inflated) = raw.map_err(|e| Status::internal(format!("decoding failed: {e}")))?;
        match out {
            Ok(raw) => {
                *held = inflated;
                Ok(raw)
            }
            Err(e @ DecompressError::TooLarge { .. }) => {
                metrics::refuse(Receiver::Grpc, Outcome::TooLarge, &e.to_string());
                Err(Status::resource_exhausted(e.to_string()))
            }
            Err(DecompressError::NoMemory { held }) => Err(no_memory(held)),
            Err(e @ DecompressError::Corrupt { .. }) => Err(invalid(e.to_string())),
        }
    }

    /// Submits one message to the pipeline and maps the answer.
    async fn export(&self, body: Bytes) -> Result<tonic::Response<Bytes>, Status> {
        match self.sink.submit(body, Transport::Grpc).await {
            Ok(accepted) => {
                let outcome = if accepted.rejected_spans > 0 {
                    Outcome::Partial
                } else {
                    Outcome::Accepted
                };
                metrics::count(Receiver::Grpc, outcome);
                Ok(tonic::Response::new(Bytes::from(
                    export_response(accepted).encode_to_vec(),
                )))
            }
            Err(Refused::Invalid(message)) => {
                metrics::refuse(Receiver::Grpc, Outcome::Invalid, &message);
                Err(Status::invalid_argument(message))
            }
            Err(refused @ Refused::Full { retry_after }) => {
                let message = refused.to_string();
                metrics::refuse(Receiver::Grpc, Outcome::PipelineFull, &message);
                let details =
                    RpcStatus::new(Code::Unavailable, &message).with_retry_after(retry_after);
                Err(Status::with_details(
                    Code::Unavailable,
                    message,
                    Bytes::from(details.encode_to_vec()),
                ))
            }
            Err(refused @ Refused::ShuttingDown) => {
                let message = refused.to_string();
                metrics::refuse(Receiver::Grpc, Outcome::ShuttingDown, &message);
                Err(Status::unavailable(message))
            }
        }
    }
}

/// The answer to a call of a method other than `TraceService/Export`, with what to change.
fn unknown_method(path: &str) -> String {
    let signal = ["metrics", "logs", "profiles"]
        .into_iter()
        .find(|s| path.starts_with(&format!("/opentelemetry.proto.collector.{s}.")));
    match signal {
        Some(signal) => format!(
            "unknown method {path}: tollgate receives traces only; turn the client's {signal} \
             exporter off (OTEL_{}_EXPORTER=none) or send {signal} elsewhere",
            signal.to_ascii_uppercase()
        ),
        None => format!(
            "unknown method {path}: tollgate serves only {}",
            &EXPORT_PATH[1..]
        ),
    }
}

/// `content-type` is `application/grpc` or `application/grpc+<format>`.
fn is_grpc_content_type(headers: &http::HeaderMap) -> bool {
    let Some(value) = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let media = value.split(';').next().unwrap_or("").trim();
    media.eq_ignore_ascii_case("application/grpc")
        || media
            .get(..17)
            .is_some_and(|p| p.eq_ignore_ascii_case("application/grpc+"))
}

fn invalid(message: String) -> Status {
    metrics::refuse(Receiver::Grpc, Outcome::Invalid, &message);
    Status::invalid_argument(message)
}

/// A unary call that carries more than one message: gRPC's cardinality violation (INTERNAL, as
/// grpc-go answers), refused whole rather than dropping the second message.
fn second_message_status() -> Status {
    let message = "a unary Export call must carry exactly one message; a second was sent";
    metrics::refuse(Receiver::Grpc, Outcome::Invalid, message);
    Status::internal(message)
}

/// UNAVAILABLE with a RetryInfo: the memory budget has no room for this message now.
fn no_memory(bytes: usize) -> Status {
    let message =
        format!("memory limit reached: no room for the message ({bytes} bytes) now; retry later");
    metrics::refuse(Receiver::Grpc, Outcome::PipelineFull, &message);
    let details = RpcStatus::new(Code::Unavailable, &message)
        .with_retry_after(std::time::Duration::from_secs(1));
    Status::with_details(
        Code::Unavailable,
        message,
        Bytes::from(details.encode_to_vec()),
    )
}

/// A successful unary answer: one uncompressed message, then `grpc-status: 0`.
fn unary_response(message: Bytes) -> http::Response<Body> {
    let mut framed = BytesMut::with_capacity(FRAME_HEADER + message.len());
    framed.put_u8(0);
    framed.put_u32(message.len() as u32);
    framed.extend_from_slice(&message);
    let mut trailers = http::HeaderMap::new();
    trailers.insert("grpc-status", http::HeaderValue::from_static("0"));
    let body = http_body_util::StreamBody::new(futures::stream::iter([
        Ok::<_, Status>(Frame::data(framed.freeze())),
        Ok(Frame::trailers(trailers)),
    ]));
    let mut response = http::Response::new(Body::new(body));
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/grpc"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_methods_get_a_hint() {
        let m = unknown_method("/opentelemetry.proto.collector.metrics.v1.MetricsService/Export");
        assert!(m.contains("OTEL_METRICS_EXPORTER=none"), "{m}");
        let m = unknown_method("/opentelemetry.proto.collector.logs.v1.LogsService/Export");
        assert!(m.contains("OTEL_LOGS_EXPORTER=none"), "{m}");
        let m = unknown_method("/foo.Bar/Baz");
        assert!(
            m.ends_with("opentelemetry.proto.collector.trace.v1.TraceService/Export"),
            "{m}"
        );
    }
}
