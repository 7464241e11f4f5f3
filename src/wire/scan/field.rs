//! Reading the wire: varints, one field at a time, groups skipped as prost skips them.

use super::*;

/// prost's default recursion limit for nested messages.
pub(super) const RECURSION_LIMIT: u32 = 100;

/// One field as read off the wire.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Field<'a> {
    Varint(u64),
    Fixed64(u64),
    Fixed32(u32),
    Len(&'a [u8]),
    /// A group (deprecated wire types 3/4), only ever skipped.
    Group,
}

/// Reads a varint the way prost does: at most 10 bytes, the 10th at most 1.
#[inline(always)]
pub(crate) fn read_varint(buf: &[u8], pos: &mut usize) -> Option<u64> {
    let b = *buf.get(*pos)?;
    if b < 0x80 {
        *pos += 1;
        return Some(u64::from(b));
    }
    read_varint_slow(buf, pos)
}

#[cold]
#[inline(never)]
pub(super) fn read_varint_slow(buf: &[u8], pos: &mut usize) -> Option<u64> {
    let mut value: u64 = 0;
    for i in 0..10 {
        let b = *buf.get(*pos)?;
        *pos += 1;
        if i == 9 && b > 1 {
            return None;
        }
        value |= u64::from(b & 0x7f) << (7 * i);
        if b < 0x80 {
            return Some(value);
        }
    }
    None
}

/// Iterates the fields of a message body that is already known to be valid (used by views).
/// Stops at the first malformed field, which cannot happen after a successful scan.
pub(crate) struct FieldIter<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> FieldIter<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }
}

impl<'a> Iterator for FieldIter<'a> {
    type Item = Result<(u32, Field<'a>), ScanError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.pos >= self.buf.len() {
            return None;
        }
        let r = next_field(self.buf, &mut self.pos, RECURSION_LIMIT);
        if r.is_err() {
            self.pos = self.buf.len();
        }
        Some(r)
    }
}

pub(super) fn err(reason: &'static str, offset: usize) -> ScanError {
    ScanError { reason, offset }
}

/// Reads one field (key + payload) at `pos`. Groups are skipped whole, as prost skips them.
#[inline(always)]
pub(super) fn next_field<'a>(
    buf: &'a [u8],
    pos: &mut usize,
    depth: u32,
) -> Result<(u32, Field<'a>), ScanError> {
    let start = *pos;
    let key = read_varint(buf, pos).ok_or_else(|| err("invalid varint", start))?;
    if key > u64::from(u32::MAX) {
        return Err(err("invalid key value", start));
    }
    let wire_type = (key & 7) as u8;
    let tag = (key >> 3) as u32;
    if tag == 0 {
        return Err(err("invalid tag value: 0", start));
    }
    let field = match wire_type {
        0 => Field::Varint(read_varint(buf, pos).ok_or_else(|| err("invalid varint", *pos))?),
        1 => {
            let b = buf
                .get(*pos..*pos + 8)
                .ok_or_else(|| err("buffer underflow", *pos))?;
            *pos += 8;
            Field::Fixed64(u64::from_le_bytes(b.try_into().expect("8 bytes")))
        }
        2 => {
            let len_at = *pos;
            let len = read_varint(buf, pos).ok_or_else(|| err("invalid varint", len_at))?;
            let remaining = (buf.len() - *pos) as u64;
            if len > remaining {
                return Err(err("buffer underflow", len_at));
            }
            let b = &buf[*pos..*pos + len as usize];
            *pos += len as usize;
            Field::Len(b)
        }
        3 => {
            skip_group(buf, pos, tag, depth)?;
            Field::Group
        }
        4 => return Err(err("unexpected end group tag", start)),
        5 => {
            let b = buf
                .get(*pos..*pos + 4)
                .ok_or_else(|| err("buffer underflow", *pos))?;
            *pos += 4;
            Field::Fixed32(u32::from_le_bytes(b.try_into().expect("4 bytes")))
        }
        _ => return Err(err("invalid wire type value", start)),
    };
    Ok((tag, field))
}

pub(super) fn skip_group(
    buf: &[u8],
    pos: &mut usize,
    tag: u32,
    depth: u32,
) -> Result<(), ScanError> {
    if depth == 0 {
        return Err(err("recursion limit reached", *pos));
    }
    loop {
        let start = *pos;
        if *pos >= buf.len() {
            return Err(err("buffer underflow", start));
        }
        let key = read_varint(buf, pos).ok_or_else(|| err("invalid varint", start))?;
        if key > u64::from(u32::MAX) {
            return Err(err("invalid key value", start));
        }
        let wire_type = (key & 7) as u8;
        let inner = (key >> 3) as u32;
        if inner == 0 {
            return Err(err("invalid tag value: 0", start));
        }
        if wire_type == 4 {
            if inner != tag {
                return Err(err("unexpected end group tag", start));
            }
            return Ok(());
        }
        // Re-read this field through next_field, one level deeper.
        *pos = start;
        if depth - 1 == 0 {
            return Err(err("recursion limit reached", start));
        }
        next_field(buf, pos, depth - 1)?;
    }
}
