//! What one request attempt can come back with, and the trait every destination implements.

use std::sync::Arc;
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

impl Outcome {
    /// The outcome of a refused export as classified (see `retry::classify_http` and
    /// `classify_grpc`), shared by the HTTP and gRPC transports: retryable failures count under
    /// `retry_reason` (`http_status`, `grpc_status`), throttling under `throttled`, the rest
    /// are permanent.
    pub(crate) fn refused(
        decision: super::retry::RetryDecision,
        retry_reason: &'static str,
        detail: String,
    ) -> Outcome {
        use super::retry::RetryDecision;
        match decision {
            RetryDecision::Retryable => Outcome::Retry {
                delay: None,
                reason: retry_reason,
                detail,
            },
            RetryDecision::Throttled(d) => Outcome::Retry {
                delay: Some(d),
                reason: "throttled",
                detail,
            },
            RetryDecision::NonRetryable => Outcome::Drop {
                reason: "permanent_error",
                detail,
            },
        }
    }
}

/// One destination's way of sending one encoded `ExportTraceServiceRequest`.
#[async_trait::async_trait]
pub(crate) trait Transport: Send + Sync + 'static {
    /// Makes one attempt.
    async fn send(&self, body: Body) -> Outcome;
}

/// One request body, held as the encoded requests it was batched from: repeated protobuf fields
/// merge by concatenation, so the pieces in order are one `ExportTraceServiceRequest`.
/// Compressing exporters read the pieces in place; only the others join them (one copy).
#[derive(Debug, Clone)]
pub(crate) struct Body {
    parts: Arc<[Bytes]>,
    len: usize,
}

impl Body {
    /// A body made of `parts`, in order.
    pub(crate) fn new(parts: Vec<Bytes>) -> Self {
        let len = parts.iter().map(Bytes::len).sum();
        Self {
            parts: parts.into(),
            len,
        }
    }

    /// Total bytes.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The pieces, in order.
    pub(crate) fn parts(&self) -> &[Bytes] {
        &self.parts
    }

    /// The body in one buffer (no copy when it has one piece).
    pub(crate) fn to_bytes(&self) -> Bytes {
        match &*self.parts {
            [one] => one.clone(),
            parts => crate::wire::batch::concat(parts),
        }
    }
}

impl From<Bytes> for Body {
    fn from(b: Bytes) -> Self {
        Self::new(vec![b])
    }
}

/// Compresses a request body (joins it when not compressing).
pub(crate) fn compress(
    body: &Body,
    compression: super::config::Compression,
    level: u32,
) -> std::io::Result<Bytes> {
    match compression {
        super::config::Compression::None => Ok(body.to_bytes()),
        c => compress_after(Vec::with_capacity(body.len() / 4), body.parts(), c, level)
            .map(Bytes::from),
    }
}

/// Appends the compressed concatenation of `parts` to `out` (which may already hold a frame
/// header), reading each part in place.
pub(crate) fn compress_after(
    out: Vec<u8>,
    parts: &[Bytes],
    compression: super::config::Compression,
    level: u32,
) -> std::io::Result<Vec<u8>> {
    use super::config::Compression;
    use std::io::Write;
    match compression {
        Compression::None => {
            let mut out = out;
            out.reserve(parts.iter().map(Bytes::len).sum());
            for p in parts {
                out.extend_from_slice(p);
            }
            Ok(out)
        }
        Compression::Gzip => gzip_after(out, parts, level.min(9)),
        Compression::Zstd => {
            let level = i32::try_from(level.min(22)).unwrap_or(1);
            let mut enc = zstd::stream::Encoder::new(out, level)?;
            for p in parts {
                enc.write_all(p)?;
            }
            enc.finish()
        }
    }
}

/// The fixed gzip member header (RFC 1952): magic, deflate, no flags, no mtime, no extra flags,
/// unknown OS.
const GZIP_HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];

/// One gzip member holding the concatenation of `parts`, deflated straight into `out` with
/// flate2's raw deflate (no intermediate buffer, no joined copy of the input).
fn gzip_after(mut out: Vec<u8>, parts: &[Bytes], level: u32) -> std::io::Result<Vec<u8>> {
    use flate2::{Compress, Crc, FlushCompress, Status};
    out.extend_from_slice(&GZIP_HEADER);
    let mut deflate = Compress::new(flate2::Compression::new(level), false);
    let mut crc = Crc::new();
    let last = parts.len().saturating_sub(1);
    let empty = [Bytes::new()];
    let parts = if parts.is_empty() { &empty[..] } else { parts };
    for (i, part) in parts.iter().enumerate() {
        crc.update(part);
        let flush = if i == last {
            FlushCompress::Finish
        } else {
            FlushCompress::None
        };
        let mut input: &[u8] = part;
        loop {
            if out.capacity() - out.len() < 1024 {
                out.reserve((input.len() / 4).max(16 << 10));
            }
            let before = deflate.total_in();
            let status = deflate
                .compress_vec(input, &mut out, flush)
                .map_err(std::io::Error::other)?;
            let used = usize::try_from(deflate.total_in() - before).unwrap_or(input.len());
            input = &input[used.min(input.len())..];
            match (flush, status) {
                (FlushCompress::Finish, Status::StreamEnd) => break,
                (FlushCompress::Finish, _) => {}
                _ if input.is_empty() => break,
                _ => {}
            }
        }
    }
    out.extend_from_slice(&crc.sum().to_le_bytes());
    out.extend_from_slice(&crc.amount().to_le_bytes());
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::config::Compression;

    fn gunzip(gz: &[u8]) -> Vec<u8> {
        // GzDecoder checks the trailer's CRC-32 and length.
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(gz), &mut out).unwrap();
        out
    }

    #[test]
    fn gzip_and_zstd_round_trip() {
        let raw = Bytes::from(b"hello hello hello hello".repeat(10));
        let body = Body::from(raw.clone());
        let gz = compress(&body, Compression::Gzip, 1).unwrap();
        assert_eq!(gunzip(&gz), raw);
        let z = compress(&body, Compression::Zstd, 1).unwrap();
        assert_eq!(zstd::bulk::decompress(&z, 1 << 20).unwrap(), raw);
        assert_eq!(
            &compress(&body, Compression::None, 1).unwrap()[..],
            &raw[..]
        );
    }

    #[test]
    fn a_body_of_many_parts_compresses_to_their_concatenation() {
        let request = crate::wire::testdata::TraceGen::new(7).encoded(300);
        let parts: Vec<Bytes> = (0..5).map(|_| request.clone()).collect();
        let joined = crate::wire::batch::concat(&parts);
        let body = Body::new(parts);
        assert_eq!(body.len(), joined.len());
        assert!(body.to_bytes() == joined);
        for level in [0, 1, 6, 9] {
            let gz = compress(&body, Compression::Gzip, level).unwrap();
            assert!(
                gunzip(&gz) == joined,
                "level {level}: not the concatenation"
            );
        }
        let z = compress(&body, Compression::Zstd, 3).unwrap();
        assert!(zstd::bulk::decompress(&z, 64 << 20).unwrap() == joined);
        assert!(compress(&body, Compression::None, 1).unwrap() == joined);
    }

    #[test]
    fn empty_bodies_are_valid_gzip() {
        for body in [Body::new(Vec::new()), Body::from(Bytes::new())] {
            let gz = compress(&body, Compression::Gzip, 1).unwrap();
            assert!(gunzip(&gz).is_empty());
        }
    }
}
