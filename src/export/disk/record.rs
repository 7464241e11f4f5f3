//! The on-disk formats: record headers, the ack file, segment paths, and the scans that
//! count and resynchronise records after damage.

use super::*;

pub(super) fn seg_path(dir: &Path, seg: u64) -> PathBuf {
    dir.join(format!("{seg:020}.seg"))
}

pub(super) fn header(len: u32, spans: u32, payload: &[u8]) -> [u8; HEADER] {
    let mut h = [0u8; HEADER];
    h[0..4].copy_from_slice(&MAGIC.to_le_bytes());
    h[4..8].copy_from_slice(&len.to_le_bytes());
    h[8..12].copy_from_slice(&spans.to_le_bytes());
    let hc = crc32fast::hash(&h[0..12]);
    h[12..16].copy_from_slice(&hc.to_le_bytes());
    h[16..20].copy_from_slice(&crc32fast::hash(payload).to_le_bytes());
    h
}

/// A header that passed its own checksum: (payload length, spans, payload crc).
pub(super) fn parse_header(h: &[u8; HEADER]) -> Option<(u32, u32, u32)> {
    let word = |i: usize| u32::from_le_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]);
    if word(0) != MAGIC || crc32fast::hash(&h[0..12]) != word(12) {
        return None;
    }
    Some((word(4), word(8), word(16)))
}

pub(super) fn ack_bytes(seg: u64, off: u64) -> [u8; 20] {
    let mut b = [0u8; 20];
    b[0..8].copy_from_slice(&seg.to_le_bytes());
    b[8..16].copy_from_slice(&off.to_le_bytes());
    let c = crc32fast::hash(&b[0..16]);
    b[16..20].copy_from_slice(&c.to_le_bytes());
    b
}

pub(super) fn parse_ack(b: &[u8]) -> Option<(u64, u64)> {
    if b.len() != 20 {
        return None;
    }
    let c = u32::from_le_bytes(b[16..20].try_into().ok()?);
    if crc32fast::hash(&b[0..16]) != c {
        return None;
    }
    Some((
        u64::from_le_bytes(b[0..8].try_into().ok()?),
        u64::from_le_bytes(b[8..16].try_into().ok()?),
    ))
}

pub(super) fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Counts the records from `off` to the first invalid header (a cheap header-only walk).
pub(super) fn count_records(path: &Path, off: u64) -> (usize, usize) {
    let Ok(f) = File::open(path) else {
        return (0, 0);
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let mut r = BufReader::with_capacity(64 << 10, f);
    if r.seek(SeekFrom::Start(off)).is_err() {
        return (0, 0);
    }
    let (mut pos, mut n, mut bytes) = (off, 0, 0);
    let mut h = [0u8; HEADER];
    while pos + HEADER as u64 <= len && r.read_exact(&mut h).is_ok() {
        let Some((plen, _, _)) = parse_header(&h) else {
            break;
        };
        if pos + (HEADER as u64) + u64::from(plen) > len {
            break;
        }
        n += 1;
        bytes += plen as usize;
        pos += HEADER as u64 + u64::from(plen);
        if r.seek_relative(i64::from(plen)).is_err() {
            break;
        }
    }
    (n, bytes)
}

/// What reading one record found.
pub(super) enum Read1 {
    Record {
        bytes: Bytes,
        spans: usize,
        end: u64,
    },
    /// The record at the position does not fit in `room`.
    NoRoom,
    /// Damaged: skip to `next` (the next valid header, or the segment's end).
    Damaged { next: u64, why: &'static str },
}

/// The offset of the next valid header in `[from, limit)`, or `limit`.
pub(super) fn resync(f: &File, from: u64, limit: u64) -> u64 {
    let magic = MAGIC.to_le_bytes();
    let mut buf = vec![0u8; 1 << 20];
    let mut pos = from;
    while pos + HEADER as u64 <= limit {
        let n = ((limit - pos) as usize).min(buf.len());
        if f.read_exact_at(&mut buf[..n], pos).is_err() {
            return limit;
        }
        let mut k = 0;
        while k + 4 <= n {
            if buf[k..k + 4] == magic {
                let at = pos + k as u64;
                let mut h = [0u8; HEADER];
                if f.read_exact_at(&mut h, at).is_ok() {
                    if let Some((plen, _, _)) = parse_header(&h) {
                        if at + HEADER as u64 + u64::from(plen) <= limit {
                            return at;
                        }
                    }
                }
            }
            k += 1;
        }
        // Overlap by 3 bytes so a magic split across two reads is found.
        pos += (n as u64).saturating_sub(3).max(1);
    }
    limit
}
