//! `[receivers]` configuration.

use std::time::Duration;

use serde::Deserialize;

use crate::config::Secret;

const MIB: usize = 1024 * 1024;

/// `[receivers]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiversConfig {
    /// `[receivers.otlp]`: the OTLP receiver.
    #[serde(default)]
    pub otlp: OtlpReceiverConfig,
}

/// `[receivers.otlp]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OtlpReceiverConfig {
    /// OTLP/gRPC listen address; empty disables it.
    #[serde(default = "default_grpc")]
    pub grpc: String,
    /// OTLP/HTTP listen address; empty disables it.
    #[serde(default = "default_http")]
    pub http: String,
    /// Largest gRPC message accepted, in MiB, as sent (compressed if the client compresses).
    /// Larger messages are refused with RESOURCE_EXHAUSTED before they are read.
    #[serde(default = "default_max_recv_msg_size_mib")]
    pub max_recv_msg_size_mib: usize,
    /// Largest OTLP/HTTP request body accepted, in MiB, as sent (compressed if the client
    /// compresses). Larger bodies are refused with 413.
    #[serde(default = "default_max_request_body_mib")]
    pub max_request_body_mib: usize,
    /// Largest request accepted after decompression, in MiB, on both receivers. Inflating stops
    /// at this size, so a compression bomb costs at most this much memory.
    #[serde(default = "default_max_decompressed_mib")]
    pub max_decompressed_mib: usize,
    /// `[receivers.otlp.auth]`: optional bearer-token authentication.
    #[serde(default)]
    pub auth: AuthConfig,
    /// How long a client may take to send a request's headers (HTTP/1.1), and to start its
    /// first request on a new connection (both protocols). Default 1 minute, as the
    /// Collector's `confighttp` `read_header_timeout`.
    #[serde(
        default = "default_header_read_timeout",
        deserialize_with = "crate::config::duration::positive"
    )]
    pub header_read_timeout: Duration,
    /// How long a client may take to send a request's whole body once its headers are in
    /// (answered 408 / DEADLINE_EXCEEDED and the connection or stream closed). Default 1 minute
    /// (the Collector's `read_timeout` is unbounded by default; tollgate bounds it).
    #[serde(
        default = "default_body_read_timeout",
        deserialize_with = "crate::config::duration::positive"
    )]
    pub body_read_timeout: Duration,
    /// A connection with no request in flight for this long is closed (HTTP/1.1 keep-alive and
    /// HTTP/2 alike). Default 1 minute, as the Collector's `confighttp` `idle_timeout`.
    #[serde(
        default = "default_idle_timeout",
        deserialize_with = "crate::config::duration::positive"
    )]
    pub idle_timeout: Duration,
    /// Open connections served at once, per receiver. A connection over the cap is answered
    /// 503 + `Retry-After` (HTTP) or UNAVAILABLE (gRPC) and closed, and counted in
    /// `tollgate_receiver_connections_refused_total`.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// HTTP/2: the server pings a connection that has been quiet for this long, and closes it
    /// when the answer does not come within `http2_keepalive_timeout`. Default 30 s / 20 s.
    #[serde(
        default = "default_http2_keepalive_interval",
        deserialize_with = "crate::config::duration::positive"
    )]
    pub http2_keepalive_interval: Duration,
    /// HTTP/2: how long to wait for a keep-alive ping's answer.
    #[serde(
        default = "default_http2_keepalive_timeout",
        deserialize_with = "crate::config::duration::positive"
    )]
    pub http2_keepalive_timeout: Duration,
    /// HTTP/2: streams (requests) open at once on one connection. Default 100 (the minimum
    /// RFC 9113 recommends).
    #[serde(default = "default_http2_max_concurrent_streams")]
    pub http2_max_concurrent_streams: u32,
}

/// `[receivers.otlp.auth]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// Accepted bearer tokens (usually `"${env:TOLLGATE_TOKEN}"`). When the list is non-empty,
    /// every request must carry `Authorization: Bearer <one of them>`; when empty, no
    /// authentication is required.
    #[serde(default)]
    pub bearer_tokens: Vec<Secret>,
}

/// Why the receiver configuration is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReceiverConfigError {
    /// A size limit or timeout is zero.
    #[error("receivers.otlp.{0} must be more than zero")]
    ZeroLimit(&'static str),
    /// A configured bearer token is empty (often an unset environment variable).
    #[error("receivers.otlp.auth.bearer_tokens[{0}] is empty")]
    EmptyToken(usize),
}

fn default_grpc() -> String {
    "127.0.0.1:4317".into()
}
fn default_http() -> String {
    "127.0.0.1:4318".into()
}
fn default_max_recv_msg_size_mib() -> usize {
    4
}
fn default_max_request_body_mib() -> usize {
    20
}
fn default_max_decompressed_mib() -> usize {
    64
}
fn default_header_read_timeout() -> Duration {
    Duration::from_secs(60)
}
fn default_body_read_timeout() -> Duration {
    Duration::from_secs(60)
}
fn default_idle_timeout() -> Duration {
    Duration::from_secs(60)
}
fn default_max_connections() -> usize {
    512
}
fn default_http2_keepalive_interval() -> Duration {
    Duration::from_secs(30)
}
fn default_http2_keepalive_timeout() -> Duration {
    Duration::from_secs(20)
}
fn default_http2_max_concurrent_streams() -> u32 {
    100
}

impl Default for OtlpReceiverConfig {
    fn default() -> Self {
        Self {
            grpc: default_grpc(),
            http: default_http(),
            max_recv_msg_size_mib: default_max_recv_msg_size_mib(),
            max_request_body_mib: default_max_request_body_mib(),
            max_decompressed_mib: default_max_decompressed_mib(),
            auth: AuthConfig::default(),
            header_read_timeout: default_header_read_timeout(),
            body_read_timeout: default_body_read_timeout(),
            idle_timeout: default_idle_timeout(),
            max_connections: default_max_connections(),
            http2_keepalive_interval: default_http2_keepalive_interval(),
            http2_keepalive_timeout: default_http2_keepalive_timeout(),
            http2_max_concurrent_streams: default_http2_max_concurrent_streams(),
        }
    }
}

impl OtlpReceiverConfig {
    /// Checks the values without touching the network.
    pub fn validate(&self) -> Result<(), ReceiverConfigError> {
        for (name, value) in [
            ("max_recv_msg_size_mib", self.max_recv_msg_size_mib),
            ("max_request_body_mib", self.max_request_body_mib),
            ("max_decompressed_mib", self.max_decompressed_mib),
            ("max_connections", self.max_connections),
            (
                "http2_max_concurrent_streams",
                self.http2_max_concurrent_streams as usize,
            ),
        ] {
            if value == 0 {
                return Err(ReceiverConfigError::ZeroLimit(name));
            }
        }
        for (name, value) in [
            ("header_read_timeout", self.header_read_timeout),
            ("body_read_timeout", self.body_read_timeout),
            ("idle_timeout", self.idle_timeout),
            ("http2_keepalive_interval", self.http2_keepalive_interval),
            ("http2_keepalive_timeout", self.http2_keepalive_timeout),
        ] {
            if value.is_zero() {
                return Err(ReceiverConfigError::ZeroLimit(name));
            }
        }
        if let Some(i) = self.auth.bearer_tokens.iter().position(Secret::is_empty) {
            return Err(ReceiverConfigError::EmptyToken(i));
        }
        Ok(())
    }

    /// One warning per listener that is reachable from other machines while receiver
    /// authentication is off (no `auth.bearer_tokens`): anyone who can reach it can send spans.
    /// A listener is local when its host is a loopback address or `localhost`.
    pub fn exposure_warnings(&self) -> Vec<String> {
        if !self.auth.bearer_tokens.is_empty() {
            return Vec::new();
        }
        [("grpc", &self.grpc), ("http", &self.http)]
            .into_iter()
            .filter(|(_, addr)| !addr.is_empty() && !is_loopback(addr))
            .map(|(key, addr)| {
                format!(
                    "receivers.otlp.{key} = {addr:?} accepts connections from other machines and \
                     receiver authentication is off: anyone who can reach it can send spans. Set \
                     [receivers.otlp.auth] bearer_tokens = [\"${{env:TOLLGATE_RECEIVER_TOKEN}}\"] \
                     (from a Secret), or bind 127.0.0.1"
                )
            })
            .collect()
    }

    /// The gRPC message limit in bytes.
    pub fn max_recv_msg_size(&self) -> usize {
        self.max_recv_msg_size_mib.saturating_mul(MIB)
    }

    /// The HTTP body limit in bytes.
    pub fn max_request_body(&self) -> usize {
        self.max_request_body_mib.saturating_mul(MIB)
    }

    /// The decompressed-size limit in bytes.
    pub fn max_decompressed(&self) -> usize {
        self.max_decompressed_mib.saturating_mul(MIB)
    }
}

/// Whether a listen address (`IP:PORT`, `[IPv6]:PORT`, `host:PORT`) binds loopback only.
fn is_loopback(addr: &str) -> bool {
    if let Ok(sock) = addr.parse::<std::net::SocketAddr>() {
        return sock.ip().is_loopback();
    }
    let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
    host.eq_ignore_ascii_case("localhost")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_apply_to_an_empty_section() {
        let cfg: ReceiversConfig = toml::from_str("[otlp]\n").unwrap();
        let otlp = cfg.otlp;
        assert_eq!(otlp.grpc, "127.0.0.1:4317");
        assert_eq!(otlp.http, "127.0.0.1:4318");
        assert_eq!(otlp.max_recv_msg_size(), 4 * MIB);
        assert_eq!(otlp.max_request_body(), 20 * MIB);
        assert_eq!(otlp.max_decompressed(), 64 * MIB);
        assert!(otlp.auth.bearer_tokens.is_empty());
        assert_eq!(otlp.header_read_timeout, Duration::from_secs(60));
        assert_eq!(otlp.body_read_timeout, Duration::from_secs(60));
        assert_eq!(otlp.idle_timeout, Duration::from_secs(60));
        assert_eq!(otlp.max_connections, 512);
        assert_eq!(otlp.http2_max_concurrent_streams, 100);
        otlp.validate().unwrap();
    }

    #[test]
    fn every_key_parses() {
        let cfg: ReceiversConfig = toml::from_str(
            r#"
            [otlp]
            grpc = ""
            http = "0.0.0.0:4318"
            max_recv_msg_size_mib = 8
            max_request_body_mib = 10
            max_decompressed_mib = 32
            [otlp.auth]
            bearer_tokens = ["abc", "def"]
            "#,
        )
        .unwrap();
        let otlp = cfg.otlp;
        assert_eq!(otlp.grpc, "");
        assert_eq!(otlp.max_recv_msg_size(), 8 * MIB);
        assert_eq!(otlp.max_request_body(), 10 * MIB);
        assert_eq!(otlp.max_decompressed(), 32 * MIB);
        assert_eq!(otlp.auth.bearer_tokens.len(), 2);
        assert_eq!(otlp.auth.bearer_tokens[1].expose(), "def");
        assert!(!format!("{otlp:?}").contains("abc"));
    }

    #[test]
    fn open_listeners_without_auth_are_warned_about() {
        let mut otlp = OtlpReceiverConfig::default();
        assert!(otlp.exposure_warnings().is_empty(), "loopback by default");
        otlp.http = "0.0.0.0:4318".into();
        otlp.grpc = "[::]:4317".into();
        let w = otlp.exposure_warnings();
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(
            w[1].contains("receivers.otlp.http = \"0.0.0.0:4318\""),
            "{w:?}"
        );
        otlp.grpc = "localhost:4317".into();
        otlp.http = "[::1]:4318".into();
        assert!(otlp.exposure_warnings().is_empty());
        otlp.http = "10.1.2.3:4318".into();
        assert_eq!(otlp.exposure_warnings().len(), 1);
        otlp.auth.bearer_tokens = vec![Secret::new("t")];
        assert!(otlp.exposure_warnings().is_empty(), "auth on");
    }

    #[test]
    fn unknown_keys_and_bad_values_are_refused() {
        assert!(toml::from_str::<ReceiversConfig>("[otlp]\nmax_body = 3\n").is_err());
        let otlp = OtlpReceiverConfig {
            max_decompressed_mib: 0,
            ..Default::default()
        };
        assert_eq!(
            otlp.validate(),
            Err(ReceiverConfigError::ZeroLimit("max_decompressed_mib"))
        );
        let otlp = OtlpReceiverConfig {
            auth: AuthConfig {
                bearer_tokens: vec![Secret::new("x"), Secret::new("")],
            },
            ..Default::default()
        };
        assert_eq!(otlp.validate(), Err(ReceiverConfigError::EmptyToken(1)));
    }
}
