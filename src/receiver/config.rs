//! `[receivers]` configuration.

use serde::Deserialize;

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
}

fn default_grpc() -> String {
    "127.0.0.1:4317".into()
}
fn default_http() -> String {
    "127.0.0.1:4318".into()
}

impl Default for OtlpReceiverConfig {
    fn default() -> Self {
        Self {
            grpc: default_grpc(),
            http: default_http(),
        }
    }
}
