//! What one request attempt can come back with, and the trait every destination implements.

use std::time::Duration;

use bytes::Bytes;

/// The result of one attempt, already classified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Accepted in full.
    Success,
    /// Accepted, with `rejected` spans refused (never retried).
    Partial {
        /// Spans the backend refused.
        rejected: i64,
        /// Its explanation.
        message: String,
    },
    /// A retryable failure (counted in `failed_requests_total{reason}`).
    Retry {
        /// The server's requested wait (Retry-After / RetryInfo), if any.
        delay: Option<Duration>,
        /// A low-cardinality metric label.
        reason: &'static str,
        /// For the log.
        detail: String,
    },
    /// A permanent failure: the data is dropped (`dropped_spans_total{reason}`).
    Drop {
        /// A low-cardinality metric label.
        reason: &'static str,
        /// For the log.
        detail: String,
    },
}

/// One destination's way of sending one encoded `ExportTraceServiceRequest`.
#[async_trait::async_trait]
pub(crate) trait Transport: Send + Sync + 'static {
    /// Makes one attempt.
    async fn send(&self, body: Bytes) -> Outcome;
}

/// Compresses a request body.
pub(crate) fn compress(
    body: &Bytes,
    compression: super::config::Compression,
    level: u32,
) -> std::io::Result<Bytes> {
    match compression {
        super::config::Compression::None => Ok(body.clone()),
        c => compress_after(Vec::with_capacity(body.len() / 4), body, c, level).map(Bytes::from),
    }
}

/// Appends the compressed `body` to `out` (which may already hold a frame header).
pub(crate) fn compress_after(
    out: Vec<u8>,
    body: &[u8],
    compression: super::config::Compression,
    level: u32,
) -> std::io::Result<Vec<u8>> {
    use super::config::Compression;
    use std::io::Write;
    match compression {
        Compression::None => {
            let mut out = out;
            out.extend_from_slice(body);
            Ok(out)
        }
        Compression::Gzip => {
            let mut enc =
                flate2::write::GzEncoder::new(out, flate2::Compression::new(level.min(9)));
            enc.write_all(body)?;
            enc.finish()
        }
        Compression::Zstd => {
            let level = i32::try_from(level.min(22)).unwrap_or(1);
            let mut enc = zstd::stream::Encoder::new(out, level)?;
            enc.write_all(body)?;
            enc.finish()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::config::Compression;

    #[test]
    fn gzip_and_zstd_round_trip() {
        let body = Bytes::from(b"hello hello hello hello".repeat(10));
        let gz = compress(&body, Compression::Gzip, 1).unwrap();
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&gz[..]), &mut out).unwrap();
        assert_eq!(out, body);
        let z = compress(&body, Compression::Zstd, 1).unwrap();
        assert_eq!(zstd::bulk::decompress(&z, 1 << 20).unwrap(), body);
        assert_eq!(
            &compress(&body, Compression::None, 1).unwrap()[..],
            &body[..]
        );
    }
}
