//! The OTLP/HTTP receiver: `POST /v1/traces` with protobuf or JSON bodies, HTTP/1.1 and h2c.
//!
//! The port also serves OTLP/gRPC: a request with `content-type: application/grpc` goes to the
//! gRPC receiver's service, with the gRPC receiver's limits. OpenTelemetry SDKs default to gRPC
//! and are often pointed at 4318; this way they deliver instead of failing silently. Requests
//! to any other path are answered 404 with a hint, counted (`outcome="unknown_path"`) and logged.
//!
//! Protection, in the order a request meets it:
//! 1. bearer token (401), content type (415), content encoding (415);
//! 2. the body as sent: a `Content-Length` over `max_request_body_mib` is refused before reading,
//!    and a chunked body is read through a limit that stops at the same size (413);
//! 3. inflating stops at `max_decompressed_mib` (413), so a compression bomb is never inflated;
//! 4. JSON is converted to protobuf; the pipeline validates the protobuf (400 when invalid).

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use bytes::{Bytes, BytesMut};
use futures::future::{BoxFuture, FutureExt};
use http::{header, HeaderMap, HeaderValue, StatusCode};
use http_body_util::BodyExt;
use prost::Message;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::Code;

use super::auth::BearerAuth;
use super::config::OtlpReceiverConfig;
use super::decompress::{self, DecompressError, Encoding};
use super::grpc::{ExportService, GrpcReceiver};
use super::metrics::{self, Outcome, Receiver};
use super::{export_response, ReceiverError};
use crate::grpc_status::RpcStatus;
use crate::pipeline::{MemoryPermit, Refused, TraceSink, Transport};

/// The traces path.
pub const TRACES_PATH: &str = "/v1/traces";

const PROTOBUF: &str = "application/x-protobuf";
const JSON: &str = "application/json";

/// The OTLP/HTTP receiver.
pub struct HttpReceiver {
    shared: Arc<Shared>,
    grpc: ExportService,
    config_error: Option<super::ReceiverConfigError>,
    limits: super::conn::Limits,
}

struct Shared {
    sink: Arc<dyn TraceSink>,
    auth: BearerAuth,
    max_request_body: usize,
    max_decompressed: usize,
    body_read_timeout: Duration,
}

impl HttpReceiver {
    /// Builds the receiver; nothing is bound until [`serve`](Self::serve).
    pub fn new(cfg: &OtlpReceiverConfig, sink: Arc<dyn TraceSink>) -> Self {
        Self {
            grpc: GrpcReceiver::new(cfg, sink.clone()).service(),
            shared: Arc::new(Shared {
                sink,
                auth: BearerAuth::new(&cfg.auth.bearer_tokens),
                max_request_body: cfg.max_request_body(),
                max_decompressed: cfg.max_decompressed(),
                body_read_timeout: cfg.body_read_timeout,
            }),
            config_error: cfg.validate().err(),
            limits: super::conn::Limits::new(cfg),
        }
    }

    /// The axum router of OTLP/HTTP alone (for embedding or `oneshot` tests).
    pub fn router(&self) -> Router {
        Router::new()
            .route(TRACES_PATH, post(export).fallback(method_not_allowed))
            .fallback(not_found)
            .with_state(self.shared.clone())
    }

    /// Serves on `listener` (HTTP/1.1 and h2c) until `shutdown` is cancelled, then stops
    /// accepting, lets in-flight requests finish and returns.
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
        if let Some(error) = self.config_error.clone() {
            return Err(error.into());
        }
        let addr = listener.local_addr()?;
        tracing::info!(%addr, "OTLP/HTTP receiver listening.");
        let service = HttpOrGrpc {
            http: self.router(),
            grpc: self.grpc.clone(),
        };
        let handler: super::conn::Handler =
            Arc::new(move |req: http::Request<hyper::body::Incoming>| {
                use tower::ServiceExt;
                let service = service.clone();
                Box::pin(async move {
                    match service.oneshot(req.map(Body::new)).await {
                        Ok(response) => response,
                        Err(never) => match never {},
                    }
                })
            });
        let refusal = super::conn::refusal(self.limits.max_connections());
        super::conn::serve(
            listener,
            Receiver::Http,
            handler,
            refusal,
            self.limits,
            shutdown,
            cut,
        )
        .await;
        tracing::info!(%addr, "OTLP/HTTP receiver stopped.");
        Ok(())
    }
}

/// Sends HTTP/2 `content-type: application/grpc` requests to the gRPC service, the rest to the
/// router.
#[derive(Clone)]
struct HttpOrGrpc {
    http: Router,
    grpc: ExportService,
}

impl tower::Service<Request> for HttpOrGrpc {
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request) -> Self::Future {
        use tower::ServiceExt;
        // gRPC needs HTTP/2; over HTTP/1.1 the request gets the HTTP receiver's 415.
        if req.version() == http::Version::HTTP_2 && is_grpc(req.headers()) {
            let req = req.map(tonic::body::Body::new);
            let grpc = self.grpc.clone();
            async move {
                let response = grpc.oneshot(req).await?;
                Ok(response.map(Body::new))
            }
            .boxed()
        } else {
            self.http.clone().oneshot(req).boxed()
        }
    }
}

/// `application/grpc`, alone or with a suffix (`application/grpc+proto`).
pub(crate) fn is_grpc(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            let v = v.trim().as_bytes();
            v.len() >= 16
                && v[..16].eq_ignore_ascii_case(b"application/grpc")
                && matches!(v.get(16), None | Some(b'+' | b';'))
        })
}

/// The body encoding of a request, and so of its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Protobuf,
    Json,
}

impl Format {
    /// Reads `Content-Type`, ignoring parameters such as `charset`.
    fn from_headers(headers: &HeaderMap) -> Option<Self> {
        let value = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
        let media = value.split(';').next().unwrap_or("").trim();
        if media.eq_ignore_ascii_case(PROTOBUF)
            || media.eq_ignore_ascii_case("application/protobuf")
        {
            Some(Self::Protobuf)
        } else if media.eq_ignore_ascii_case(JSON) {
            Some(Self::Json)
        } else {
            None
        }
    }

    fn content_type(self) -> HeaderValue {
        HeaderValue::from_static(match self {
            Format::Protobuf => PROTOBUF,
            Format::Json => JSON,
        })
    }

    fn transport(self) -> Transport {
        match self {
            Format::Protobuf => Transport::HttpProtobuf,
            Format::Json => Transport::HttpJson,
        }
    }
}

/// An answer that is not a success: a `google.rpc.Status` body in the request's format.
struct Failure {
    http: StatusCode,
    code: Code,
    message: String,
    format: Format,
    headers: Vec<(header::HeaderName, HeaderValue)>,
}

impl Failure {
    /// Counts and logs the refusal, and builds its answer.
    fn refuse(format: Format, outcome: Outcome, http: StatusCode, message: String) -> Self {
        metrics::refuse(Receiver::Http, outcome, &message);
        let code = match outcome {
            Outcome::TooLarge => Code::ResourceExhausted,
            Outcome::UnsupportedMediaType | Outcome::MethodNotAllowed => Code::Unimplemented,
            Outcome::Unauthenticated => Code::Unauthenticated,
            Outcome::PipelineFull | Outcome::ShuttingDown => Code::Unavailable,
            Outcome::Timeout => Code::DeadlineExceeded,
            _ => Code::InvalidArgument,
        };
        Self {
            http,
            code,
            message,
            format,
            headers: Vec::new(),
        }
    }

    fn with_header(mut self, name: header::HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let status = RpcStatus::new(self.code, self.message);
        let body = match self.format {
            Format::Protobuf => status.encode_to_vec(),
            Format::Json => status.to_json(),
        };
        let mut response = (self.http, body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, self.format.content_type());
        for (name, value) in self.headers {
            headers.insert(name, value);
        }
        response
    }
}

/// The format to answer a request in when its own content type is not usable.
fn answer_format(headers: &HeaderMap) -> Format {
    Format::from_headers(headers).unwrap_or(Format::Protobuf)
}

async fn method_not_allowed(headers: HeaderMap, method: http::Method) -> Response {
    Failure::refuse(
        answer_format(&headers),
        Outcome::MethodNotAllowed,
        StatusCode::METHOD_NOT_ALLOWED,
        format!("method {method} is not allowed on {TRACES_PATH}; use POST"),
    )
    .with_header(header::ALLOW, HeaderValue::from_static("POST"))
    .into_response()
}

async fn not_found(headers: HeaderMap, method: http::Method, uri: http::Uri) -> Response {
    let message = unknown_path(&method, uri.path());
    metrics::refuse(Receiver::Http, Outcome::UnknownPath, &message);
    let status = RpcStatus::new(Code::NotFound, message);
    let format = answer_format(&headers);
    let body = match format {
        Format::Protobuf => status.encode_to_vec(),
        Format::Json => status.to_json(),
    };
    (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, format.content_type())],
        body,
    )
        .into_response()
}

/// The answer to a request for a path other than `/v1/traces`, with what to change.
fn unknown_path(method: &http::Method, path: &str) -> String {
    let signal = ["metrics", "logs", "profiles"]
        .into_iter()
        .find(|s| path.ends_with(&format!("/v1/{s}")));
    if let Some(signal) = signal {
        return format!(
            "no such path {path}: tollgate receives traces only; turn the client's {signal} \
             exporter off (OTEL_{}_EXPORTER=none) or send {signal} elsewhere",
            signal.to_ascii_uppercase()
        );
    }
    if path.ends_with(TRACES_PATH) || path.ends_with("/v1/traces/") {
        return format!(
            "no such path {path}: traces go to {TRACES_PATH}. OTEL_EXPORTER_OTLP_ENDPOINT is a \
             base URL (the SDK appends {TRACES_PATH}): set it to http://HOST:PORT, or give the \
             full URL in OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
        );
    }
    format!(
        "no such path {path} ({method}): OTLP/HTTP traces go to POST {TRACES_PATH}; this port also \
         serves OTLP/gRPC (content-type application/grpc)"
    )
}

async fn export(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    match shared.export(req).await {
        Ok(response) => response,
        Err(failure) => failure.into_response(),
    }
}

impl Shared {
    async fn export(&self, req: Request) -> Result<Response, Failure> {
        let (parts, body) = req.into_parts();
        let headers = &parts.headers;
        if !self.auth.allows(headers) {
            return Err(Failure::refuse(
                answer_format(headers),
                Outcome::Unauthenticated,
                StatusCode::UNAUTHORIZED,
                "missing or invalid bearer token".into(),
            )
            .with_header(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer")));
        }
        let Some(format) = Format::from_headers(headers) else {
            let got = headers
                .get(header::CONTENT_TYPE)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                .unwrap_or_else(|| "none".into());
            return Err(Failure::refuse(
                Format::Protobuf,
                Outcome::UnsupportedMediaType,
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!(
                    "unsupported content type {got:?}; use application/x-protobuf or application/json"
                ),
            ));
        };
        let encoding_header = headers
            .get(header::CONTENT_ENCODING)
            .map(|v| v.to_str().unwrap_or("(not text)"));
        let Some(encoding) = Encoding::from_header(encoding_header) else {
            return Err(Failure::refuse(
                format,
                Outcome::UnsupportedMediaType,
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!(
                    "unsupported content encoding {:?}; use gzip, zstd or identity",
                    encoding_header.unwrap_or_default()
                ),
            ));
        };

        let memory = self.sink.memory();
        let mut held = match &memory {
            Some(budget) => budget.empty(),
            None => crate::pipeline::MemoryBudget::new(usize::MAX).empty(),
        };
        let body = self.read_body(headers, body, format, &mut held).await?;
        let body = self.decode(format, encoding, body, held).await?;
        self.submit(format, body).await
    }

    /// Reads and drops the rest of a refused body in a task of its own, frame by frame (nothing
    /// is kept), until it ends, passes `max_request_body` or `deadline`: the refusal answered
    /// meanwhile reaches a client that is still sending, and a connection whose body arrived in
    /// full stays usable. One task per refused request, so bounded by the connection and
    /// stream limits.
    fn discard(&self, mut body: Body, deadline: tokio::time::Instant) {
        let max = self.max_request_body;
        tokio::spawn(async move {
            let mut total = 0usize;
            while let Ok(Some(Ok(frame))) = tokio::time::timeout_at(deadline, body.frame()).await {
                if let Ok(data) = frame.into_data() {
                    total += data.len();
                    if total > max {
                        break;
                    }
                }
            }
        });
    }

    /// Reads the body as sent, up to `max_request_body` bytes, reserving it in `held` before it
    /// is buffered (the declared length up front; a chunked body frame by frame).
    async fn read_body(
        &self,
        headers: &HeaderMap,
        mut body: Body,
        format: Format,
        held: &mut MemoryPermit,
    ) -> Result<Bytes, Failure> {
        let too_large = |len: Option<u64>| {
            let size = len.map_or_else(|| "more than".into(), |l| format!("{l} bytes, more than"));
            Failure::refuse(
                format,
                Outcome::TooLarge,
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "request body is {size} the limit of {} bytes",
                    self.max_request_body
                ),
            )
        };
        let declared = headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|len| len > self.max_request_body as u64) {
            return Err(too_large(declared));
        }
        // The declared length is reserved before a byte is read: a client that declares a large
        // body and stalls holds budget, not unaccounted memory.
        let declared = declared.map(|l| l as usize);
        let deadline = tokio::time::Instant::now() + self.body_read_timeout;
        if let Some(len) = declared {
            if !held.try_grow(len) {
                // The 503 goes out at once; the body is read on (holding none of it) so a client
                // still sending gets the answer and its Retry-After, not a connection closed
                // under it.
                self.discard(body, deadline);
                return Err(no_memory(format, "the request body", len));
            }
        }
        let mut frames: Vec<Bytes> = Vec::new();
        let mut total = 0usize;
        loop {
            let Ok(frame) = tokio::time::timeout_at(deadline, body.frame()).await else {
                return Err(Failure::refuse(
                    format,
                    Outcome::Timeout,
                    StatusCode::REQUEST_TIMEOUT,
                    format!(
                        "the request body did not arrive within body_read_timeout ({:?}); {total} bytes read",
                        self.body_read_timeout
                    ),
                )
                .with_header(header::CONNECTION, HeaderValue::from_static("close")));
            };
            let Some(frame) = frame else { break };
            let frame = frame.map_err(|error| {
                Failure::refuse(
                    format,
                    Outcome::Invalid,
                    StatusCode::BAD_REQUEST,
                    format!("could not read the request body: {error}"),
                )
            })?;
            let Ok(data) = frame.into_data() else {
                continue;
            };
            total += data.len();
            if total > self.max_request_body {
                return Err(too_large(None));
            }
            if declared.is_none_or(|d| total > d) && !held.try_grow(data.len()) {
                drop(frames);
                self.discard(body, deadline);
                return Err(no_memory(format, "the request body", total));
            }
            frames.push(data);
        }
        metrics::count_bytes(Receiver::Http, total);
        let bytes = match frames.len() {
            0 => Bytes::new(),
            1 => frames.pop().unwrap_or_default(),
            _ => {
                // Joining holds the frames and the joined copy at once.
                if !held.try_grow(total) {
                    return Err(no_memory(format, "the request body", total));
                }
                let mut joined = BytesMut::with_capacity(total);
                for f in frames.drain(..) {
                    joined.extend_from_slice(&f);
                }
                drop(frames);
                held.resize(held.bytes() - total);
                joined.freeze()
            }
        };
        if let Some(d) = declared {
            if total < d {
                held.resize(held.bytes() - (d - total));
            }
        }
        Ok(bytes)
    }

    /// Inflates (capped) and, for JSON, converts to protobuf, off the async threads. Every
    /// buffer is reserved in the memory budget before it is allocated; the returned permit holds
    /// the protobuf body until the pipeline has taken it.
    async fn decode(
        &self,
        format: Format,
        encoding: Encoding,
        body: Bytes,
        held: MemoryPermit,
    ) -> Result<(Bytes, MemoryPermit), Failure> {
        if format == Format::Protobuf && encoding == Encoding::Identity {
            if body.len() > self.max_decompressed {
                return Err(Failure::refuse(
                    format,
                    Outcome::TooLarge,
                    StatusCode::PAYLOAD_TOO_LARGE,
                    DecompressError::TooLarge {
                        cap: self.max_decompressed,
                    }
                    .to_string(),
                ));
            }
            return Ok((body, held));
        }
        let cap = self.max_decompressed;
        let work = move || -> Result<(Bytes, MemoryPermit), Failure> {
            let mut body_permit = held;
            let (raw, mut raw_permit) = if encoding == Encoding::Identity {
                if body.len() > cap {
                    return Err(decompress_failure(
                        format,
                        DecompressError::TooLarge { cap },
                    ));
                }
                (body, body_permit)
            } else {
                let mut out_permit = body_permit.split_empty();
                let raw = decompress::decompress_within(encoding, &body, cap, &mut out_permit)
                    .map_err(|e| decompress_failure(format, e))?;
                drop(body);
                body_permit.resize(0);
                (raw, out_permit)
            };
            match format {
                Format::Protobuf => Ok((raw, raw_permit)),
                Format::Json => {
                    let need = crate::wire::json::parse_memory_bound(&raw);
                    let mut parse_permit = raw_permit.split_empty();
                    if !parse_permit.try_grow(need) {
                        if need > parse_permit.limit() {
                            return Err(Failure::refuse(
                                format,
                                Outcome::TooLarge,
                                StatusCode::PAYLOAD_TOO_LARGE,
                                format!(
                                    "parsing this OTLP/JSON body needs up to {need} bytes of memory, more than the memory limit of {} bytes; send smaller batches or protobuf",
                                    parse_permit.limit()
                                ),
                            ));
                        }
                        return Err(no_memory(format, "parsing the JSON body", need));
                    }
                    let out = crate::wire::json::json_to_protobuf(&raw).map_err(|e| {
                        Failure::refuse(
                            format,
                            Outcome::Invalid,
                            StatusCode::BAD_REQUEST,
                            e.to_string(),
                        )
                    })?;
                    drop(raw);
                    raw_permit.resize(0);
                    // The protobuf was allocated inside the parse reservation; keep its size.
                    parse_permit.resize(out.len());
                    Ok((out, parse_permit))
                }
            }
        };
        super::decode_blocking(work).await.unwrap_or_else(|e| {
            Err(Failure::refuse(
                format,
                Outcome::Invalid,
                StatusCode::BAD_REQUEST,
                format!("decoding failed: {e}"),
            ))
        })
    }

    /// Hands the protobuf request to the pipeline and maps its answer.
    async fn submit(
        &self,
        format: Format,
        (body, held): (Bytes, MemoryPermit),
    ) -> Result<Response, Failure> {
        // `held` covers the body until the pipeline has copied what it keeps.
        let answer = self.sink.submit(body, format.transport()).await;
        drop(held);
        match answer {
            Ok(accepted) => {
                let outcome = if accepted.rejected_spans > 0 {
                    Outcome::Partial
                } else {
                    Outcome::Accepted
                };
                metrics::count(Receiver::Http, outcome);
                let response = export_response(accepted);
                let body = match format {
                    Format::Protobuf => response.encode_to_vec(),
                    Format::Json => json_response(&response),
                };
                Ok((
                    StatusCode::OK,
                    [(header::CONTENT_TYPE, format.content_type())],
                    body,
                )
                    .into_response())
            }
            Err(Refused::Invalid(message)) => Err(Failure::refuse(
                format,
                Outcome::Invalid,
                StatusCode::BAD_REQUEST,
                message,
            )),
            Err(refused @ Refused::Full { retry_after }) => Err(Failure::refuse(
                format,
                Outcome::PipelineFull,
                StatusCode::SERVICE_UNAVAILABLE,
                refused.to_string(),
            )
            .with_header(header::RETRY_AFTER, retry_after_seconds(retry_after))),
            Err(refused @ Refused::ShuttingDown) => Err(Failure::refuse(
                format,
                Outcome::ShuttingDown,
                StatusCode::SERVICE_UNAVAILABLE,
                refused.to_string(),
            )),
        }
    }
}

/// How long a client refused for lack of memory should wait.
const NO_MEMORY_RETRY_AFTER: Duration = Duration::from_secs(1);

/// 503 + `Retry-After`: the memory budget has no room for this request now.
fn no_memory(format: Format, what: &str, bytes: usize) -> Failure {
    Failure::refuse(
        format,
        Outcome::PipelineFull,
        StatusCode::SERVICE_UNAVAILABLE,
        format!("memory limit reached: no room for {what} ({bytes} bytes) now; retry later"),
    )
    .with_header(
        header::RETRY_AFTER,
        retry_after_seconds(NO_MEMORY_RETRY_AFTER),
    )
}

fn decompress_failure(format: Format, error: DecompressError) -> Failure {
    match error {
        DecompressError::TooLarge { .. } => Failure::refuse(
            format,
            Outcome::TooLarge,
            StatusCode::PAYLOAD_TOO_LARGE,
            error.to_string(),
        ),
        DecompressError::NoMemory { held } => no_memory(format, "the decompressed body", held),
        DecompressError::Corrupt { .. } => Failure::refuse(
            format,
            Outcome::Invalid,
            StatusCode::BAD_REQUEST,
            error.to_string(),
        ),
    }
}

/// `Retry-After` in whole seconds, rounded up and at least 1.
fn retry_after_seconds(delay: Duration) -> HeaderValue {
    let secs = delay.as_secs() + u64::from(delay.subsec_nanos() > 0);
    HeaderValue::from(secs.max(1))
}

/// OTLP/JSON rendering of a response: `{}` or `{"partialSuccess": {...}}`.
fn json_response(
    response: &crate::otlp::collector::trace::v1::ExportTraceServiceResponse,
) -> Vec<u8> {
    let value = match &response.partial_success {
        None => return b"{}".to_vec(),
        Some(p) => serde_json::json!({
            "partialSuccess": { "rejectedSpans": p.rejected_spans, "errorMessage": p.error_message }
        }),
    };
    value.to_string().into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types() {
        let mut h = HeaderMap::new();
        assert_eq!(Format::from_headers(&h), None);
        for (ct, want) in [
            ("application/x-protobuf", Some(Format::Protobuf)),
            ("application/protobuf", Some(Format::Protobuf)),
            ("Application/JSON; charset=utf-8", Some(Format::Json)),
            ("application/json;charset=UTF-8", Some(Format::Json)),
            ("text/plain", None),
            ("application/jsonx", None),
        ] {
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
            assert_eq!(Format::from_headers(&h), want, "{ct}");
        }
    }

    #[test]
    fn grpc_content_types() {
        let mut h = HeaderMap::new();
        assert!(!is_grpc(&h));
        for (ct, want) in [
            ("application/grpc", true),
            ("application/grpc+proto", true),
            ("Application/GRPC; charset=x", true),
            ("application/grpc-web", false),
            ("application/grpcx", false),
            ("application/x-protobuf", false),
        ] {
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
            assert_eq!(is_grpc(&h), want, "{ct}");
        }
    }

    #[test]
    fn unknown_paths_get_a_hint() {
        let post = http::Method::POST;
        let m = unknown_path(&post, "/v1/metrics");
        assert!(m.contains("OTEL_METRICS_EXPORTER=none"), "{m}");
        let m = unknown_path(&post, "/v1/traces/v1/traces");
        assert!(m.contains("base URL"), "{m}");
        let m = unknown_path(&http::Method::GET, "/");
        assert!(m.contains("POST /v1/traces") && m.contains("(GET)"), "{m}");
    }

    #[test]
    fn retry_after_rounds_up() {
        assert_eq!(retry_after_seconds(Duration::from_millis(0)), "1");
        assert_eq!(retry_after_seconds(Duration::from_millis(1500)), "2");
        assert_eq!(retry_after_seconds(Duration::from_secs(7)), "7");
    }
}
