//! Cheap handling of OTLP request bytes: counting spans, gRPC message framing, decompression.

use std::io::Read;

/// Why a body could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// The protobuf was malformed where the counting walk looked.
    #[error("malformed protobuf at byte {0}")]
    Malformed(usize),
    /// The gRPC length-prefixed framing was broken.
    #[error("malformed gRPC frame")]
    Frame,
    /// A compressed body could not be inflated.
    #[error("cannot decompress {encoding} body: {reason}")]
    Decompress {
        /// The content encoding.
        encoding: String,
        /// What went wrong.
        reason: String,
    },
    /// The inflated body exceeded the limit.
    #[error("decompressed body larger than {0} bytes")]
    TooLarge(usize),
    /// An encoding we do not speak.
    #[error("unsupported encoding {0}")]
    Unsupported(String),
}

fn read_varint(buf: &[u8], pos: &mut usize) -> Result<u64, WireError> {
    let mut value = 0u64;
    for i in 0..10 {
        let b = *buf.get(*pos).ok_or(WireError::Malformed(*pos))?;
        *pos += 1;
        value |= u64::from(b & 0x7f) << (7 * i);
        if b < 0x80 {
            return Ok(value);
        }
    }
    Err(WireError::Malformed(*pos))
}

/// Calls `f` with the body of every length-delimited field number `want` of a message, skipping
/// all other fields.
fn for_each_len_field(
    buf: &[u8],
    want: u64,
    mut f: impl FnMut(&[u8]) -> Result<(), WireError>,
) -> Result<(), WireError> {
    let mut pos = 0;
    while pos < buf.len() {
        let at = pos;
        let key = read_varint(buf, &mut pos)?;
        match key & 7 {
            0 => {
                read_varint(buf, &mut pos)?;
            }
            1 => pos += 8,
            5 => pos += 4,
            2 => {
                let len = usize::try_from(read_varint(buf, &mut pos)?)
                    .map_err(|_| WireError::Malformed(at))?;
                let end = pos.checked_add(len).ok_or(WireError::Malformed(at))?;
                let body = buf.get(pos..end).ok_or(WireError::Malformed(at))?;
                if key >> 3 == want {
                    f(body)?;
                }
                pos = end;
            }
            _ => return Err(WireError::Malformed(at)),
        }
        if pos > buf.len() {
            return Err(WireError::Malformed(at));
        }
    }
    Ok(())
}

/// Counts the spans of an encoded `ExportTraceServiceRequest` by walking only the
/// resource → scope → span nesting (no validation of span contents).
pub fn count_spans(buf: &[u8]) -> Result<u64, WireError> {
    let mut n = 0u64;
    // ExportTraceServiceRequest.resource_spans = 1, ResourceSpans.scope_spans = 2,
    // ScopeSpans.spans = 2.
    for_each_len_field(buf, 1, |resource| {
        for_each_len_field(resource, 2, |scope| {
            for_each_len_field(scope, 2, |_| {
                n += 1;
                Ok(())
            })
        })
    })?;
    Ok(n)
}

/// Wraps a message in the gRPC length-prefixed framing.
pub fn grpc_frame(message: &[u8], compressed: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + 5);
    out.push(u8::from(compressed));
    out.extend_from_slice(&(message.len() as u32).to_be_bytes());
    out.extend_from_slice(message);
    out
}

/// Splits a gRPC body into its messages: (compressed flag, message bytes).
pub fn grpc_messages(body: &[u8]) -> Result<Vec<(bool, &[u8])>, WireError> {
    let mut out = Vec::with_capacity(1);
    let mut pos = 0;
    while pos < body.len() {
        let header = body.get(pos..pos + 5).ok_or(WireError::Frame)?;
        let len = u32::from_be_bytes([header[1], header[2], header[3], header[4]]) as usize;
        let start = pos + 5;
        let msg = body.get(start..start + len).ok_or(WireError::Frame)?;
        out.push((header[0] == 1, msg));
        pos = start + len;
    }
    Ok(out)
}

/// Inflates `data` compressed with `encoding` (gzip, deflate, zstd or identity), refusing to
/// produce more than `limit` bytes.
pub fn decompress(encoding: &str, data: &[u8], limit: usize) -> Result<Vec<u8>, WireError> {
    let err = |e: std::io::Error| WireError::Decompress {
        encoding: encoding.to_string(),
        reason: e.to_string(),
    };
    let mut out = Vec::with_capacity(data.len().saturating_mul(8).min(limit));
    let cap = limit as u64 + 1;
    match encoding {
        "" | "identity" => out.extend_from_slice(data),
        "gzip" => {
            flate2::read::MultiGzDecoder::new(data)
                .take(cap)
                .read_to_end(&mut out)
                .map_err(err)?;
        }
        "deflate" => {
            flate2::read::ZlibDecoder::new(data)
                .take(cap)
                .read_to_end(&mut out)
                .map_err(err)?;
        }
        "zstd" => {
            zstd::stream::read::Decoder::new(data)
                .map_err(err)?
                .take(cap)
                .read_to_end(&mut out)
                .map_err(err)?;
        }
        other => return Err(WireError::Unsupported(other.to_string())),
    }
    if out.len() > limit {
        return Err(WireError::TooLarge(limit));
    }
    Ok(out)
}

/// Gzips `data` at `level` (0–9).
pub fn gzip(data: &[u8], level: u32) -> Vec<u8> {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(level));
    // Writing to a Vec cannot fail.
    match enc.write_all(data) {
        Ok(()) => enc.finish().unwrap_or_default(),
        Err(_) => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tollgate::wire::testdata::TraceGen;

    #[test]
    fn count_matches_generated_spans() {
        let mut g = TraceGen::new(5);
        for n in [0, 1, 17, 500] {
            let buf = if n == 0 {
                Vec::new()
            } else {
                g.encoded(n).to_vec()
            };
            assert_eq!(count_spans(&buf), Ok(n as u64));
        }
        // Two requests concatenated are one request holding both.
        let mut two = g.encoded(10).to_vec();
        two.extend_from_slice(&g.encoded(20));
        assert_eq!(count_spans(&two), Ok(30));
    }

    #[test]
    fn count_rejects_truncated_bytes() {
        let buf = TraceGen::new(5).encoded(3);
        assert!(count_spans(&buf[..buf.len() - 3]).is_err());
        assert!(count_spans(&[0x0a, 0x80]).is_err());
    }

    #[test]
    fn frames_roundtrip_and_gzip_inflates() {
        let msg = TraceGen::new(9).encoded(50);
        let packed = gzip(&msg, 1);
        let mut body = grpc_frame(&packed, true);
        body.extend_from_slice(&grpc_frame(&msg, false));
        let msgs = grpc_messages(&body).expect("framing");
        assert_eq!(msgs.len(), 2);
        assert!(msgs[0].0 && !msgs[1].0);
        let inflated = decompress("gzip", msgs[0].1, 10 << 20).expect("inflates");
        assert_eq!(inflated, msg.to_vec());
        assert_eq!(msgs[1].1, &msg[..]);
        assert!(grpc_messages(&body[..body.len() - 1]).is_err());
    }

    #[test]
    fn decompress_refuses_past_the_limit() {
        let big = vec![b'a'; 100_000];
        let packed = gzip(&big, 6);
        assert_eq!(
            decompress("gzip", &packed, 1000),
            Err(WireError::TooLarge(1000))
        );
        assert!(matches!(
            decompress("br", &packed, 1000),
            Err(WireError::Unsupported(_))
        ));
    }
}
