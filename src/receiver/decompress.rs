//! Request-body decompression with a cap on the inflated size.
//!
//! Inflating stops as soon as the output would pass the cap, so a compression bomb costs at most
//! `cap` bytes of memory and the time to inflate that much, never its full inflated size.

use std::io::Read;

use bytes::Bytes;

/// A `Content-Encoding` the HTTP receiver understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// No compression.
    Identity,
    /// gzip (RFC 1952); concatenated members are read as one stream.
    Gzip,
    /// Zstandard.
    Zstd,
}

impl Encoding {
    /// Parses a `Content-Encoding` header value (absent means identity).
    pub fn from_header(value: Option<&str>) -> Option<Self> {
        let value = value.map(str::trim).unwrap_or("");
        if value.is_empty() || value.eq_ignore_ascii_case("identity") {
            Some(Self::Identity)
        } else if value.eq_ignore_ascii_case("gzip") || value.eq_ignore_ascii_case("x-gzip") {
            Some(Self::Gzip)
        } else if value.eq_ignore_ascii_case("zstd") {
            Some(Self::Zstd)
        } else {
            None
        }
    }
}

/// Why a body could not be decompressed.
#[derive(Debug, thiserror::Error)]
pub enum DecompressError {
    /// The inflated body is larger than the cap.
    #[error("the decompressed request is larger than {cap} bytes")]
    TooLarge {
        /// The cap, in bytes.
        cap: usize,
    },
    /// The body is not valid data in its declared encoding.
    #[error("the request body is not valid {encoding:?} data: {source}")]
    Corrupt {
        /// The declared encoding.
        encoding: Encoding,
        /// What the decoder said.
        source: std::io::Error,
    },
}

/// The first allocation for inflated output; it grows as data arrives (up to the cap).
const INITIAL_OUTPUT: usize = 64 * 1024;

/// Decompresses `body` (already fully received) into at most `cap` bytes.
///
/// An identity body larger than `cap` is refused as well, so one limit describes the size of the
/// request handed to the pipeline whatever the encoding.
pub fn decompress(encoding: Encoding, body: Bytes, cap: usize) -> Result<Bytes, DecompressError> {
    match encoding {
        Encoding::Identity if body.len() > cap => Err(DecompressError::TooLarge { cap }),
        Encoding::Identity => Ok(body),
        Encoding::Gzip => inflate(
            flate2::read::MultiGzDecoder::new(&body[..]),
            encoding,
            body.len(),
            cap,
        ),
        Encoding::Zstd => {
            let decoder = zstd::stream::read::Decoder::with_buffer(&body[..])
                .map_err(|source| DecompressError::Corrupt { encoding, source })?;
            inflate(decoder, encoding, body.len(), cap)
        }
    }
}

/// Reads `reader` to the end into a buffer, failing once more than `cap` bytes come out.
fn inflate(
    reader: impl Read,
    encoding: Encoding,
    compressed_len: usize,
    cap: usize,
) -> Result<Bytes, DecompressError> {
    let initial = compressed_len
        .saturating_mul(4)
        .max(INITIAL_OUTPUT)
        .min(cap);
    let mut out = Vec::with_capacity(initial);
    // Reading one byte past the cap tells "exactly cap" from "more than cap".
    let limit = u64::try_from(cap).unwrap_or(u64::MAX).saturating_add(1);
    reader
        .take(limit)
        .read_to_end(&mut out)
        .map_err(|source| DecompressError::Corrupt { encoding, source })?;
    if out.len() > cap {
        return Err(DecompressError::TooLarge { cap });
    }
    Ok(Bytes::from(out))
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn gzip(data: &[u8]) -> Bytes {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(data).unwrap();
        Bytes::from(enc.finish().unwrap())
    }

    fn zstd(data: &[u8]) -> Bytes {
        Bytes::from(zstd::stream::encode_all(data, 1).unwrap())
    }

    #[test]
    fn parses_content_encoding() {
        assert_eq!(Encoding::from_header(None), Some(Encoding::Identity));
        assert_eq!(
            Encoding::from_header(Some("identity")),
            Some(Encoding::Identity)
        );
        assert_eq!(Encoding::from_header(Some("GZIP")), Some(Encoding::Gzip));
        assert_eq!(Encoding::from_header(Some("zstd")), Some(Encoding::Zstd));
        assert_eq!(Encoding::from_header(Some("br")), None);
    }

    #[test]
    fn round_trips_within_the_cap() {
        let data = b"hello hello hello hello".repeat(100);
        assert_eq!(
            decompress(Encoding::Gzip, gzip(&data), data.len()).unwrap(),
            data
        );
        assert_eq!(
            decompress(Encoding::Zstd, zstd(&data), data.len()).unwrap(),
            data
        );
        assert_eq!(
            decompress(Encoding::Identity, Bytes::from(data.clone()), data.len()).unwrap(),
            data
        );
    }

    #[test]
    fn refuses_one_byte_over_the_cap() {
        let data = vec![7u8; 1000];
        for (enc, body) in [
            (Encoding::Gzip, gzip(&data)),
            (Encoding::Zstd, zstd(&data)),
            (Encoding::Identity, Bytes::from(data.clone())),
        ] {
            assert!(
                matches!(
                    decompress(enc, body, 999),
                    Err(DecompressError::TooLarge { cap: 999 })
                ),
                "{enc:?}"
            );
        }
    }

    #[test]
    fn stops_inflating_a_bomb_at_the_cap() {
        // 256 MiB of zeros as 32 gzip members of 8 MiB (~8 KiB each); with a 1 MiB cap the
        // output never grows past the cap (checked via the error, not timing).
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        enc.write_all(&vec![0u8; 8 << 20]).unwrap();
        let member = enc.finish().unwrap();
        let bomb = Bytes::from(member.repeat(32));
        assert!(bomb.len() < 1 << 20);
        assert!(matches!(
            decompress(Encoding::Gzip, bomb, 1 << 20),
            Err(DecompressError::TooLarge { .. })
        ));
    }

    #[test]
    fn corrupt_data_is_reported() {
        let garbage = Bytes::from_static(b"definitely not gzip");
        assert!(matches!(
            decompress(Encoding::Gzip, garbage.clone(), 1 << 20),
            Err(DecompressError::Corrupt { .. })
        ));
        assert!(matches!(
            decompress(Encoding::Zstd, garbage, 1 << 20),
            Err(DecompressError::Corrupt { .. })
        ));
    }
}
