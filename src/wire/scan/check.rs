//! Validation of the message types tollgate does not index (values, scopes, events, links,
//! status): prost's rules, without building anything.

use super::*;

// === validation of each message type ===
//
// Each `check_*` walks one message body at a known absolute offset `base` (for error offsets),
// with `depth` nested levels still allowed, and enforces the wire type of every known field.

pub(super) type Check = fn(&[u8], usize, u32) -> Result<(), ScanError>;

/// Walks a message body, validating known fields with `on_field`.
#[inline]
pub(super) fn walk<'a>(
    buf: &'a [u8],
    base: usize,
    depth: u32,
    mut on_field: impl FnMut(u32, Field<'a>, usize) -> Result<(), ScanError>,
) -> Result<(), ScanError> {
    let mut pos = 0;
    while pos < buf.len() {
        let start = pos;
        let (tag, field) = next_field(buf, &mut pos, depth).map_err(|e| ScanError {
            offset: base + e.offset,
            ..e
        })?;
        // Offset of the payload start, for nested checks.
        let payload = match field {
            Field::Len(b) => base + pos - b.len(),
            _ => base + start,
        };
        on_field(tag, field, payload)?;
    }
    Ok(())
}

pub(super) fn expect_len<'a>(field: Field<'a>, at: usize) -> Result<&'a [u8], ScanError> {
    match field {
        Field::Len(b) => Ok(b),
        _ => Err(err("invalid wire type", at)),
    }
}

pub(super) fn expect_str(field: Field<'_>, at: usize) -> Result<(), ScanError> {
    utf8(expect_len(field, at)?, at)
}

pub(super) fn expect_varint(field: Field<'_>, at: usize) -> Result<u64, ScanError> {
    match field {
        Field::Varint(v) => Ok(v),
        _ => Err(err("invalid wire type", at)),
    }
}

pub(super) fn expect_fixed64(field: Field<'_>, at: usize) -> Result<u64, ScanError> {
    match field {
        Field::Fixed64(v) => Ok(v),
        _ => Err(err("invalid wire type", at)),
    }
}

pub(super) fn expect_fixed32(field: Field<'_>, at: usize) -> Result<u32, ScanError> {
    match field {
        Field::Fixed32(v) => Ok(v),
        _ => Err(err("invalid wire type", at)),
    }
}

pub(super) fn nested(
    field: Field<'_>,
    at: usize,
    depth: u32,
    check: Check,
) -> Result<(), ScanError> {
    let b = expect_len(field, at)?;
    if depth == 0 {
        return Err(err("recursion limit reached", at));
    }
    check(b, at, depth - 1)
}

/// An unknown field is skipped, but prost refuses even that once the recursion limit is reached.
pub(super) fn unknown(depth: u32, at: usize) -> Result<(), ScanError> {
    if depth == 0 {
        Err(err("recursion limit reached", at))
    } else {
        Ok(())
    }
}

pub(super) fn check_any_value(buf: &[u8], base: usize, depth: u32) -> Result<(), ScanError> {
    walk(buf, base, depth, |tag, f, at| match tag {
        1 => expect_str(f, at),
        2 | 3 | 8 => expect_varint(f, at).map(|_| ()),
        4 => expect_fixed64(f, at).map(|_| ()),
        5 => nested(f, at, depth, check_array),
        6 => nested(f, at, depth, check_kvlist),
        7 => expect_len(f, at).map(|_| ()),
        _ => unknown(depth, at),
    })
}

pub(super) fn check_array(buf: &[u8], base: usize, depth: u32) -> Result<(), ScanError> {
    walk(buf, base, depth, |tag, f, at| match tag {
        1 => nested(f, at, depth, check_any_value),
        _ => unknown(depth, at),
    })
}

pub(super) fn check_kvlist(buf: &[u8], base: usize, depth: u32) -> Result<(), ScanError> {
    walk(buf, base, depth, |tag, f, at| match tag {
        1 => nested(f, at, depth, check_key_value),
        _ => unknown(depth, at),
    })
}

pub(super) fn check_key_value(buf: &[u8], base: usize, depth: u32) -> Result<(), ScanError> {
    walk(buf, base, depth, |tag, f, at| match tag {
        1 => expect_str(f, at),
        2 => nested(f, at, depth, check_any_value),
        3 => expect_varint(f, at).map(|_| ()),
        _ => unknown(depth, at),
    })
}

pub(super) fn check_entity_ref(buf: &[u8], base: usize, depth: u32) -> Result<(), ScanError> {
    walk(buf, base, depth, |tag, f, at| match tag {
        1..=4 => expect_str(f, at),
        _ => unknown(depth, at),
    })
}

pub(super) fn check_scope(buf: &[u8], base: usize, depth: u32) -> Result<(), ScanError> {
    walk(buf, base, depth, |tag, f, at| match tag {
        1 | 2 => expect_str(f, at),
        3 => nested(f, at, depth, check_key_value),
        4 => expect_varint(f, at).map(|_| ()),
        _ => unknown(depth, at),
    })
}

pub(super) fn check_event(buf: &[u8], base: usize, depth: u32) -> Result<(), ScanError> {
    walk(buf, base, depth, |tag, f, at| match tag {
        1 => expect_fixed64(f, at).map(|_| ()),
        2 => expect_str(f, at),
        3 => nested(f, at, depth, check_key_value),
        4 => expect_varint(f, at).map(|_| ()),
        _ => unknown(depth, at),
    })
}

pub(super) fn check_link(buf: &[u8], base: usize, depth: u32) -> Result<(), ScanError> {
    walk(buf, base, depth, |tag, f, at| match tag {
        1 | 2 => expect_len(f, at).map(|_| ()),
        3 => expect_str(f, at),
        4 => nested(f, at, depth, check_key_value),
        5 => expect_varint(f, at).map(|_| ()),
        6 => expect_fixed32(f, at).map(|_| ()),
        _ => unknown(depth, at),
    })
}

pub(super) fn check_status(buf: &[u8], base: usize, depth: u32) -> Result<(), ScanError> {
    walk(buf, base, depth, |tag, f, at| match tag {
        2 => expect_str(f, at),
        3 => expect_varint(f, at).map(|_| ()),
        _ => unknown(depth, at),
    })
}
