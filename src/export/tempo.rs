//! Grafana Tempo (and Grafana Cloud traces): OTLP over gRPC or HTTP, an optional tenant in
//! `X-Scope-OrgID`, optional Basic auth, requests split under its 4 MiB gRPC message limit.

use http::HeaderValue;

use super::common::{basic_auth, grpc_spec, http_spec, traces_url, ConfigResult, Target};
use super::config::{Encoding, ExporterConfig, Protocol};
use super::otlp_http::ResponseKind;

/// Tempo's default gRPC message limit, the default `max_request_bytes`.
pub const DEFAULT_MAX_REQUEST_BYTES: usize = 4 << 20;

/// Checks a tenant id: 1–150 bytes of `A-Za-z0-9!-_.*'()`.
pub fn valid_tenant(t: &str) -> bool {
    !t.is_empty()
        && t.len() <= 150
        && t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!-_.*'()".contains(&b))
        && t != "."
        && t != ".."
}

pub(crate) fn target(cfg: &ExporterConfig) -> ConfigResult<Target> {
    let Some(endpoint) = &cfg.endpoint else {
        return Err("tempo needs an `endpoint`".into());
    };
    let mut extra = Vec::new();
    if let Some(t) = &cfg.tenant {
        if !valid_tenant(t) {
            return Err(format!(
                "tenant {t:?} must be 1-150 characters of A-Za-z0-9!-_.*'()"
            ));
        }
        extra.push((
            "x-scope-orgid",
            HeaderValue::from_str(t).map_err(|e| e.to_string())?,
        ));
    }
    match (&cfg.username, &cfg.password) {
        (Some(u), Some(p)) => extra.push(("authorization", basic_auth(u, p.expose())?)),
        (None, None) => {}
        _ => return Err("tempo basic auth needs both `username` and `password`".into()),
    }
    let mut t = match cfg.protocol.unwrap_or_default() {
        Protocol::Grpc => Target::Grpc(grpc_spec(cfg, endpoint.clone())?),
        Protocol::Http => Target::Http(http_spec(
            cfg,
            traces_url(endpoint),
            Encoding::Protobuf,
            ResponseKind::Otlp,
        )?),
    };
    for (k, v) in extra {
        t.insert_header(k, v);
    }
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_rules() {
        assert!(valid_tenant("team-a_1.(x)*'!"));
        assert!(!valid_tenant(""));
        assert!(!valid_tenant("a b"));
        assert!(!valid_tenant("a/b"));
        assert!(!valid_tenant("a|b"));
        assert!(!valid_tenant(&"a".repeat(151)));
        assert!(valid_tenant(&"a".repeat(150)));
    }
}
