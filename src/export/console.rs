//! `console`: one human-readable line per span on stdout (the default when no backend is set).

use tokio::io::AsyncWriteExt;

use super::transport::{Body, Outcome, Transport};
use crate::wire::{scan, AttrValue, SpanAttrs, SpanRef};

pub(crate) struct ConsoleTransport;

/// Renders one line per span: service, name, duration, and cost / `tollgate.*` attributes.
pub fn summarize(body: &[u8]) -> Result<String, crate::wire::ScanError> {
    let index = scan(body)?;
    let mut out = String::new();
    for i in 0..index.spans.len() {
        let span = SpanRef::new(body, &index, i);
        let service = match span.resource_attribute("service.name") {
            Some(AttrValue::Str(s)) => s,
            _ => "unknown_service",
        };
        let micros = span
            .end_time_unix_nano()
            .saturating_sub(span.start_time_unix_nano())
            / 1000;
        out.push_str(&format!(
            "{service} {:?} {}.{:03}ms",
            span.name(),
            micros / 1000,
            micros % 1000
        ));
        span.for_each_attribute(&mut |k, v| {
            if k == "llm.cost.total" || k.starts_with("tollgate.") {
                let value = match v {
                    AttrValue::Str(s) => format!("{s:?}"),
                    AttrValue::Int(n) => n.to_string(),
                    AttrValue::Double(d) => d.to_string(),
                    AttrValue::Bool(b) => b.to_string(),
                    _ => "…".to_owned(),
                };
                out.push_str(&format!(" {k}={value}"));
            }
        });
        out.push('\n');
    }
    Ok(out)
}

#[async_trait::async_trait]
impl Transport for ConsoleTransport {
    async fn send(&self, body: Body) -> Outcome {
        let body = body.to_bytes();
        let text = match summarize(&body) {
            Ok(t) => t,
            Err(e) => {
                return Outcome::Drop {
                    reason: "encode_error",
                    detail: e.to_string(),
                }
            }
        };
        let mut out = tokio::io::stdout();
        let written = async {
            out.write_all(text.as_bytes()).await?;
            out.flush().await
        };
        match written.await {
            Ok(()) => Outcome::Success,
            Err(e) => Outcome::Drop {
                reason: "io_error",
                detail: e.to_string(),
            },
        }
    }
}
