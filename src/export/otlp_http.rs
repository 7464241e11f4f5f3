//! OTLP/HTTP: the one HTTP client every HTTP destination (otlp_http, langfuse, tempo and
//! honeycomb over HTTP) uses; the presets only supply URL, headers and response rules.

use bytes::Bytes;
use prost::Message;
use reqwest::header::{HeaderMap, HeaderValue, CONTENT_ENCODING, CONTENT_TYPE, RETRY_AFTER};

use super::config::{Compression, Encoding};
use super::retry::classify_http;
use super::tls::TlsSettings;
use super::transport::{compress, Body, Outcome, Transport};
use super::ExportError;
use crate::otlp::collector::trace::v1::ExportTraceServiceResponse;

/// How to read a 2xx answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ResponseKind {
    /// An `ExportTraceServiceResponse` (partial success is read).
    Otlp,
    /// Any 2xx is success; the body is not OTLP and is not decoded (Langfuse).
    AnySuccess,
}

/// Everything an HTTP destination differs in.
#[derive(Debug, Clone)]
pub(crate) struct HttpSpec {
    /// The full traces URL.
    pub url: String,
    /// Headers on every request (auth, tenant, ...).
    pub headers: HeaderMap,
    pub encoding: Encoding,
    pub compression: Compression,
    pub level: u32,
    pub response: ResponseKind,
    pub tls: TlsSettings,
}

pub(crate) struct HttpTransport {
    client: reqwest::Client,
    spec: HttpSpec,
}

impl HttpTransport {
    /// Builds the client (reads `ca_file`).
    pub(crate) fn build(spec: HttpSpec) -> Result<Self, ExportError> {
        super::tls::install_crypto_provider();
        let mut b = reqwest::Client::builder()
            .tcp_nodelay(true)
            .user_agent(super::USER_AGENT)
            .default_headers(spec.headers.clone());
        if let Some(pem) = spec.tls.ca_pem()? {
            for cert in reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| ExportError::Tls(e.to_string()))?
            {
                b = b.add_root_certificate(cert);
            }
        }
        let client = b.build().map_err(|e| ExportError::Tls(e.to_string()))?;
        Ok(Self { client, spec })
    }
}

#[async_trait::async_trait]
impl Transport for HttpTransport {
    async fn send(&self, body: Body) -> Outcome {
        let (content_type, raw) = match self.spec.encoding {
            Encoding::Protobuf => ("application/x-protobuf", body),
            Encoding::Json => match crate::wire::json::protobuf_to_json(&body.to_bytes()) {
                Ok(j) => ("application/json", Body::from(Bytes::from(j))),
                Err(e) => {
                    return Outcome::Drop {
                        reason: "encode_error",
                        detail: e.to_string(),
                    }
                }
            },
        };
        let payload = match compress(&raw, self.spec.compression, self.spec.level) {
            Ok(p) => p,
            Err(e) => {
                return Outcome::Drop {
                    reason: "encode_error",
                    detail: e.to_string(),
                }
            }
        };
        let mut req = self
            .client
            .post(&self.spec.url)
            .header(CONTENT_TYPE, HeaderValue::from_static(content_type));
        match self.spec.compression {
            Compression::Gzip => req = req.header(CONTENT_ENCODING, "gzip"),
            Compression::Zstd => req = req.header(CONTENT_ENCODING, "zstd"),
            Compression::None => {}
        }
        let resp = match req.body(payload).send().await {
            Ok(r) => r,
            Err(e) => {
                return Outcome::Retry {
                    delay: None,
                    reason: if e.is_timeout() {
                        "timeout"
                    } else {
                        "connection"
                    },
                    detail: error_chain(&e),
                }
            }
        };
        let status = resp.status();
        if status.is_success() {
            if self.spec.response == ResponseKind::AnySuccess {
                return Outcome::Success;
            }
            let is_json = resp
                .headers()
                .get(CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.contains("json"));
            let Ok(body) = resp.bytes().await else {
                return Outcome::Success;
            };
            return partial_outcome(&body, is_json);
        }
        let retry_after = resp
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let text = resp.text().await.unwrap_or_default();
        let detail = format!("HTTP {status}: {}", truncate(&text, 300));
        Outcome::refused(
            classify_http(status.as_u16(), retry_after.as_deref()),
            "http_status",
            detail,
        )
    }
}

/// Reads `partial_success` from an OTLP response body; an empty or unreadable body is success.
pub(crate) fn partial_outcome(body: &[u8], is_json: bool) -> Outcome {
    if body.is_empty() {
        return Outcome::Success;
    }
    let partial = if is_json {
        json_partial(body)
    } else {
        ExportTraceServiceResponse::decode(body)
            .ok()
            .and_then(|r| r.partial_success)
            .map(|p| (p.rejected_spans, p.error_message))
    };
    match partial {
        Some((rejected, message)) if rejected > 0 || !message.is_empty() => {
            Outcome::Partial { rejected, message }
        }
        _ => Outcome::Success,
    }
}

/// Reads `partialSuccess` from an OTLP/JSON response; `rejectedSpans` is an int64, which
/// proto3 JSON writes as a string but some servers write as a number.
fn json_partial(body: &[u8]) -> Option<(i64, String)> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    let p = v
        .get("partialSuccess")
        .or_else(|| v.get("partial_success"))?;
    let rejected = p.get("rejectedSpans").or_else(|| p.get("rejected_spans"));
    let rejected = match rejected {
        Some(serde_json::Value::Number(n)) => n.as_i64().unwrap_or(0),
        Some(serde_json::Value::String(s)) => s.parse().unwrap_or(0),
        _ => 0,
    };
    let message = p
        .get("errorMessage")
        .or_else(|| p.get("error_message"))
        .and_then(|m| m.as_str())
        .unwrap_or_default()
        .to_owned();
    Some((rejected, message))
}

fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// An error with its `source()` chain, for logs.
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_success_from_json_string_or_number() {
        let p = |s: &str| partial_outcome(s.as_bytes(), true);
        let want = Outcome::Partial {
            rejected: 2,
            message: "x".into(),
        };
        assert_eq!(
            p(r#"{"partialSuccess":{"rejectedSpans":"2","errorMessage":"x"}}"#),
            want
        );
        assert_eq!(
            p(r#"{"partialSuccess":{"rejectedSpans":2,"errorMessage":"x"}}"#),
            want
        );
        assert_eq!(p(r#"{"partialSuccess":{}}"#), Outcome::Success);
        assert_eq!(p("{}"), Outcome::Success);
        assert_eq!(p(""), Outcome::Success);
        assert_eq!(p("not json"), Outcome::Success);
    }

    #[test]
    fn partial_success_from_protobuf() {
        use crate::otlp::collector::trace::v1::ExportTracePartialSuccess;
        let r = ExportTraceServiceResponse {
            partial_success: Some(ExportTracePartialSuccess {
                rejected_spans: 3,
                error_message: "bad".into(),
            }),
        };
        let want = Outcome::Partial {
            rejected: 3,
            message: "bad".into(),
        };
        assert_eq!(partial_outcome(&r.encode_to_vec(), false), want);
        let empty = ExportTraceServiceResponse::default().encode_to_vec();
        assert_eq!(partial_outcome(&empty, false), Outcome::Success);
    }
}
