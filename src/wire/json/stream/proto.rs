//! Protobuf writing: varints, keys, and length-prefixed messages written length-first.

pub(super) const VARINT: u8 = 0;
pub(super) const I64: u8 = 1;
pub(super) const LEN: u8 = 2;
pub(super) const I32: u8 = 5;

#[inline]
pub(super) fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

#[inline]
pub(super) fn varint_len(v: u64) -> usize {
    // 1 byte per 7 bits, at least one.
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
}

#[inline]
pub(super) fn put_key(out: &mut Vec<u8>, field: u32, wire: u8) {
    put_varint(out, (u64::from(field) << 3) | u64::from(wire));
}

#[inline]
pub(super) fn put_len_field(out: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    put_key(out, field, LEN);
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// An open length-delimited field: where its content starts and how many bytes were reserved
/// for its length.
pub(super) struct Open {
    pub(super) at: usize,
    pub(super) reserve: usize,
}

#[inline]
pub(super) fn open(out: &mut Vec<u8>, field: u32, reserve: usize) -> Open {
    put_key(out, field, LEN);
    let at = out.len();
    out.resize(at + reserve, 0);
    Open { at, reserve }
}

#[inline]
pub(super) fn close(out: &mut Vec<u8>, o: Open) {
    let end = out.len();
    let len = end - o.at - o.reserve;
    let n = varint_len(len as u64);
    if n > o.reserve {
        out.resize(end + n - o.reserve, 0);
        out.copy_within(o.at + o.reserve..end, o.at + n);
    } else if n < o.reserve {
        out.copy_within(o.at + o.reserve..end, o.at + n);
        out.truncate(end - (o.reserve - n));
    }
    let mut v = len as u64;
    for b in &mut out[o.at..o.at + n - 1] {
        *b = (v as u8) | 0x80;
        v >>= 7;
    }
    out[o.at + n - 1] = v as u8;
}
