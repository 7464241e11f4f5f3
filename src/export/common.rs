//! What every network destination shares: headers, TLS, compression checks, and the [`Target`]
//! a validated config resolves to.

use std::path::PathBuf;

use base64::Engine;
use http::header::{HeaderMap, HeaderName, HeaderValue};

use super::config::{Compression, Encoding, ExporterConfig};
use super::otlp_grpc::GrpcSpec;
use super::otlp_http::{HttpSpec, ResponseKind};
use super::tls::{check_scheme, TlsSettings};

/// A config check's failure reason.
pub(crate) type ConfigResult<T> = Result<T, String>;

/// Where a validated exporter sends.
#[derive(Debug, Clone)]
pub(crate) enum Target {
    /// OTLP/gRPC.
    Grpc(GrpcSpec),
    /// OTLP/HTTP.
    Http(HttpSpec),
    /// OTLP/JSON lines appended to a file.
    File(PathBuf),
    /// One line per span on stdout.
    Console,
    /// The usage ledger in PostgreSQL.
    Postgres(crate::ledger::LedgerTarget),
}

impl Target {
    /// Adds a header to every request of a network target (file and console have none).
    pub(crate) fn insert_header(&mut self, name: &'static str, value: HeaderValue) {
        match self {
            Target::Grpc(s) => {
                s.headers.insert(name, value);
            }
            Target::Http(s) => {
                s.headers.insert(name, value);
            }
            Target::File(_) | Target::Console | Target::Postgres(_) => {}
        }
    }
}

/// `Basic base64(user:password)`, marked sensitive.
pub(crate) fn basic_auth(user: &str, password: &str) -> ConfigResult<HeaderValue> {
    let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    let mut v = HeaderValue::from_str(&format!("Basic {token}"))
        .map_err(|_| "credentials are not a valid header value".to_string())?;
    v.set_sensitive(true);
    Ok(v)
}

/// An OTLP/HTTP base URL with `/v1/traces` appended, unless it already ends with it.
pub(crate) fn traces_url(base: &str) -> String {
    let base = base.trim_end_matches('/');
    if base.ends_with("/v1/traces") {
        base.to_owned()
    } else {
        format!("{base}/v1/traces")
    }
}

fn headers(cfg: &ExporterConfig) -> ConfigResult<HeaderMap> {
    let mut map = HeaderMap::new();
    for (k, v) in &cfg.headers {
        let name = HeaderName::from_bytes(k.to_ascii_lowercase().as_bytes())
            .map_err(|_| format!("header name {k:?} is not valid"))?;
        let mut value = HeaderValue::from_str(v.expose())
            .map_err(|_| format!("header {k:?} has a value that is not valid"))?;
        value.set_sensitive(true);
        map.insert(name, value);
    }
    Ok(map)
}

fn compression(cfg: &ExporterConfig) -> ConfigResult<Compression> {
    let c = cfg.compression.unwrap_or_default();
    let ok = match c {
        Compression::Gzip => cfg.compression_level <= 9,
        Compression::Zstd => (1..=22).contains(&cfg.compression_level),
        Compression::None => true,
    };
    if !ok {
        return Err(format!(
            "compression_level {} is out of range for {c:?} (gzip 0-9, zstd 1-22)",
            cfg.compression_level
        ));
    }
    Ok(c)
}

/// The HTTP spec of a config, with its own headers, compression and TLS.
pub(crate) fn http_spec(
    cfg: &ExporterConfig,
    url: String,
    encoding: Encoding,
    response: ResponseKind,
) -> ConfigResult<HttpSpec> {
    check_scheme(&url, cfg.insecure)?;
    Ok(HttpSpec {
        url,
        headers: headers(cfg)?,
        encoding,
        compression: compression(cfg)?,
        level: cfg.compression_level,
        response,
        tls: TlsSettings {
            ca_file: cfg.ca_file.clone(),
        },
    })
}

/// The gRPC spec of a config.
pub(crate) fn grpc_spec(cfg: &ExporterConfig, endpoint: String) -> ConfigResult<GrpcSpec> {
    check_scheme(&endpoint, cfg.insecure)?;
    endpoint
        .parse::<http::Uri>()
        .map_err(|e| format!("endpoint {endpoint:?} is not a URL: {e}"))?;
    Ok(GrpcSpec {
        endpoint,
        headers: headers(cfg)?,
        compression: compression(cfg)?,
        level: cfg.compression_level,
        tls: TlsSettings {
            ca_file: cfg.ca_file.clone(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traces_url_appends_once() {
        assert_eq!(traces_url("http://a:4318"), "http://a:4318/v1/traces");
        assert_eq!(traces_url("http://a:4318/"), "http://a:4318/v1/traces");
        assert_eq!(
            traces_url("https://g/otlp/v1/traces"),
            "https://g/otlp/v1/traces"
        );
    }

    #[test]
    fn basic_auth_encodes() {
        let v = basic_auth("pk", "sk").unwrap();
        assert_eq!(v.to_str().unwrap(), "Basic cGs6c2s=");
        assert!(v.is_sensitive());
    }
}
