//! OTLP/gRPC: raw encoded requests over a tonic `Channel` (HTTP/2, TLS, reconnects), framed and
//! compressed here so the compression level is ours (tonic hard-codes gzip level 6).

use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE, TE};
use http_body_util::BodyExt;
use prost::Message;
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};
use tower::ServiceExt;

use super::config::Compression;
use super::otlp_http::{error_chain, partial_outcome};
use super::retry::classify_grpc;
use super::tls::TlsSettings;
use super::transport::{compress_after, Body, Outcome, Transport};
use super::ExportError;
use crate::grpc_status::RpcStatus;

/// The Export method's path.
const EXPORT_PATH: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

/// Everything a gRPC destination differs in.
#[derive(Debug, Clone)]
pub(crate) struct GrpcSpec {
    /// `http(s)://host:port`.
    pub endpoint: String,
    /// Metadata on every request (auth, tenant, ...).
    pub headers: HeaderMap,
    pub compression: Compression,
    pub level: u32,
    pub tls: TlsSettings,
}

pub(crate) struct GrpcTransport {
    channel: Channel,
    spec: GrpcSpec,
}

impl GrpcTransport {
    /// Builds a lazily connecting channel (reads `ca_file`).
    pub(crate) fn build(spec: GrpcSpec) -> Result<Self, ExportError> {
        super::tls::install_crypto_provider();
        let mut ep = Endpoint::from_shared(spec.endpoint.clone())
            .map_err(|e| ExportError::Invalid {
                name: String::new(),
                reason: format!("bad endpoint {}: {e}", spec.endpoint),
            })?
            .tcp_nodelay(true)
            .connect_timeout(Duration::from_secs(10))
            .user_agent(super::USER_AGENT)
            .map_err(|e| ExportError::Tls(e.to_string()))?;
        if spec.endpoint.to_ascii_lowercase().starts_with("https://") {
            let mut tls = ClientTlsConfig::new()
                .with_webpki_roots()
                .with_native_roots();
            if let Some(pem) = spec.tls.ca_pem()? {
                tls = tls.ca_certificate(tonic::transport::Certificate::from_pem(pem));
            }
            ep = ep
                .tls_config(tls)
                .map_err(|e| ExportError::Tls(error_chain(&e)))?;
        }
        Ok(Self {
            channel: ep.connect_lazy(),
            spec,
        })
    }
}

/// A gRPC message frame: compressed flag, big-endian length, then the (compressed) payload,
/// compressed straight into the frame buffer.
fn frame(body: &Body, compression: Compression, level: u32) -> std::io::Result<Bytes> {
    let mut out = Vec::with_capacity(5 + body.len() / 4);
    out.extend_from_slice(&[u8::from(compression != Compression::None), 0, 0, 0, 0]);
    let mut out = compress_after(out, body.parts(), compression, level)?;
    let len = u32::try_from(out.len() - 5)
        .map_err(|_| std::io::Error::other("message larger than 4 GiB"))?;
    out[1..5].copy_from_slice(&len.to_be_bytes());
    Ok(Bytes::from(out))
}

#[async_trait::async_trait]
impl Transport for GrpcTransport {
    async fn send(&self, body: Body) -> Outcome {
        let framed = match frame(&body, self.spec.compression, self.spec.level) {
            Ok(f) => f,
            Err(e) => {
                return Outcome::Drop {
                    reason: "encode_error",
                    detail: e.to_string(),
                }
            }
        };
        let mut req = http::Request::new(tonic::body::Body::new(http_body_util::Full::new(framed)));
        *req.method_mut() = http::Method::POST;
        *req.uri_mut() = http::Uri::from_static(EXPORT_PATH);
        let h = req.headers_mut();
        h.extend(self.spec.headers.clone());
        h.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
        h.insert(TE, HeaderValue::from_static("trailers"));
        let encoding = match self.spec.compression {
            Compression::Gzip => Some("gzip"),
            Compression::Zstd => Some("zstd"),
            Compression::None => None,
        };
        if let Some(enc) = encoding {
            h.insert(
                HeaderName::from_static("grpc-encoding"),
                HeaderValue::from_static(enc),
            );
        }
        h.insert(
            HeaderName::from_static("grpc-accept-encoding"),
            HeaderValue::from_static("identity"),
        );
        let resp = match self.channel.clone().oneshot(req).await {
            Ok(r) => r,
            Err(e) => {
                return Outcome::Retry {
                    delay: None,
                    reason: "connection",
                    detail: error_chain(&e),
                }
            }
        };
        let (parts, body) = resp.into_parts();
        if parts.status != http::StatusCode::OK {
            // Not a gRPC answer (a proxy's): map like gRPC's HTTP-to-status table.
            let detail = format!("HTTP {} from a gRPC endpoint", parts.status);
            return match parts.status.as_u16() {
                429 | 502 | 503 | 504 => Outcome::Retry {
                    delay: None,
                    reason: "http_status",
                    detail,
                },
                _ => Outcome::Drop {
                    reason: "permanent_error",
                    detail,
                },
            };
        }
        // A trailers-only answer carries the status in the headers.
        if let Some(status) = tonic::Status::from_header_map(&parts.headers) {
            if status.code() != tonic::Code::Ok {
                return status_outcome(&status);
            }
        }
        let collected = match body.collect().await {
            Ok(c) => c,
            Err(e) => {
                return Outcome::Retry {
                    delay: None,
                    reason: "connection",
                    detail: error_chain(&e),
                }
            }
        };
        let trailers = collected.trailers().cloned().unwrap_or_default();
        let data = collected.to_bytes();
        match tonic::Status::from_header_map(&trailers) {
            Some(s) if s.code() != tonic::Code::Ok => status_outcome(&s),
            Some(_) => match data.get(5..) {
                Some(msg) if data[0] == 0 => partial_outcome(msg, false),
                _ => Outcome::Success,
            },
            None => Outcome::Retry {
                delay: None,
                reason: "protocol_error",
                detail: "gRPC answer without grpc-status".into(),
            },
        }
    }
}

/// Classifies a non-OK status, reading RetryInfo from its details.
fn status_outcome(status: &tonic::Status) -> Outcome {
    let delay = retry_info_delay(status.details());
    let detail = format!("gRPC {:?}: {}", status.code(), status.message());
    Outcome::refused(classify_grpc(status.code(), delay), "grpc_status", detail)
}

/// Reads `RetryInfo.retry_delay` from encoded `google.rpc.Status` details.
pub fn retry_info_delay(details: &[u8]) -> Option<Duration> {
    if details.is_empty() {
        return None;
    }
    RpcStatus::decode(details).ok()?.retry_delay()
}

/// Encodes `google.rpc.Status` details carrying a RetryInfo (for servers and tests).
pub fn retry_info_details(code: tonic::Code, message: &str, delay: Duration) -> Bytes {
    Bytes::from(
        RpcStatus::new(code, message)
            .with_retry_after(delay)
            .encode_to_vec(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_info_round_trip() {
        let d = retry_info_details(
            tonic::Code::ResourceExhausted,
            "slow down",
            Duration::from_millis(1500),
        );
        assert_eq!(retry_info_delay(&d), Some(Duration::from_millis(1500)));
        let none = RpcStatus {
            code: 8,
            message: "x".into(),
            details: vec![],
        }
        .encode_to_vec();
        assert_eq!(retry_info_delay(&none), None);
        assert_eq!(retry_info_delay(b""), None);
    }

    #[test]
    fn frame_layout() {
        let f = frame(
            &Body::from(Bytes::from_static(b"abc")),
            Compression::None,
            1,
        )
        .unwrap();
        assert_eq!(&f[..], &[0, 0, 0, 0, 3, b'a', b'b', b'c']);
        let body = b"abcabcabcabcabcabc".repeat(20);
        let f = frame(&Body::from(Bytes::from(body.clone())), Compression::Gzip, 1).unwrap();
        assert_eq!(f[0], 1);
        let len = u32::from_be_bytes(f[1..5].try_into().unwrap()) as usize;
        assert_eq!(len, f.len() - 5);
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&f[5..]), &mut out).unwrap();
        assert_eq!(out, body);
    }
}
