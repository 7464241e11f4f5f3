//! Langfuse: OTLP/HTTP to `{base}/api/public/otel/v1/traces` with Basic auth and the real-time
//! ingestion header; any 2xx is success (its body is not an OTLP response).
//!
//! The base URL is `endpoint` (as for every kind: a base URL to which the traces path is
//! appended, unless it already ends with it) or its older name `host`; the default is Langfuse
//! Cloud (EU).

use http::HeaderValue;

use super::common::{basic_auth, http_spec, ConfigResult};
use super::config::{Compression, Encoding, ExporterConfig};
use super::otlp_http::{HttpSpec, ResponseKind};

/// Langfuse Cloud (EU).
pub const DEFAULT_HOST: &str = "https://cloud.langfuse.com";
/// The OTLP path under the host.
pub const TRACES_PATH: &str = "/api/public/otel/v1/traces";

/// The traces URL under a base URL (kept as is when it already ends with the traces path).
pub fn traces_url(base: &str) -> String {
    let base = base.trim_end_matches('/');
    if base.ends_with(TRACES_PATH) {
        base.to_owned()
    } else {
        format!("{base}{TRACES_PATH}")
    }
}

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
    let base =
        match (&cfg.endpoint, &cfg.host) {
            (Some(_), Some(_)) => return Err(
                "langfuse takes `endpoint` or its older name `host`, not both (the same base URL)"
                    .into(),
            ),
            (Some(base), None) | (None, Some(base)) => base.as_str(),
            (None, None) => DEFAULT_HOST,
        };
    let url = traces_url(base);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_is_a_base_url_like_every_kind() {
        assert_eq!(
            traces_url("http://127.0.0.1:3000"),
            "http://127.0.0.1:3000/api/public/otel/v1/traces"
        );
        assert_eq!(
            traces_url("https://lf.example/"),
            "https://lf.example/api/public/otel/v1/traces"
        );
        // A full URL, as written before, still works.
        assert_eq!(
            traces_url("https://lf.example/api/public/otel/v1/traces"),
            "https://lf.example/api/public/otel/v1/traces"
        );
    }
}
