//! Langfuse: OTLP/HTTP to `{host}/api/public/otel/v1/traces` with Basic auth and the real-time
//! ingestion header; any 2xx is success (its body is not an OTLP response).

use http::HeaderValue;

use super::common::{basic_auth, http_spec, ConfigResult};
use super::config::{Compression, Encoding, ExporterConfig};
use super::otlp_http::{HttpSpec, ResponseKind};

/// Langfuse Cloud (EU).
pub const DEFAULT_HOST: &str = "https://cloud.langfuse.com";
/// The OTLP path under the host.
pub const TRACES_PATH: &str = "/api/public/otel/v1/traces";

pub(crate) fn spec(cfg: &ExporterConfig) -> ConfigResult<HttpSpec> {
    let (Some(pk), Some(sk)) = (&cfg.public_key, &cfg.secret_key) else {
        return Err("langfuse needs `public_key` and `secret_key`".into());
    };
    if pk.is_empty() || sk.is_empty() {
        return Err("langfuse `public_key` and `secret_key` must not be empty".into());
    }
    if cfg.compression == Some(Compression::Zstd) {
        return Err("langfuse only decodes gzip; use `compression = \"gzip\"` or \"none\"".into());
    }
    let url = match &cfg.endpoint {
        Some(e) => e.clone(),
        None => format!(
            "{}{TRACES_PATH}",
            cfg.host
                .as_deref()
                .unwrap_or(DEFAULT_HOST)
                .trim_end_matches('/')
        ),
    };
    let mut spec = http_spec(cfg, url, Encoding::Protobuf, ResponseKind::AnySuccess)?;
    spec.headers.insert(
        http::header::AUTHORIZATION,
        basic_auth(pk.expose(), sk.expose())?,
    );
    spec.headers.insert(
        "x-langfuse-ingestion-version",
        HeaderValue::from_static("4"),
    );
    Ok(spec)
}
