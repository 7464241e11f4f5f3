//! `google.rpc.Status` and `google.rpc.RetryInfo`: the error bodies OTLP receivers answer with.

use std::time::Duration;

use prost::Message;

/// `google.rpc.Status`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RpcStatus {
    /// A `google.rpc.Code` (the gRPC status code).
    #[prost(int32, tag = "1")]
    pub code: i32,
    /// A developer-facing message.
    #[prost(string, tag = "2")]
    pub message: String,
    /// Typed details.
    #[prost(message, repeated, tag = "3")]
    pub details: Vec<ProtoAny>,
}

/// `google.protobuf.Any`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ProtoAny {
    /// `type.googleapis.com/<full message name>`.
    #[prost(string, tag = "1")]
    pub type_url: String,
    /// The encoded message.
    #[prost(bytes = "vec", tag = "2")]
    pub value: Vec<u8>,
}

/// `google.rpc.RetryInfo`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RetryInfo {
    /// How long the client should wait before retrying.
    #[prost(message, optional, tag = "1")]
    pub retry_delay: Option<ProtoDuration>,
}

/// `google.protobuf.Duration`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ProtoDuration {
    /// Whole seconds.
    #[prost(int64, tag = "1")]
    pub seconds: i64,
    /// Nanoseconds on top of `seconds`.
    #[prost(int32, tag = "2")]
    pub nanos: i32,
}

/// The `type_url` of a `RetryInfo` detail.
pub const RETRY_INFO_TYPE_URL: &str = "type.googleapis.com/google.rpc.RetryInfo";

impl RpcStatus {
    /// A status without details.
    pub fn new(code: tonic::Code, message: impl Into<String>) -> Self {
        Self {
            code: code as i32,
            message: message.into(),
            details: Vec::new(),
        }
    }

    /// Adds a `RetryInfo` detail.
    pub fn with_retry_after(mut self, delay: Duration) -> Self {
        let info = RetryInfo {
            retry_delay: Some(ProtoDuration {
                seconds: i64::try_from(delay.as_secs()).unwrap_or(i64::MAX),
                nanos: i32::try_from(delay.subsec_nanos()).unwrap_or(0),
            }),
        };
        self.details.push(ProtoAny {
            type_url: RETRY_INFO_TYPE_URL.into(),
            value: info.encode_to_vec(),
        });
        self
    }

    /// The OTLP/JSON rendering (details omitted: HTTP carries them in headers).
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::json!({ "code": self.code, "message": self.message, "details": [] })
            .to_string()
            .into_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_info_round_trips() {
        let status = RpcStatus::new(tonic::Code::Unavailable, "full")
            .with_retry_after(Duration::from_millis(2500));
        let decoded = RpcStatus::decode(status.encode_to_vec().as_slice()).unwrap();
        assert_eq!(decoded.code, 14);
        assert_eq!(decoded.details[0].type_url, RETRY_INFO_TYPE_URL);
        let info = RetryInfo::decode(decoded.details[0].value.as_slice()).unwrap();
        assert_eq!(
            info.retry_delay,
            Some(ProtoDuration {
                seconds: 2,
                nanos: 500_000_000
            })
        );
    }

    #[test]
    fn json_rendering() {
        let json: serde_json::Value =
            serde_json::from_slice(&RpcStatus::new(tonic::Code::InvalidArgument, "bad").to_json())
                .unwrap();
        assert_eq!(json["code"], 3);
        assert_eq!(json["message"], "bad");
    }
}
