//! The sending side: one OTLP connection over raw hyper (HTTP/2 for gRPC, HTTP/1.1 for OTLP/HTTP),
//! posting pre-encoded (and pre-compressed) bodies, with TCP_NODELAY.

use std::time::Duration;

use bytes::Bytes;
use http::{header, HeaderMap, Method, Request, Uri};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use prost::Message;
use tokio::net::TcpStream;
use tollgate::otlp::collector::trace::v1::ExportTraceServiceResponse;

use crate::sink::GRPC_PATH;
use crate::wire::{decompress, grpc_messages};

/// The OTLP transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// OTLP/gRPC (HTTP/2, `TraceService/Export`).
    Grpc,
    /// OTLP/HTTP with protobuf bodies (`POST /v1/traces`).
    Http,
    /// OTLP/HTTP with JSON bodies (`POST /v1/traces`, `application/json`), as the JavaScript
    /// SDK's `exporter-trace-otlp-http` sends them.
    HttpJson,
}

/// Why a request failed outright.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// TCP connect or handshake failed.
    #[error("connect: {0}")]
    Connect(String),
    /// The connection broke mid-request; a new one is needed.
    #[error("transport: {0}")]
    Transport(String),
    /// The server answered with a non-retryable error.
    #[error("server: {0}")]
    Server(String),
}

/// How the server answered one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Accepted; `rejected` spans were refused as a partial success.
    Accepted {
        /// `partial_success.rejected_spans`.
        rejected: u64,
    },
    /// Refused with a retryable answer (gRPC UNAVAILABLE/RESOURCE_EXHAUSTED, HTTP 429/502/503/504).
    Refused,
}

/// Where requests go.
#[derive(Debug, Clone)]
pub struct Target {
    /// `host:port` to connect to.
    pub authority: String,
    /// The full request URI.
    pub uri: Uri,
    /// The transport.
    pub protocol: Protocol,
    /// Whether bodies are gzip-compressed.
    pub gzip: bool,
}

impl Target {
    /// Parses `--endpoint` (`http://host:port` or `host:port`) for `protocol`.
    pub fn new(endpoint: &str, protocol: Protocol, gzip: bool) -> anyhow::Result<Self> {
        let base = endpoint
            .trim_end_matches('/')
            .trim_start_matches("http://")
            .to_string();
        if base.contains("://") {
            anyhow::bail!("only plain http:// endpoints are supported, got {endpoint}");
        }
        let (authority, path) = match base.split_once('/') {
            Some((a, p)) => (a.to_string(), format!("/{p}")),
            None => (base.clone(), String::new()),
        };
        let path = match protocol {
            Protocol::Grpc => GRPC_PATH.to_string(),
            Protocol::Http | Protocol::HttpJson if path.is_empty() => "/v1/traces".to_string(),
            Protocol::Http | Protocol::HttpJson => path,
        };
        let uri: Uri = format!("http://{authority}{path}").parse()?;
        Ok(Self {
            authority,
            uri,
            protocol,
            gzip,
        })
    }

    /// The `Content-Type` of an OTLP/HTTP request.
    pub fn content_type(&self) -> &'static str {
        match self.protocol {
            Protocol::HttpJson => "application/json",
            _ => "application/x-protobuf",
        }
    }

    /// Turns an encoded request into the body this target sends (framed or rendered as OTLP/JSON,
    /// maybe compressed), with the length of the uncompressed payload.
    pub fn body(&self, request: &[u8]) -> anyhow::Result<(usize, Bytes)> {
        let json;
        let request = if self.protocol == Protocol::HttpJson {
            json = tollgate::wire::json::protobuf_to_json(request)?;
            &json[..]
        } else {
            request
        };
        let payload = if self.gzip {
            crate::wire::gzip(request, 6)
        } else {
            request.to_vec()
        };
        let body = match self.protocol {
            Protocol::Grpc => Bytes::from(crate::wire::grpc_frame(&payload, self.gzip)),
            Protocol::Http | Protocol::HttpJson => Bytes::from(payload),
        };
        Ok((request.len(), body))
    }
}

/// One open connection.
#[derive(Debug)]
pub enum Conn {
    /// HTTP/2; clones share the connection (one stream per request).
    H2(http2::SendRequest<Full<Bytes>>),
    /// HTTP/1.1; one request at a time.
    H1(http1::SendRequest<Full<Bytes>>),
}

async fn tcp(authority: &str) -> Result<TokioIo<TcpStream>, ClientError> {
    let stream = TcpStream::connect(authority)
        .await
        .map_err(|e| ClientError::Connect(e.to_string()))?;
    stream
        .set_nodelay(true)
        .map_err(|e| ClientError::Connect(e.to_string()))?;
    Ok(TokioIo::new(stream))
}

impl Conn {
    /// Another handle on the same connection (HTTP/2 only: HTTP/1.1 carries one request at a time).
    pub fn share(&self) -> Option<Conn> {
        match self {
            Conn::H2(send) => Some(Conn::H2(send.clone())),
            Conn::H1(_) => None,
        }
    }

    /// Opens a connection to `target`.
    pub async fn open(target: &Target) -> Result<Self, ClientError> {
        let io = tcp(&target.authority).await?;
        match target.protocol {
            Protocol::Grpc => {
                let (send, conn) = http2::Builder::new(TokioExecutor::new())
                    .initial_stream_window_size(4 << 20)
                    .initial_connection_window_size(16 << 20)
                    .handshake(io)
                    .await
                    .map_err(|e| ClientError::Connect(e.to_string()))?;
                tokio::spawn(conn);
                Ok(Conn::H2(send))
            }
            Protocol::Http | Protocol::HttpJson => {
                let (send, conn) = http1::handshake(io)
                    .await
                    .map_err(|e| ClientError::Connect(e.to_string()))?;
                tokio::spawn(conn);
                Ok(Conn::H1(send))
            }
        }
    }

    /// Sends one prepared body and classifies the answer.
    pub async fn send(&mut self, target: &Target, body: Bytes) -> Result<Outcome, ClientError> {
        let transport = |e: hyper::Error| ClientError::Transport(e.to_string());
        match self {
            Conn::H2(send) => {
                let mut req = Request::builder()
                    .method(Method::POST)
                    .uri(target.uri.clone())
                    .header(header::CONTENT_TYPE, "application/grpc")
                    .header(header::TE, "trailers");
                if target.gzip {
                    req = req.header("grpc-encoding", "gzip");
                }
                let req = req
                    .body(Full::new(body))
                    .map_err(|e| ClientError::Transport(e.to_string()))?;
                send.ready().await.map_err(transport)?;
                let resp = send.send_request(req).await.map_err(transport)?;
                let (parts, body) = resp.into_parts();
                if !parts.status.is_success() {
                    return Err(ClientError::Server(format!("HTTP {}", parts.status)));
                }
                // A trailers-only answer carries the status in the headers.
                if parts.headers.contains_key("grpc-status") {
                    return grpc_outcome(&parts.headers, &[]);
                }
                let collected = body.collect().await.map_err(transport)?;
                let trailers = collected.trailers().cloned().unwrap_or_default();
                let data = collected.to_bytes();
                let encoding = parts
                    .headers
                    .get("grpc-encoding")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("");
                let mut msg = Vec::new();
                if let Ok(msgs) = grpc_messages(&data) {
                    if let Some((compressed, m)) = msgs.first() {
                        msg = if *compressed {
                            decompress(encoding, m, 1 << 20).unwrap_or_default()
                        } else {
                            m.to_vec()
                        };
                    }
                }
                grpc_outcome(&trailers, &msg)
            }
            Conn::H1(send) => {
                let mut req = Request::builder()
                    .method(Method::POST)
                    .uri(target.uri.path())
                    .header(header::HOST, target.authority.as_str())
                    .header(header::CONTENT_TYPE, target.content_type());
                if target.gzip {
                    req = req.header(header::CONTENT_ENCODING, "gzip");
                }
                let req = req
                    .body(Full::new(body))
                    .map_err(|e| ClientError::Transport(e.to_string()))?;
                send.ready().await.map_err(transport)?;
                let resp = send.send_request(req).await.map_err(transport)?;
                let status = resp.status();
                let data = resp
                    .into_body()
                    .collect()
                    .await
                    .map_err(transport)?
                    .to_bytes();
                match status.as_u16() {
                    200..=299 => Ok(Outcome::Accepted {
                        rejected: if target.protocol == Protocol::HttpJson {
                            rejected_spans_json(&data)
                        } else {
                            rejected_spans(&data)
                        },
                    }),
                    429 | 502 | 503 | 504 => Ok(Outcome::Refused),
                    _ => Err(ClientError::Server(format!(
                        "HTTP {status}: {}",
                        String::from_utf8_lossy(&data[..data.len().min(200)])
                    ))),
                }
            }
        }
    }
}

/// `partialSuccess.rejectedSpans` of an OTLP/JSON answer (a number or, per proto3 JSON, a string).
fn rejected_spans_json(body: &[u8]) -> u64 {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) else {
        return 0;
    };
    match value.pointer("/partialSuccess/rejectedSpans") {
        Some(serde_json::Value::Number(n)) => n.as_u64().unwrap_or(0),
        Some(serde_json::Value::String(s)) => s.parse().unwrap_or(0),
        _ => 0,
    }
}

fn rejected_spans(msg: &[u8]) -> u64 {
    ExportTraceServiceResponse::decode(msg)
        .ok()
        .and_then(|r| r.partial_success)
        .map_or(0, |p| p.rejected_spans.max(0) as u64)
}

fn grpc_outcome(status_headers: &HeaderMap, msg: &[u8]) -> Result<Outcome, ClientError> {
    let code = status_headers
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u32>().ok());
    match code {
        Some(0) => Ok(Outcome::Accepted {
            rejected: rejected_spans(msg),
        }),
        // UNAVAILABLE, RESOURCE_EXHAUSTED: retryable refusals.
        Some(14) | Some(8) => Ok(Outcome::Refused),
        Some(code) => {
            let message = status_headers
                .get("grpc-message")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            Err(ClientError::Server(format!(
                "grpc-status {code}: {message}"
            )))
        }
        None => Err(ClientError::Server("no grpc-status".into())),
    }
}

/// GETs `url` (plain http) and returns the body, for reading the sink's `/stats`.
pub async fn http_get(url: &str) -> anyhow::Result<Bytes> {
    let uri: Uri = url.parse()?;
    let authority = uri
        .authority()
        .ok_or_else(|| anyhow::anyhow!("no host in {url}"))?
        .to_string();
    let fut = async {
        let io = tcp(&authority).await?;
        let (mut send, conn) = http1::handshake(io).await?;
        tokio::spawn(conn);
        let req = Request::builder()
            .uri(uri.path())
            .header(header::HOST, authority.as_str())
            .body(Full::new(Bytes::new()))?;
        let resp = send.send_request(req).await?;
        if !resp.status().is_success() {
            anyhow::bail!("GET {url}: HTTP {}", resp.status());
        }
        Ok(resp.into_body().collect().await?.to_bytes())
    };
    tokio::time::timeout(Duration::from_secs(10), fut)
        .await
        .map_err(|_| anyhow::anyhow!("GET {url} timed out"))?
}
