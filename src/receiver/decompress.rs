//! Request-body decompression with a cap on the inflated size.
//!
//! Inflating stops as soon as the output would pass the cap, so a compression bomb costs at most
//! `cap` bytes of memory and the time to inflate that much, never its full inflated size.
//! [`decompress_within`] also reserves every byte of output from the memory budget before it
//! allocates it, so concurrent requests cannot inflate past the budget either.

use std::io::Read;

use bytes::Bytes;

use crate::pipeline::MemoryPermit;

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
    /// The memory budget has no room for the inflated body now (retryable).
    #[error("no memory for the decompressed request now ({held} bytes held); retry later")]
    NoMemory {
        /// Bytes of output held when the budget refused more.
        held: usize,
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

/// Like [`decompress`], but every byte of output buffer is reserved in `permit` before it is
/// allocated (the buffer doubles from a first guess, reserving each step). On success `permit`
/// holds the capacity of the returned buffer.
pub fn decompress_within(
    encoding: Encoding,
    body: &[u8],
    cap: usize,
    permit: &mut MemoryPermit,
) -> Result<Bytes, DecompressError> {
    match encoding {
        Encoding::Identity if body.len() > cap => Err(DecompressError::TooLarge { cap }),
        Encoding::Identity => Ok(Bytes::copy_from_slice(body)),
        Encoding::Gzip => {
            // The gzip trailer states the (last member's) size mod 2^32: a hint for the first
            // allocation, so an honest body is inflated without re-allocating; a wrong hint only
            // costs the doubling it would have cost anyway.
            let hint = body
                .len()
                .checked_sub(4)
                .map(|at| u32::from_le_bytes([body[at], body[at + 1], body[at + 2], body[at + 3]]))
                .map(|size| size as usize + 1);
            inflate_within(
                flate2::read::MultiGzDecoder::new(body),
                encoding,
                hint.unwrap_or(0),
                body.len(),
                cap,
                permit,
            )
        }
        Encoding::Zstd => {
            let hint = zstd::zstd_safe::get_frame_content_size(body)
                .ok()
                .flatten()
                .and_then(|n| usize::try_from(n).ok())
                .map(|n| n.saturating_add(1));
            let decoder = zstd::stream::read::Decoder::with_buffer(body)
                .map_err(|source| DecompressError::Corrupt { encoding, source })?;
            inflate_within(
                decoder,
                encoding,
                hint.unwrap_or(0),
                body.len(),
                cap,
                permit,
            )
        }
    }
}

fn inflate_within(
    mut reader: impl Read,
    encoding: Encoding,
    size_hint: usize,
    compressed_len: usize,
    cap: usize,
    permit: &mut MemoryPermit,
) -> Result<Bytes, DecompressError> {
    // One byte past the cap tells "exactly cap" from "more than cap".
    let ceiling = cap.saturating_add(1);
    let mut out: Vec<u8> = Vec::new();
    let mut filled = 0;
    loop {
        if filled == out.len() {
            if out.len() >= ceiling {
                return Err(DecompressError::TooLarge { cap });
            }
            let target = if out.is_empty() {
                if size_hint > compressed_len {
                    size_hint
                } else {
                    compressed_len.saturating_mul(4).max(INITIAL_OUTPUT)
                }
            } else {
                out.len().saturating_mul(2)
            }
            .min(ceiling);
            let extra = target - out.len();
            // A reallocation holds the old and the new buffer at once.
            if !permit.try_grow(target) {
                if out.len() + target > permit.limit() {
                    // It could never fit, however long the client waits.
                    return Err(DecompressError::TooLarge { cap: out.len() });
                }
                return Err(DecompressError::NoMemory { held: out.len() });
            }
            let mut grown = Vec::with_capacity(target);
            grown.extend_from_slice(&out[..filled]);
            drop(std::mem::take(&mut out));
            grown.resize(target, 0);
            out = grown;
            permit.resize(permit.bytes() - (target - extra));
        }
        match reader.read(&mut out[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(source) => return Err(DecompressError::Corrupt { encoding, source }),
        }
    }
    if filled > cap {
        return Err(DecompressError::TooLarge { cap });
    }
    out.truncate(filled);
    Ok(Bytes::from(out))
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
    fn reserves_output_before_allocating_it() {
        let data = b"hello hello hello hello".repeat(10_000);
        let budget = crate::pipeline::MemoryBudget::new(1 << 20);
        let mut permit = budget.empty();
        let out = decompress_within(Encoding::Gzip, &gzip(&data), 1 << 20, &mut permit).unwrap();
        assert_eq!(out, data);
        assert!(
            permit.bytes() >= data.len(),
            "the output is held: {}",
            permit.bytes()
        );
        drop(permit);
        assert_eq!(budget.used(), 0);

        // The same body while others hold most of the budget: refused for now, nothing left
        // held; with a budget that could never hold it: too large.
        let small = crate::pipeline::MemoryBudget::new(1 << 20);
        let others = small.try_acquire(900_000).unwrap();
        let mut permit = small.empty();
        assert!(matches!(
            decompress_within(Encoding::Zstd, &zstd(&data), 1 << 20, &mut permit),
            Err(DecompressError::NoMemory { .. })
        ));
        drop(permit);
        drop(others);
        assert_eq!(small.used(), 0);
        let tiny = crate::pipeline::MemoryBudget::new(100_000);
        let mut permit = tiny.empty();
        assert!(matches!(
            decompress_within(Encoding::Zstd, &zstd(&data), 1 << 20, &mut permit),
            Err(DecompressError::TooLarge { .. })
        ));

        // A bomb stops at the cap with the budget never past cap + 1 plus the old buffer.
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        enc.write_all(&vec![0u8; 8 << 20]).unwrap();
        let bomb = enc.finish().unwrap();
        let big = crate::pipeline::MemoryBudget::new(64 << 20);
        let mut permit = big.empty();
        assert!(matches!(
            decompress_within(Encoding::Gzip, &bomb, 1 << 20, &mut permit),
            Err(DecompressError::TooLarge { .. })
        ));
        assert!(permit.bytes() <= (1 << 20) + 1, "{}", permit.bytes());
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
