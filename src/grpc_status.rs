//! `google.rpc.Status` with `google.rpc.RetryInfo` details: the error body OTLP receivers answer
//! with (tollgate's receivers write it, its gRPC exporter reads it from `grpc-status-details-bin`).
//!
//! Hand-written prost messages for the four types involved (`Status`, `Any`, `RetryInfo`,
//! `Duration`), so no googleapis protos need to be compiled.

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

    /// The delay of the first decodable `RetryInfo` detail (zero when it has no delay); `None`
    /// without one. Negative fields read as zero.
    pub fn retry_delay(&self) -> Option<Duration> {
        self.details
            .iter()
            .filter(|a| a.type_url == RETRY_INFO_TYPE_URL)
            .find_map(|a| RetryInfo::decode(&a.value[..]).ok())
            .map(|ri| {
                ri.retry_delay.map_or(Duration::ZERO, |d| {
                    Duration::new(
                        u64::try_from(d.seconds).unwrap_or(0),
                        u32::try_from(d.nanos).unwrap_or(0),
                    )
                })
            })
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
        assert_eq!(decoded.retry_delay(), Some(Duration::from_millis(2500)));
    }

    #[test]
    fn retry_delay_without_or_with_odd_retry_info() {
        assert_eq!(
            RpcStatus::new(tonic::Code::Unavailable, "x").retry_delay(),
            None
        );
        let mut status = RpcStatus::new(tonic::Code::Unavailable, "x");
        status.details.push(ProtoAny {
            type_url: "type.googleapis.com/google.rpc.DebugInfo".into(),
            value: vec![1, 2, 3],
        });
        assert_eq!(status.retry_delay(), None);
        status.details.push(ProtoAny {
            type_url: RETRY_INFO_TYPE_URL.into(),
            value: RetryInfo { retry_delay: None }.encode_to_vec(),
        });
        assert_eq!(status.retry_delay(), Some(Duration::ZERO));
        let negative = RpcStatus {
            details: vec![ProtoAny {
                type_url: RETRY_INFO_TYPE_URL.into(),
                value: RetryInfo {
                    retry_delay: Some(ProtoDuration {
                        seconds: -3,
                        nanos: 7,
                    }),
                }
                .encode_to_vec(),
            }],
            ..RpcStatus::new(tonic::Code::Unavailable, "x")
        };
        assert_eq!(negative.retry_delay(), Some(Duration::from_nanos(7)));
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
