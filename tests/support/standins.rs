//! Stand-in backends on 127.0.0.1:0 that enforce each service's documented wire rules
//! (`shared/reference/backends.md`), so a request they accept is one the real service accepts.
//! Each records what it accepted, decoded with prost.

use std::collections::VecDeque;
use std::io::Read;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use parking_lot::Mutex;
use prost::Message;
use tokio::net::TcpListener;
use tollgate::otlp::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use tollgate::otlp::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use tonic::codec::CompressionEncoding;

/// One accepted request.
#[derive(Debug, Clone)]
pub struct Received {
    /// HTTP path (or the gRPC method path).
    pub path: String,
    /// Request headers / metadata.
    pub headers: HeaderMap,
    /// The decoded request.
    pub request: ExportTraceServiceRequest,
    /// The body's size on the wire (compressed).
    pub wire_bytes: usize,
    /// The decoded body's size.
    pub raw_bytes: usize,
}

/// What a stand-in has seen.
#[derive(Default)]
pub struct Record {
    /// Requests accepted.
    pub received: Mutex<Vec<Received>>,
    /// Every request, accepted or not.
    pub attempts: Mutex<usize>,
    /// Rejections: (status, reason).
    pub rejections: Mutex<Vec<(u16, String)>>,
}

impl Record {
    /// Spans accepted so far.
    pub fn spans(&self) -> usize {
        self.received
            .lock()
            .iter()
            .map(|r| super::span_names(&r.request).len())
            .sum()
    }
    /// Names of every accepted span.
    pub fn span_names(&self) -> Vec<String> {
        self.received
            .lock()
            .iter()
            .flat_map(|r| super::span_names(&r.request))
            .collect()
    }
    /// Requests seen (accepted or not).
    pub fn attempts(&self) -> usize {
        *self.attempts.lock()
    }
}

/// A scripted answer of the generic sink.
#[derive(Debug, Clone)]
pub enum Reply {
    /// Accept.
    Ok,
    /// HTTP status (gRPC: mapped to a code by the gRPC sink; use `Grpc` instead there).
    Http(u16),
    /// HTTP status with a Retry-After value.
    HttpRetryAfter(u16, String),
    /// Accept with a partial_success.
    Partial(i64, String),
    /// Never answer.
    Hang,
    /// A gRPC status without details.
    Grpc(tonic::Code),
    /// A gRPC status carrying google.rpc.RetryInfo.
    GrpcRetryInfo(tonic::Code, Duration),
}

/// Which service's rules an HTTP stand-in enforces.
#[derive(Debug, Clone)]
pub enum Rules {
    /// Langfuse's OTLP endpoint.
    Langfuse {
        public_key: String,
        secret_key: String,
    },
    /// Tempo's OTLP/HTTP receiver; `tenant` if multi-tenant.
    Tempo { tenant: Option<String> },
    /// Honeycomb; `dataset` for a classic key.
    Honeycomb {
        api_key: String,
        dataset: Option<String>,
    },
    /// A generic OTLP sink answering from a script (then Ok).
    Generic,
}

/// A running stand-in.
pub struct Standin {
    /// Where it listens.
    pub addr: SocketAddr,
    /// What it saw.
    pub record: Arc<Record>,
    /// The script (generic sinks).
    pub script: Arc<Mutex<VecDeque<Reply>>>,
}

impl Standin {
    /// `http://addr`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
    /// Appends scripted replies.
    pub fn push(&self, replies: impl IntoIterator<Item = Reply>) {
        self.script.lock().extend(replies);
    }
}

struct HttpState {
    rules: Rules,
    record: Arc<Record>,
    script: Arc<Mutex<VecDeque<Reply>>>,
}

/// Starts an HTTP stand-in.
pub async fn http(rules: Rules) -> Standin {
    let record = Arc::new(Record::default());
    let script = Arc::new(Mutex::new(VecDeque::new()));
    let limit = match rules {
        Rules::Tempo { .. } => 20 << 20, // Tempo's default HTTP body limit.
        _ => 512 << 20,
    };
    let state = Arc::new(HttpState {
        rules,
        record: record.clone(),
        script: script.clone(),
    });
    let app = axum::Router::new()
        .fallback(axum::routing::post(http_handler))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(state);
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await.ok() });
    Standin {
        addr,
        record,
        script,
    }
}

fn reject(rec: &Record, status: u16, reason: impl Into<String>) -> Response {
    let reason = reason.into();
    rec.rejections.lock().push((status, reason.clone()));
    (StatusCode::from_u16(status).expect("status"), reason).into_response()
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

fn decompress(enc: Option<&str>, body: &[u8]) -> Result<Vec<u8>, String> {
    match enc {
        None | Some("identity") => Ok(body.to_vec()),
        Some("gzip") => {
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(body)
                .read_to_end(&mut out)
                .map_err(|e| e.to_string())?;
            Ok(out)
        }
        Some("zstd") => zstd::stream::decode_all(body).map_err(|e| e.to_string()),
        Some(other) => Err(format!("unsupported encoding {other}")),
    }
}

/// Trace ids must be 16 bytes, span ids 8 bytes, neither all zero.
fn ids_valid(req: &ExportTraceServiceRequest) -> bool {
    req.resource_spans
        .iter()
        .flat_map(|r| &r.scope_spans)
        .flat_map(|s| &s.spans)
        .all(|s| {
            s.trace_id.len() == 16
                && s.span_id.len() == 8
                && s.trace_id.iter().any(|b| *b != 0)
                && s.span_id.iter().any(|b| *b != 0)
        })
}

async fn http_handler(
    State(st): State<Arc<HttpState>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let rec = &st.record;
    *rec.attempts.lock() += 1;
    let path = uri.path().to_owned();
    let ctype = header(&headers, "content-type").unwrap_or("").to_owned();
    let enc = header(&headers, "content-encoding");
    let mut json = ctype.contains("application/json");
    match &st.rules {
        Rules::Langfuse {
            public_key,
            secret_key,
        } => {
            if path != "/api/public/otel/v1/traces" {
                return reject(rec, 404, "wrong path");
            }
            let want = format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD
                    .encode(format!("{public_key}:{secret_key}"))
            );
            if header(&headers, "authorization") != Some(want.as_str()) {
                return reject(rec, 401, "bad credentials");
            }
            if header(&headers, "x-langfuse-ingestion-version") != Some("4") {
                return reject(rec, 400, "ingestion version must be 4");
            }
            if !ctype.contains("application/x-protobuf") && !json {
                return reject(rec, 400, "unsupported content type");
            }
            if !matches!(enc, None | Some("gzip")) {
                return reject(rec, 400, "only gzip is decoded");
            }
        }
        Rules::Tempo { tenant } => {
            if path != "/v1/traces" {
                return reject(rec, 404, "wrong path");
            }
            let ids: Vec<_> = headers.get_all("x-scope-orgid").iter().collect();
            if let Some(t) = tenant {
                if ids.len() != 1 || ids[0] != t.as_str() {
                    return reject(
                        rec,
                        401,
                        "exactly one X-Scope-OrgID with the tenant is required",
                    );
                }
            }
            if !ctype.starts_with("application/x-protobuf") && !json {
                return reject(rec, 415, "unsupported content type");
            }
        }
        Rules::Honeycomb { api_key, dataset } => {
            if path != "/v1/traces" {
                return reject(rec, 404, "wrong path");
            }
            if header(&headers, "x-honeycomb-team") != Some(api_key.as_str()) {
                return reject(rec, 401, "missing or wrong x-honeycomb-team");
            }
            if header(&headers, "x-honeycomb-dataset") != dataset.as_deref() {
                return reject(rec, 400, "dataset header does not match the key type");
            }
            match ctype.as_str() {
                "application/x-protobuf" | "application/protobuf" => json = false,
                "application/json" => json = true,
                _ => {
                    return reject(
                        rec,
                        415,
                        format!("content type must match exactly, got {ctype:?}"),
                    )
                }
            }
        }
        Rules::Generic => {
            if path != "/v1/traces" {
                return reject(rec, 404, "wrong path");
            }
        }
    }
    let raw = match decompress(enc, &body) {
        Ok(r) => r,
        Err(e) => return reject(rec, 400, e),
    };
    let decoded = if json {
        serde_json::from_slice::<ExportTraceServiceRequest>(&raw).map_err(|e| e.to_string())
    } else {
        ExportTraceServiceRequest::decode(&raw[..]).map_err(|e| e.to_string())
    };
    let request = match decoded {
        Ok(r) => r,
        Err(e) => return reject(rec, 400, e),
    };
    if !ids_valid(&request) {
        return reject(rec, 400, "invalid trace or span id");
    }
    let reply = st.script.lock().pop_front().unwrap_or(Reply::Ok);
    let partial = match reply {
        Reply::Ok => None,
        Reply::Partial(n, m) => Some(ExportTracePartialSuccess {
            rejected_spans: n,
            error_message: m,
        }),
        Reply::Http(s) => return reject(rec, s, "scripted"),
        Reply::HttpRetryAfter(s, ra) => {
            rec.rejections.lock().push((s, "scripted".into()));
            return (
                StatusCode::from_u16(s).expect("status"),
                [("retry-after", ra)],
                "slow down",
            )
                .into_response();
        }
        Reply::Hang => {
            std::future::pending::<()>().await;
            unreachable!()
        }
        Reply::Grpc(_) | Reply::GrpcRetryInfo(..) => {
            return reject(rec, 500, "gRPC reply scripted on HTTP")
        }
    };
    rec.received.lock().push(Received {
        path,
        headers: headers.clone(),
        request,
        wire_bytes: body.len(),
        raw_bytes: raw.len(),
    });
    if let Rules::Langfuse { .. } = st.rules {
        return (
            StatusCode::OK,
            [("content-type", "application/json")],
            "{\"ok\":true}",
        )
            .into_response();
    }
    let resp = ExportTraceServiceResponse {
        partial_success: partial,
    };
    if json {
        let body = serde_json::to_vec(&resp).expect("json");
        (StatusCode::OK, [("content-type", "application/json")], body).into_response()
    } else {
        (
            StatusCode::OK,
            [("content-type", "application/x-protobuf")],
            resp.encode_to_vec(),
        )
            .into_response()
    }
}

struct GrpcSvc {
    rules: Rules,
    record: Arc<Record>,
    script: Arc<Mutex<VecDeque<Reply>>>,
}

#[tonic::async_trait]
impl TraceService for GrpcSvc {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        *self.record.attempts.lock() += 1;
        let headers = request.metadata().clone().into_headers();
        let reject = |code: tonic::Code, msg: &str| {
            self.record
                .rejections
                .lock()
                .push((code as u16, msg.to_owned()));
            Err(tonic::Status::new(code, msg))
        };
        match &self.rules {
            Rules::Tempo { tenant: Some(t) } => {
                let ids: Vec<_> = headers.get_all("x-scope-orgid").iter().collect();
                if ids.len() != 1 || ids[0] != t.as_str() {
                    return reject(
                        tonic::Code::Unauthenticated,
                        "exactly one X-Scope-OrgID is required",
                    );
                }
            }
            Rules::Honeycomb { api_key, dataset } => {
                if header(&headers, "x-honeycomb-team") != Some(api_key.as_str()) {
                    return reject(tonic::Code::Unauthenticated, "missing x-honeycomb-team");
                }
                if header(&headers, "x-honeycomb-dataset") != dataset.as_deref() {
                    return reject(
                        tonic::Code::InvalidArgument,
                        "dataset header does not match",
                    );
                }
            }
            _ => {}
        }
        let req = request.into_inner();
        // Tempo's (grpc-go's) default 4 MiB receive limit, on the decoded message.
        if matches!(self.rules, Rules::Tempo { .. }) && req.encoded_len() > 4 << 20 {
            return reject(
                tonic::Code::ResourceExhausted,
                "message larger than max (4194304)",
            );
        }
        if !ids_valid(&req) {
            return reject(tonic::Code::InvalidArgument, "invalid trace or span id");
        }
        let reply = self.script.lock().pop_front().unwrap_or(Reply::Ok);
        let partial = match reply {
            Reply::Ok => None,
            Reply::Partial(n, m) => Some(ExportTracePartialSuccess {
                rejected_spans: n,
                error_message: m,
            }),
            Reply::Hang => {
                std::future::pending::<()>().await;
                unreachable!()
            }
            Reply::Grpc(code) => return reject(code, "scripted"),
            Reply::GrpcRetryInfo(code, d) => {
                self.record
                    .rejections
                    .lock()
                    .push((code as u16, "scripted".into()));
                let details = tollgate::export::otlp_grpc::retry_info_details(code, "scripted", d);
                return Err(tonic::Status::with_details(code, "scripted", details));
            }
            Reply::Http(_) | Reply::HttpRetryAfter(..) => {
                return reject(tonic::Code::Internal, "HTTP reply on gRPC")
            }
        };
        let raw_bytes = req.encoded_len();
        self.record.received.lock().push(Received {
            path: "/opentelemetry.proto.collector.trace.v1.TraceService/Export".into(),
            headers,
            request: req,
            wire_bytes: 0,
            raw_bytes,
        });
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: partial,
        }))
    }
}

/// Starts a gRPC stand-in (gzip and zstd accepted). Tempo rules refuse messages over 4 MiB
/// with RESOURCE_EXHAUSTED (no RetryInfo), as Tempo does.
pub async fn grpc(rules: Rules) -> Standin {
    let record = Arc::new(Record::default());
    let script = Arc::new(Mutex::new(VecDeque::new()));
    let svc = GrpcSvc {
        rules,
        record: record.clone(),
        script: script.clone(),
    };
    let server = TraceServiceServer::new(svc)
        .accept_compressed(CompressionEncoding::Gzip)
        .accept_compressed(CompressionEncoding::Zstd)
        .max_decoding_message_size(64 << 20);
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
    tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(server)
            .serve_with_incoming(incoming)
            .await
            .ok()
    });
    Standin {
        addr,
        record,
        script,
    }
}
