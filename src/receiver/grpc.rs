//! The OTLP/gRPC receiver: `opentelemetry.proto.collector.trace.v1.TraceService/Export`.
//!
//! Requests are served by `tonic::server::Grpc` with a codec whose messages are raw `Bytes`, so
//! the request is never decoded into structs here. Limits, outermost first:
//! 1. the gRPC frame header is read before the body: a message longer than
//!    `max_recv_msg_size_mib` on the wire (or, uncompressed, longer than `max_decompressed_mib`)
//!    is refused with RESOURCE_EXHAUSTED without reading it (tonic itself would answer
//!    OUT_OF_RANGE, which OTLP clients retry);
//! 2. tonic inflates gzip/zstd messages into a buffer limited to `max_decompressed_mib` and
//!    answers RESOURCE_EXHAUSTED when the limit is hit (tonic applies one limit to both the wire
//!    and the inflated size, which is why step 1 exists).
//!
//! The same service also answers gRPC requests that reach the OTLP/HTTP port (the HTTP receiver
//! hands every `content-type: application/grpc` request to [`GrpcReceiver::service`]): SDKs
//! default to gRPC and are often pointed at 4318. A call to any other method (an SDK's metrics or
//! logs exporter, a typo) is answered UNIMPLEMENTED, counted (`outcome="unknown_path"`) and logged
//! with a hint.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use futures::future::BoxFuture;
use http_body::{Body as HttpBody, Frame};
use http_body_util::BodyExt;
use prost::Message;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::body::Body;
use tonic::codec::{Codec, CompressionEncoding, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::{Code, Status};

use super::auth::BearerAuth;
use super::config::OtlpReceiverConfig;
use super::metrics::{self, Outcome, Receiver};
use super::{export_response, NodelayListener, ReceiverError};
use crate::grpc_status::RpcStatus;
use crate::pipeline::{Refused, TraceSink, Transport};

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
    config_error: Option<super::ReceiverConfigError>,
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
                config_error: cfg.validate().err(),
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
        if let Some(error) = &self.shared.config_error {
            return Err(error.clone().into());
        }
        let addr = listener.local_addr()?;
        tracing::info!(%addr, "OTLP/gRPC receiver listening.");
        let service = ExportService {
            shared: self.shared,
        };
        // OTLP batches are large (hundreds of KB): bigger HTTP/2 frames and windows let a client
        // send one in a few frames without waiting for window updates (fewer syscalls and
        // wake-ups per request). Windows are flow-control credit, not buffers.
        tonic::transport::Server::builder()
            .max_frame_size(Some(256 << 10))
            .initial_stream_window_size(Some(4 << 20))
            .initial_connection_window_size(Some(16 << 20))
            .serve_with_incoming_shutdown(
                service,
                NodelayListener::new(listener).into_stream(),
                shutdown.cancelled_owned(),
            )
            .await?;
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

        // Step 1: read the message prefix and refuse an oversized message before its body.
        let (parts, mut body) = req.into_parts();
        let mut head = BytesMut::new();
        while head.len() < FRAME_HEADER {
            match body.frame().await {
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) => head.extend_from_slice(&data),
                    Err(_trailers) => break,
                },
                Some(Err(status)) => return status.into_http(),
                None => break,
            }
        }
        if head.len() >= FRAME_HEADER {
            let wire_len = (&head[1..FRAME_HEADER]).get_u32() as usize;
            metrics::count_bytes(Receiver::Grpc, wire_len + FRAME_HEADER);
            // An uncompressed message is also the decompressed size.
            let limit = if head[0] == 0 {
                self.max_recv_msg_size.min(self.max_decompressed)
            } else {
                self.max_recv_msg_size
            };
            if wire_len > limit {
                let message = format!(
                    "message of {wire_len} bytes is larger than the limit of {limit} bytes"
                );
                metrics::refuse(Receiver::Grpc, Outcome::TooLarge, &message);
                return Status::resource_exhausted(message).into_http();
            }
        }
        let req = http::Request::from_parts(
            parts,
            Body::new(Prefixed {
                head: Some(head.freeze()),
                rest: body,
            }),
        );

        // Step 2: tonic reads, inflates (capped) and hands the message to `export`.
        let mut grpc = tonic::server::Grpc::new(BytesCodec)
            .accept_compressed(CompressionEncoding::Gzip)
            .accept_compressed(CompressionEncoding::Zstd)
            // tonic applies this to the wire length and to the inflated size; the wire length
            // was checked above, so this is the decompressed cap.
            .max_decoding_message_size(self.max_decompressed);
        let handled = Arc::new(AtomicBool::new(false));
        let unary = Unary {
            shared: self.clone(),
            handled: handled.clone(),
        };
        let response = grpc.unary(unary, req).await;
        if handled.load(Ordering::Relaxed) {
            return response;
        }
        transport_failure(response)
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

/// Counts (and where needed re-codes) an error tonic produced before the message reached
/// [`Shared::export`]: an inflated size over the cap, corrupt compressed data, an encoding not
/// accepted, a malformed frame.
fn transport_failure(response: http::Response<Body>) -> http::Response<Body> {
    let Some(status) = Status::from_header_map(response.headers()) else {
        return response;
    };
    match status.code() {
        Code::ResourceExhausted | Code::OutOfRange => {
            metrics::refuse(Receiver::Grpc, Outcome::TooLarge, status.message());
            Status::resource_exhausted(status.message()).into_http()
        }
        Code::Unimplemented => {
            metrics::refuse(
                Receiver::Grpc,
                Outcome::UnsupportedMediaType,
                status.message(),
            );
            response
        }
        _ => {
            // Undecodable input is the client's fault: INVALID_ARGUMENT, never retried.
            metrics::refuse(Receiver::Grpc, Outcome::Invalid, status.message());
            Status::invalid_argument(status.message()).into_http()
        }
    }
}

/// The unary handler tonic calls with the (inflated) message bytes.
#[derive(Clone)]
struct Unary {
    shared: Arc<Shared>,
    handled: Arc<AtomicBool>,
}

impl tower::Service<tonic::Request<Bytes>> for Unary {
    type Response = tonic::Response<Bytes>;
    type Error = Status;
    type Future = BoxFuture<'static, Result<tonic::Response<Bytes>, Status>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Status>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: tonic::Request<Bytes>) -> Self::Future {
        self.handled.store(true, Ordering::Relaxed);
        let shared = self.shared.clone();
        Box::pin(async move { shared.export(req.into_inner()).await })
    }
}

/// A request body with the bytes already read put back in front.
struct Prefixed {
    head: Option<Bytes>,
    rest: Body,
}

impl HttpBody for Prefixed {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        if let Some(head) = self.head.take().filter(|h| !h.is_empty()) {
            return Poll::Ready(Some(Ok(Frame::data(head))));
        }
        Pin::new(&mut self.rest).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.head.as_ref().is_none_or(Bytes::is_empty) && self.rest.is_end_stream()
    }
}

/// A codec whose messages are the encoded bytes themselves.
#[derive(Debug, Clone, Copy, Default)]
struct BytesCodec;

impl Codec for BytesCodec {
    type Encode = Bytes;
    type Decode = Bytes;
    type Encoder = BytesCodec;
    type Decoder = BytesCodec;

    fn encoder(&mut self) -> Self::Encoder {
        BytesCodec
    }

    fn decoder(&mut self) -> Self::Decoder {
        BytesCodec
    }
}

impl Encoder for BytesCodec {
    type Item = Bytes;
    type Error = Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put(item);
        Ok(())
    }
}

impl Decoder for BytesCodec {
    type Item = Bytes;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        let len = src.remaining();
        Ok(Some(src.copy_to_bytes(len)))
    }
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
