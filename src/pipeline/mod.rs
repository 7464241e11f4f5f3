//! The pipeline between receivers and exporters: admission (memory budget), validation, the
//! processor chain (LLM pricing, task roll-up, alert rules), and fan-out of one shared,
//! immutable batch to every exporter's queue.

use std::time::Duration;

use bytes::Bytes;

/// The receiver a request came through (a metric label).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// OTLP/gRPC.
    Grpc,
    /// OTLP/HTTP with a protobuf body.
    HttpProtobuf,
    /// OTLP/HTTP with a JSON body.
    HttpJson,
}

impl Transport {
    /// The metric label for this transport's receiver.
    pub fn receiver(self) -> &'static str {
        match self {
            Transport::Grpc => "otlp_grpc",
            Transport::HttpProtobuf | Transport::HttpJson => "otlp_http",
        }
    }
}

/// A request accepted by the pipeline.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Accepted {
    /// Spans dropped at ingest (bad ids); 0 when all were accepted.
    pub rejected_spans: i64,
    /// Why spans were rejected; empty when none were.
    pub error_message: String,
}

/// A request the pipeline refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// The body is not a valid request (HTTP 400 / gRPC INVALID_ARGUMENT). Not retryable.
    #[error("{0}")]
    Invalid(String),
    /// The pipeline is full (HTTP 503 + Retry-After / gRPC UNAVAILABLE). Retryable.
    #[error("pipeline is full; retry after {retry_after:?}")]
    Full {
        /// How long the client should wait.
        retry_after: Duration,
    },
    /// The service is shutting down (HTTP 503 / gRPC UNAVAILABLE). Retryable elsewhere.
    #[error("tollgate is shutting down")]
    ShuttingDown,
}

/// Where receivers hand requests: the pipeline's entry point.
///
/// `body` is one encoded (decompressed) `ExportTraceServiceRequest`. The call returns once the
/// request has been validated, processed and queued for every exporter, or refused; a request
/// that was accepted is never dropped silently afterwards.
#[async_trait::async_trait]
pub trait TraceSink: Send + Sync + 'static {
    /// Submits one request.
    async fn submit(&self, body: Bytes, transport: Transport) -> Result<Accepted, Refused>;
}

/// `[pipeline]`: how much the pipeline may hold.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineConfig {
    /// Total bytes of span data tollgate may hold (being processed or queued for any exporter)
    /// before receivers refuse new data with a retryable answer.
    #[serde(default = "default_memory_limit_mib")]
    pub memory_limit_mib: usize,
}

fn default_memory_limit_mib() -> usize {
    512
}

impl Default for PipelineConfig {
    fn default() -> Self {
        Self {
            memory_limit_mib: default_memory_limit_mib(),
        }
    }
}
