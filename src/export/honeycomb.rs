//! Honeycomb: OTLP over gRPC or HTTP with `x-honeycomb-team`, and `x-honeycomb-dataset` for
//! Classic keys only.

use http::HeaderValue;

use super::common::{grpc_spec, http_spec, traces_url, ConfigResult, Target};
use super::config::{Encoding, ExporterConfig, Protocol, Region};
use super::otlp_http::ResponseKind;

/// True for a Classic key: 32 hex characters, or a 64-character `hcic_`/`hcaic_` ingest key.
pub fn is_classic_key(key: &str) -> bool {
    (key.len() == 32 && key.bytes().all(|b| b.is_ascii_hexdigit()))
        || (key.len() == 64 && (key.starts_with("hcic_") || key.starts_with("hcaic_")))
}

fn host(region: Region) -> &'static str {
    match region {
        Region::Us => "api.honeycomb.io",
        Region::Eu => "api.eu1.honeycomb.io",
    }
}

fn secret_header(v: &str) -> ConfigResult<HeaderValue> {
    let mut h =
        HeaderValue::from_str(v).map_err(|_| "api_key is not a valid header value".to_string())?;
    h.set_sensitive(true);
    Ok(h)
}

pub(crate) fn target(cfg: &ExporterConfig) -> ConfigResult<Target> {
    let Some(key) = cfg.api_key.as_ref().filter(|k| !k.is_empty()) else {
        return Err("honeycomb needs an `api_key`".into());
    };
    let classic = is_classic_key(key.expose());
    match (&cfg.dataset, classic) {
        (Some(_), false) => {
            return Err(
                "`dataset` is only for Classic keys; environment keys route by service.name".into(),
            )
        }
        (None, true) => return Err("a Classic api_key needs a `dataset`".into()),
        _ => {}
    }
    let host = host(cfg.region.unwrap_or_default());
    let mut t = match cfg.protocol.unwrap_or_default() {
        Protocol::Grpc => {
            let ep = cfg
                .endpoint
                .clone()
                .unwrap_or_else(|| format!("https://{host}:443"));
            Target::Grpc(grpc_spec(cfg, ep)?)
        }
        Protocol::Http => {
            let url = cfg
                .endpoint
                .as_deref()
                .map_or_else(|| format!("https://{host}/v1/traces"), traces_url);
            Target::Http(http_spec(cfg, url, Encoding::Protobuf, ResponseKind::Otlp)?)
        }
    };
    t.insert_header("x-honeycomb-team", secret_header(key.expose())?);
    if let Some(ds) = &cfg.dataset {
        let v = HeaderValue::from_str(ds)
            .map_err(|_| "dataset is not a valid header value".to_string())?;
        t.insert_header("x-honeycomb-dataset", v);
    }
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_shapes() {
        assert!(is_classic_key("0123456789abcdef0123456789ABCDEF"));
        assert!(is_classic_key(&format!("hcic_{}", "a".repeat(59))));
        assert!(is_classic_key(&format!("hcaic_{}", "a".repeat(58))));
        assert!(!is_classic_key("abcdefghij0123456789ab"));
        assert!(!is_classic_key(&format!("hcxik_{}", "a".repeat(58))));
    }
}
