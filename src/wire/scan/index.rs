//! Indexing the messages processors read: resources, scopes, spans and their attributes.

use super::*;

/// Walks the fields of the message body at `buf[start..start + len]`, calling `f` with each
/// field's tag, payload, whole-field range and payload offset (all absolute).
#[inline(always)]
pub(super) fn for_each_field<'a>(
    buf: &'a [u8],
    start: usize,
    len: usize,
    depth: u32,
    mut f: impl FnMut(u32, Field<'a>, Range<usize>, usize) -> Result<(), ScanError>,
) -> Result<(), ScanError> {
    let body = &buf[start..start + len];
    let mut pos = 0;
    while pos < body.len() {
        let field_start = pos;
        let (tag, field) = next_field(body, &mut pos, depth).map_err(|e| shifted(e, start))?;
        let at = payload_at(start, field_start, pos, &field);
        f(tag, field, start + field_start..start + pos, at)?;
    }
    Ok(())
}

/// The payload of a nested message field, refused at the recursion limit as prost does.
#[inline(always)]
pub(super) fn nested_body<'a>(
    field: Field<'a>,
    at: usize,
    depth: u32,
) -> Result<&'a [u8], ScanError> {
    let b = expect_len(field, at)?;
    if depth == 0 {
        return Err(err("recursion limit reached", at));
    }
    Ok(b)
}

pub(super) fn scan_resource_spans(
    buf: &[u8],
    start: usize,
    len: usize,
    resource: u32,
    depth: u32,
    index: &mut RequestIndex,
) -> Result<(), ScanError> {
    for_each_field(buf, start, len, depth, |tag, field, whole, at| match tag {
        1 => {
            let b = nested_body(field, at, depth)?;
            scan_resource(buf, at, b.len(), depth - 1, &mut index.resource_attrs)
        }
        2 => {
            let b = nested_body(field, at, depth)?;
            let scope = index.scopes.len() as u32;
            index.scopes.push(ScopeIdx {
                resource,
                field: whole.start as u32..whole.end as u32,
                body: r(at, b.len()),
                name: 0..0,
                version: 0..0,
            });
            scan_scope_spans(buf, at, b.len(), scope, depth - 1, index)
        }
        3 => expect_str(field, at),
        _ => Ok(()),
    })
}

pub(super) fn scan_scope_spans(
    buf: &[u8],
    start: usize,
    len: usize,
    scope: u32,
    depth: u32,
    index: &mut RequestIndex,
) -> Result<(), ScanError> {
    for_each_field(buf, start, len, depth, |tag, field, whole, at| match tag {
        1 => {
            nested(field, at, depth, check_scope)?;
            // Last name and version win, as with prost's merge of a repeated optional message.
            let (mut name, mut version) = (None, None);
            for f in FieldIter::new(expect_len(field, at)?) {
                match f {
                    Ok((1, Field::Len(n))) => name = Some(offset_in(buf, n)),
                    Ok((2, Field::Len(v))) => version = Some(offset_in(buf, v)),
                    _ => {}
                }
            }
            let idx = &mut index.scopes[scope as usize];
            if let Some(name) = name {
                idx.name = name;
            }
            if let Some(version) = version {
                idx.version = version;
            }
            Ok(())
        }
        2 => {
            let b = nested_body(field, at, depth)?;
            let span = scan_span(buf, at, b.len(), scope, depth - 1, &mut index.attrs)?;
            index.spans.push(SpanIdx {
                field: whole.start as u32..whole.end as u32,
                ..span
            });
            Ok(())
        }
        3 => expect_str(field, at),
        _ => Ok(()),
    })
}

/// The range of `inner` (a subslice of `outer`) within `outer`.
pub(super) fn offset_in(outer: &[u8], inner: &[u8]) -> Range<u32> {
    let start = inner.as_ptr() as usize - outer.as_ptr() as usize;
    r(start, inner.len())
}

/// The absolute offset of a field's payload: where a length-delimited payload starts, else the
/// field's own start (for error offsets).
#[inline(always)]
pub(super) fn payload_at(base: usize, start: usize, pos: usize, field: &Field<'_>) -> usize {
    match field {
        Field::Len(b) => base + pos - b.len(),
        _ => base + start,
    }
}

#[inline(always)]
pub(super) fn shifted(e: ScanError, base: usize) -> ScanError {
    ScanError {
        offset: base + e.offset,
        ..e
    }
}

/// UTF-8 validation as prost does it (`str::from_utf8`), with a branch-free ASCII test first: most
/// keys and values are short ASCII strings, for which the OR of all bytes (vectorised by the
/// compiler) is far cheaper than the general validator's per-call setup.
#[inline(always)]
pub(super) fn utf8(b: &[u8], at: usize) -> Result<(), ScanError> {
    if b.iter().fold(0u8, |acc, &c| acc | c) < 0x80 || std::str::from_utf8(b).is_ok() {
        Ok(())
    } else {
        Err(err("invalid string value: data is not UTF-8 encoded", at))
    }
}

pub(super) fn scan_span(
    buf: &[u8],
    start: usize,
    len: usize,
    scope: u32,
    depth: u32,
    attrs: &mut Vec<AttrIdx>,
) -> Result<SpanIdx, ScanError> {
    let body = &buf[start..start + len];
    let first_attr = attrs.len() as u32;
    let mut span = SpanIdx {
        scope,
        field: 0..0,
        body: r(start, len),
        trace_id: 0..0,
        span_id: 0..0,
        parent_span_id: 0..0,
        name: 0..0,
        kind: 0,
        status_code: 0,
        start: 0,
        end: 0,
        attrs: 0..0,
    };
    let mut pos = 0;
    while pos < body.len() {
        let field_start = pos;
        let (tag, f) = next_field(body, &mut pos, depth).map_err(|e| shifted(e, start))?;
        let at = payload_at(start, field_start, pos, &f);
        match tag {
            9 => attrs.push(scan_attribute(
                buf,
                f,
                at,
                start + field_start..start + pos,
                depth,
            )?),
            1 => span.trace_id = r(at, expect_len(f, at)?.len()),
            2 => span.span_id = r(at, expect_len(f, at)?.len()),
            3 => expect_str(f, at)?,
            4 => span.parent_span_id = r(at, expect_len(f, at)?.len()),
            5 => {
                expect_str(f, at)?;
                span.name = r(at, expect_len(f, at)?.len());
            }
            6 => span.kind = expect_varint(f, at)? as i32,
            7 => span.start = expect_fixed64(f, at)?,
            8 => span.end = expect_fixed64(f, at)?,
            10 | 12 | 14 => {
                expect_varint(f, at)?;
            }
            11 => nested(f, at, depth, check_event)?,
            13 => nested(f, at, depth, check_link)?,
            15 => {
                nested(f, at, depth, check_status)?;
                // prost merges repeated occurrences of a message field: a later status without a
                // code keeps the earlier code.
                for g in FieldIter::new(expect_len(f, at)?) {
                    if let Ok((3, Field::Varint(c))) = g {
                        span.status_code = c as i32;
                    }
                }
            }
            16 => {
                expect_fixed32(f, at)?;
            }
            _ => {}
        }
    }
    span.attrs = first_attr..attrs.len() as u32;
    Ok(span)
}

/// Validates one `KeyValue` field (payload at `at`, whole field at `field`) of a span or
/// resource and indexes it.
#[inline(always)]
pub(super) fn scan_attribute(
    buf: &[u8],
    f: Field<'_>,
    at: usize,
    field: Range<usize>,
    depth: u32,
) -> Result<AttrIdx, ScanError> {
    let b = nested_body(f, at, depth)?;
    let (key, value) = scan_key_value(buf, at, b.len(), depth - 1)?;
    Ok(AttrIdx {
        field: field.start as u32..field.end as u32,
        key,
        value,
    })
}

/// Validates a `Resource` body (as prost would) and records its attributes.
pub(super) fn scan_resource(
    buf: &[u8],
    start: usize,
    len: usize,
    depth: u32,
    attrs: &mut Vec<AttrIdx>,
) -> Result<(), ScanError> {
    for_each_field(buf, start, len, depth, |tag, f, whole, at| match tag {
        1 => {
            attrs.push(scan_attribute(buf, f, at, whole, depth)?);
            Ok(())
        }
        2 => expect_varint(f, at).map(|_| ()),
        3 => nested(f, at, depth, check_entity_ref),
        _ => unknown(depth, at),
    })
}

/// Validates a `KeyValue` body at `start` (as prost would) and reads its key and value the way
/// prost's merge does: the last key; the value of the last `AnyValue` that sets one.
#[inline(always)]
pub(super) fn scan_key_value(
    buf: &[u8],
    start: usize,
    len: usize,
    depth: u32,
) -> Result<(Range<u32>, ValueIdx), ScanError> {
    let body = &buf[start..start + len];
    // Fast path for the layout every SDK writes: the key, then the value, each with a one-byte
    // length, and nothing else. It reads exactly what the general loop below would.
    if let [0x0a, klen, ..] = *body {
        let klen = usize::from(klen);
        if klen < 0x80 && 4 + klen <= len && body[2 + klen] == 0x12 {
            let vlen = usize::from(body[3 + klen]);
            if vlen < 0x80 && 4 + klen + vlen == len && depth > 0 {
                utf8(&body[2..2 + klen], start + 2)?;
                let at = start + 4 + klen;
                let value = scan_any_value(buf, at, vlen, depth - 1)?.unwrap_or(ValueIdx::Empty);
                return Ok((r(start + 2, klen), value));
            }
        }
    }
    let mut key = r(start, 0);
    let mut value = ValueIdx::Empty;
    let mut pos = 0;
    while pos < body.len() {
        let field_start = pos;
        let (tag, f) = next_field(body, &mut pos, depth).map_err(|e| shifted(e, start))?;
        let at = payload_at(start, field_start, pos, &f);
        match tag {
            1 => {
                let b = expect_len(f, at)?;
                utf8(b, at)?;
                key = r(at, b.len());
            }
            2 => {
                let b = expect_len(f, at)?;
                if depth == 0 {
                    return Err(err("recursion limit reached", at));
                }
                if let Some(v) = scan_any_value(buf, at, b.len(), depth - 1)? {
                    value = v;
                }
            }
            3 => {
                expect_varint(f, at)?;
            }
            _ => unknown(depth, at)?,
        }
    }
    Ok((key, value))
}

/// Validates an `AnyValue` body at `start` and returns the value it sets (its last oneof field),
/// or `None` when it sets none.
#[inline(always)]
pub(super) fn scan_any_value(
    buf: &[u8],
    start: usize,
    len: usize,
    depth: u32,
) -> Result<Option<ValueIdx>, ScanError> {
    let body = &buf[start..start + len];
    // Fast path: one scalar or short string field filling the body (what SDKs write).
    match *body {
        [0x0a, slen, ..] if usize::from(slen) + 2 == len && slen < 0x80 => {
            utf8(&body[2..], start + 2)?;
            return Ok(Some(ValueIdx::Str(
                (start + 2) as u32,
                (start + len) as u32,
            )));
        }
        [0x18, v] if v < 0x80 => return Ok(Some(ValueIdx::Int(i64::from(v)))),
        [0x10, v] if v < 0x80 => return Ok(Some(ValueIdx::Bool(v != 0))),
        [0x21, ..] if len == 9 => {
            let bits = u64::from_le_bytes(body[1..9].try_into().expect("8 bytes"));
            return Ok(Some(ValueIdx::Double(bits)));
        }
        _ => {}
    }
    let mut value = None;
    let mut pos = 0;
    while pos < body.len() {
        let field_start = pos;
        let (tag, f) = next_field(body, &mut pos, depth).map_err(|e| shifted(e, start))?;
        let at = payload_at(start, field_start, pos, &f);
        let end = (start + pos) as u32;
        value = Some(match tag {
            1 => {
                utf8(expect_len(f, at)?, at)?;
                ValueIdx::Str(at as u32, end)
            }
            2 => ValueIdx::Bool(expect_varint(f, at)? != 0),
            3 => ValueIdx::Int(expect_varint(f, at)? as i64),
            4 => ValueIdx::Double(expect_fixed64(f, at)?),
            5 => {
                nested(f, at, depth, check_array)?;
                ValueIdx::Array(at as u32, end)
            }
            6 => {
                nested(f, at, depth, check_kvlist)?;
                ValueIdx::KvList(at as u32, end)
            }
            7 => {
                expect_len(f, at)?;
                ValueIdx::Bytes(at as u32, end)
            }
            8 => {
                expect_varint(f, at)?;
                ValueIdx::Empty
            }
            _ => {
                unknown(depth, at)?;
                continue;
            }
        });
    }
    Ok(value)
}
