//! OTLP receivers: gRPC (tonic) and HTTP (axum), both handing raw protobuf bytes to the pipeline.
//!
//! Neither receiver decodes spans: gRPC messages arrive through a codec that yields the message
//! bytes, HTTP bodies are read, decompressed under a cap and (for JSON only) converted to protobuf.
//! The pipeline's [`TraceSink`](crate::pipeline::TraceSink) validates and answers; each receiver
//! maps that answer onto its protocol. The caller binds the listener, so the process can report
//! ready once both ports are open, and cancels a token to drain.

pub mod auth;
pub mod config;
pub(crate) mod conn;
pub mod decompress;
pub mod grpc;
pub mod http;
pub mod metrics;

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};

pub use config::{AuthConfig, OtlpReceiverConfig, ReceiverConfigError, ReceiversConfig};
pub use grpc::GrpcReceiver;
pub use http::HttpReceiver;

use crate::otlp::collector::trace::v1::{ExportTracePartialSuccess, ExportTraceServiceResponse};
use crate::pipeline::Accepted;

/// Inflating and JSON parsing run on blocking threads, at most one per core at a time (for both
/// receivers): CPU-heavy decoding cannot crowd out the async threads, and the allocator's
/// per-thread caches of freed buffers stay few (peak RSS is the budget plus a fixed overhead,
/// not the budget times the number of threads that ever decoded).
pub(crate) async fn decode_blocking<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, tokio::task::JoinError> {
    static SLOTS: std::sync::LazyLock<tokio::sync::Semaphore> = std::sync::LazyLock::new(|| {
        tokio::sync::Semaphore::new(std::thread::available_parallelism().map_or(2, |n| n.get()))
    });
    let _slot = SLOTS.acquire().await.expect("never closed");
    tokio::task::spawn_blocking(work).await
}

/// Why a receiver stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ReceiverError {
    /// The configuration is unusable.
    #[error(transparent)]
    Config(#[from] ReceiverConfigError),
    /// A socket operation failed.
    #[error("OTLP receiver I/O failed: {0}")]
    Io(#[from] std::io::Error),
    /// The gRPC server failed.
    #[error("OTLP/gRPC server failed: {0}")]
    Grpc(#[from] tonic::transport::Error),
}

/// The `ExportTraceServiceResponse` for an accepted request: empty on full success, with
/// `partial_success` when spans were rejected or the pipeline left a message.
fn export_response(accepted: Accepted) -> ExportTraceServiceResponse {
    let partial = accepted.rejected_spans != 0 || !accepted.error_message.is_empty();
    ExportTraceServiceResponse {
        partial_success: partial.then_some(ExportTracePartialSuccess {
            rejected_spans: accepted.rejected_spans,
            error_message: accepted.error_message,
        }),
    }
}

/// A `TcpListener` whose accepted connections have `TCP_NODELAY` set: responses are small and
/// Nagle's algorithm would hold them back waiting for an ACK (see `performance.md`).
#[derive(Debug)]
pub struct NodelayListener {
    inner: TcpListener,
}

impl NodelayListener {
    /// Wraps a bound listener.
    pub fn new(inner: TcpListener) -> Self {
        Self { inner }
    }

    /// Accepts the next connection, retrying after transient errors (e.g. out of file
    /// descriptors) instead of stopping the receiver.
    pub async fn accept(&mut self) -> (TcpStream, SocketAddr) {
        loop {
            match self.inner.accept().await {
                Ok((stream, peer)) => {
                    if let Err(error) = stream.set_nodelay(true) {
                        tracing::debug!(%peer, %error, "Could not set TCP_NODELAY.");
                    }
                    return (stream, peer);
                }
                Err(error) => {
                    tracing::warn!(%error, "Accepting a connection failed; retrying.");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }

    /// The accepted connections as a stream (what tonic's server takes).
    pub fn into_stream(
        self,
    ) -> impl futures::Stream<Item = Result<TcpStream, std::io::Error>> + Send + 'static {
        futures::stream::unfold(self, |mut listener| async move {
            let (stream, _) = listener.accept().await;
            Some((Ok(stream), listener))
        })
    }
}

impl axum::serve::Listener for NodelayListener {
    type Io = TcpStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        NodelayListener::accept(self).await
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn accepted_connections_have_nodelay() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut listener = NodelayListener::new(listener);
        let _client = TcpStream::connect(addr).await.unwrap();
        let (server_side, _) = listener.accept().await;
        assert!(server_side.nodelay().unwrap());
    }

    #[test]
    fn partial_success_only_when_needed() {
        assert_eq!(export_response(Accepted::default()).partial_success, None);
        let r = export_response(Accepted {
            rejected_spans: 2,
            error_message: "bad ids".into(),
        });
        assert_eq!(r.partial_success.unwrap().rejected_spans, 2);
    }
}
