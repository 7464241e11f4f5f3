//! `sink`: a blackhole OTLP receiver that counts spans and bytes and answers success.
//!
//! gRPC and HTTP are served by one hyper service (HTTP/1.1 and HTTP/2 on every listener); the
//! route decides: `POST …/TraceService/Export` is gRPC, `POST /v1/traces` is OTLP/HTTP, and
//! `GET /stats` returns the counters as JSON. Spans are counted by a walk over the protobuf
//! nesting, or with `--verify` by tollgate's full validating scan.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{combinators::BoxBody, BodyExt, Full, Limited, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tracing::{debug, info, warn};

use crate::wire::{count_spans, decompress, grpc_messages, WireError};

/// The gRPC method path of OTLP trace export.
pub const GRPC_PATH: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

/// `sink` options.
#[derive(Debug, Clone, clap::Args)]
pub struct SinkArgs {
    /// Address for OTLP/gRPC (any listener also answers OTLP/HTTP and /stats).
    #[arg(long)]
    pub grpc: Option<SocketAddr>,
    /// Address for OTLP/HTTP.
    #[arg(long)]
    pub http: Option<SocketAddr>,
    /// Address for `GET /stats` only.
    #[arg(long)]
    pub stats: Option<SocketAddr>,
    /// Validate every request with tollgate's full scan; invalid requests are answered
    /// INVALID_ARGUMENT / 400 and counted.
    #[arg(long)]
    pub verify: bool,
    /// Refuse every Nth request (gRPC UNAVAILABLE / HTTP 503), for testing clients.
    #[arg(long)]
    pub refuse_every: Option<u64>,
    /// Largest accepted body, compressed or not, in bytes.
    #[arg(long, default_value_t = 64 << 20)]
    pub max_body: usize,
}

/// The sink's counters, as `GET /stats` and the final report show them.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct SinkStats {
    /// Requests answered with success.
    pub requests: u64,
    /// Spans in those requests.
    pub spans: u64,
    /// Request body bytes as received (compressed when the sender compressed).
    pub wire_bytes: u64,
    /// Request bytes after decompression.
    pub decoded_bytes: u64,
    /// Requests refused on purpose (`--refuse-every`).
    pub refused: u64,
    /// Requests that could not be read or failed verification.
    pub errors: u64,
    /// Milliseconds since the sink started.
    pub uptime_ms: u64,
}

#[derive(Debug, Default)]
struct Counters {
    requests: AtomicU64,
    spans: AtomicU64,
    wire_bytes: AtomicU64,
    decoded_bytes: AtomicU64,
    refused: AtomicU64,
    errors: AtomicU64,
    seen: AtomicU64,
}

#[derive(Debug)]
struct State {
    counters: Counters,
    started: Instant,
    verify: bool,
    refuse_every: Option<u64>,
    max_body: usize,
}

impl State {
    fn stats(&self) -> SinkStats {
        let c = &self.counters;
        SinkStats {
            requests: c.requests.load(Relaxed),
            spans: c.spans.load(Relaxed),
            wire_bytes: c.wire_bytes.load(Relaxed),
            decoded_bytes: c.decoded_bytes.load(Relaxed),
            refused: c.refused.load(Relaxed),
            errors: c.errors.load(Relaxed),
            uptime_ms: self.started.elapsed().as_millis() as u64,
        }
    }

    /// Counts the spans of one decoded request.
    fn count(&self, msg: &[u8]) -> Result<u64, String> {
        if self.verify {
            tollgate::wire::scan(msg)
                .map(|index| index.spans.len() as u64)
                .map_err(|e| e.to_string())
        } else {
            count_spans(msg).map_err(|e| e.to_string())
        }
    }

    /// True when this request is to be refused on purpose.
    fn refuse_this(&self) -> bool {
        let n = self.counters.seen.fetch_add(1, Relaxed) + 1;
        matches!(self.refuse_every, Some(every) if every > 0 && n % every == 0)
    }
}

type Body = BoxBody<Bytes, Infallible>;

/// Runs the sink until SIGINT/SIGTERM, then prints the totals as JSON on stdout.
pub async fn run(args: SinkArgs) -> anyhow::Result<()> {
    let state = Arc::new(State {
        counters: Counters::default(),
        started: Instant::now(),
        verify: args.verify,
        refuse_every: args.refuse_every,
        max_body: args.max_body,
    });
    let mut bound = serde_json::Map::new();
    for (name, addr) in [
        ("grpc", args.grpc),
        ("http", args.http),
        ("stats", args.stats),
    ] {
        let Some(addr) = addr else { continue };
        let listener = TcpListener::bind(addr).await?;
        let local = listener.local_addr()?;
        bound.insert(name.into(), serde_json::Value::String(local.to_string()));
        tokio::spawn(serve(listener, state.clone()));
    }
    if bound.is_empty() {
        anyhow::bail!("give at least one of --grpc, --http, --stats");
    }
    // The first line on stdout says where the sink listens (ports may have been 0).
    println!("{}", serde_json::Value::Object(bound));
    info!(verify = args.verify, "Sink listening.");
    shutdown_signal().await;
    println!("{}", serde_json::to_string(&state.stats())?);
    Ok(())
}

async fn shutdown_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(error) => {
            warn!(%error, "Cannot listen for SIGTERM; stopping on SIGINT only.");
            tokio::signal::ctrl_c().await.ok();
            return;
        }
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

async fn serve(listener: TcpListener, state: Arc<State>) {
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder
        .http2()
        .initial_stream_window_size(8 << 20)
        .initial_connection_window_size(32 << 20)
        .max_frame_size(1 << 20)
        .max_concurrent_streams(1024);
    let builder = Arc::new(builder);
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(conn) => conn,
            Err(error) => {
                warn!(%error, "Accept failed.");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        if let Err(error) = stream.set_nodelay(true) {
            debug!(%peer, %error, "Cannot set TCP_NODELAY.");
        }
        let state = state.clone();
        let builder = builder.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req| handle(req, state.clone()));
            if let Err(error) = builder.serve_connection(TokioIo::new(stream), svc).await {
                debug!(%peer, %error, "Connection ended with an error.");
            }
        });
    }
}

async fn handle(req: Request<Incoming>, state: Arc<State>) -> Result<Response<Body>, Infallible> {
    let is_grpc = req
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"));
    let resp = match (req.method(), req.uri().path()) {
        (&Method::GET, "/stats") => json_response(StatusCode::OK, &state.stats()),
        (&Method::POST, GRPC_PATH) if is_grpc => grpc(req, &state).await,
        (&Method::POST, "/v1/traces") => otlp_http(req, &state).await,
        _ => plain(StatusCode::NOT_FOUND, "not found"),
    };
    Ok(resp)
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

async fn read_body(req: Request<Incoming>, limit: usize) -> Result<(HeaderMap, Bytes), String> {
    let (parts, body) = req.into_parts();
    let bytes = Limited::new(body, limit)
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    Ok((parts.headers, bytes))
}

async fn grpc(req: Request<Incoming>, state: &State) -> Response<Body> {
    let (headers, body) = match read_body(req, state.max_body).await {
        Ok(b) => b,
        Err(e) => return grpc_status(state, 8, &e),
    };
    if state.refuse_this() {
        state.counters.refused.fetch_add(1, Relaxed);
        return grpc_only_status(14, "refused by --refuse-every");
    }
    let encoding = header_str(&headers, "grpc-encoding");
    let result = (|| -> Result<(u64, u64), String> {
        let mut spans = 0;
        let mut decoded = 0;
        for (compressed, msg) in grpc_messages(&body).map_err(|e| e.to_string())? {
            let (n, len) = if compressed {
                let raw = decompress(encoding, msg, state.max_body).map_err(|e| e.to_string())?;
                (state.count(&raw)?, raw.len())
            } else {
                (state.count(msg)?, msg.len())
            };
            spans += n;
            decoded += len as u64;
        }
        Ok((spans, decoded))
    })();
    match result {
        Ok((spans, decoded)) => {
            record(state, body.len(), decoded, spans);
            // An empty ExportTraceServiceResponse, then the status in trailers.
            let mut trailers = HeaderMap::new();
            trailers.insert("grpc-status", HeaderValue::from_static("0"));
            let frames: Vec<Result<Frame<Bytes>, Infallible>> = vec![
                Ok(Frame::data(Bytes::from_static(&[0, 0, 0, 0, 0]))),
                Ok(Frame::trailers(trailers)),
            ];
            let mut resp = Response::new(StreamBody::new(futures::stream::iter(frames)).boxed());
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/grpc"),
            );
            resp
        }
        Err(e) => grpc_status(state, 3, &e),
    }
}

fn record(state: &State, wire: usize, decoded: u64, spans: u64) {
    let c = &state.counters;
    c.wire_bytes.fetch_add(wire as u64, Relaxed);
    c.decoded_bytes.fetch_add(decoded, Relaxed);
    c.spans.fetch_add(spans, Relaxed);
    c.requests.fetch_add(1, Relaxed);
}

/// Counts an error and answers with a trailers-only gRPC status.
fn grpc_status(state: &State, code: u8, message: &str) -> Response<Body> {
    state.counters.errors.fetch_add(1, Relaxed);
    warn!(code, error = %message, "Refusing a gRPC request.");
    grpc_only_status(code, message)
}

fn grpc_only_status(code: u8, message: &str) -> Response<Body> {
    let mut resp = Response::new(Full::new(Bytes::new()).boxed());
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/grpc"),
    );
    h.insert("grpc-status", HeaderValue::from(u16::from(code)));
    let msg: String = message
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .collect();
    if let Ok(v) = HeaderValue::from_str(&msg) {
        h.insert("grpc-message", v);
    }
    resp
}

async fn otlp_http(req: Request<Incoming>, state: &State) -> Response<Body> {
    let (headers, body) = match read_body(req, state.max_body).await {
        Ok(b) => b,
        Err(e) => {
            state.counters.errors.fetch_add(1, Relaxed);
            return plain(StatusCode::PAYLOAD_TOO_LARGE, &e);
        }
    };
    if state.refuse_this() {
        state.counters.refused.fetch_add(1, Relaxed);
        let mut resp = plain(StatusCode::SERVICE_UNAVAILABLE, "refused by --refuse-every");
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        return resp;
    }
    let json = header_str(&headers, "content-type").starts_with("application/json");
    let result = (|| -> Result<(u64, u64), String> {
        let raw = decompress(
            header_str(&headers, "content-encoding"),
            &body,
            state.max_body,
        )
        .map_err(|e: WireError| e.to_string())?;
        let decoded = raw.len() as u64;
        let spans = if json {
            let pb = tollgate::wire::json::json_to_protobuf(&raw).map_err(|e| e.to_string())?;
            state.count(&pb)?
        } else {
            state.count(&raw)?
        };
        Ok((spans, decoded))
    })();
    match result {
        Ok((spans, decoded)) => {
            record(state, body.len(), decoded, spans);
            let (ctype, body) = if json {
                ("application/json", Bytes::from_static(b"{}"))
            } else {
                ("application/x-protobuf", Bytes::new())
            };
            let mut resp = Response::new(Full::new(body).boxed());
            resp.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(ctype));
            resp
        }
        Err(e) => {
            state.counters.errors.fetch_add(1, Relaxed);
            warn!(error = %e, "Refusing an OTLP/HTTP request.");
            plain(StatusCode::BAD_REQUEST, &e)
        }
    }
}

fn plain(status: StatusCode, text: &str) -> Response<Body> {
    let mut resp = Response::new(Full::new(Bytes::from(text.to_string())).boxed());
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    resp
}

fn json_response<T: Serialize>(status: StatusCode, value: &T) -> Response<Body> {
    let body = serde_json::to_vec(value).unwrap_or_default();
    let mut resp = Response::new(Full::new(Bytes::from(body)).boxed());
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}
