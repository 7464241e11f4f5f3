//! The validating walk over an encoded `ExportTraceServiceRequest`.
//!
//! [`scan`] accepts exactly the byte strings prost's decoder accepts for this message (same wire
//! types, UTF-8 strings, varint rules, recursion limit; unknown fields skipped), so a request that
//! passes the scan can be forwarded byte for byte and every backend will decode it. While walking it
//! records, per span, the offsets of the fields processors read and of every attribute, in a few
//! `Vec`s per request (read through [`super::view::SpanRef`]).

use std::ops::Range;

/// Why a request is not a valid `ExportTraceServiceRequest`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid protobuf: {reason} at byte {offset}")]
pub struct ScanError {
    /// What was wrong.
    pub reason: &'static str,
    /// Offset from the start of the request.
    pub offset: usize,
}

/// prost's default recursion limit for nested messages.
const RECURSION_LIMIT: u32 = 100;

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
fn read_varint_slow(buf: &[u8], pos: &mut usize) -> Option<u64> {
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

fn err(reason: &'static str, offset: usize) -> ScanError {
    ScanError { reason, offset }
}

/// Reads one field (key + payload) at `pos`. Groups are skipped whole, as prost skips them.
#[inline(always)]
fn next_field<'a>(
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

fn skip_group(buf: &[u8], pos: &mut usize, tag: u32, depth: u32) -> Result<(), ScanError> {
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

// === validation of each message type ===
//
// Each `check_*` walks one message body at a known absolute offset `base` (for error offsets),
// with `depth` nested levels still allowed, and enforces the wire type of every known field.

type Check = fn(&[u8], usize, u32) -> Result<(), ScanError>;

/// Walks a message body, validating known fields with `on_field`.
#[inline]
fn walk<'a>(
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

fn expect_len<'a>(field: Field<'a>, at: usize) -> Result<&'a [u8], ScanError> {
    match field {
        Field::Len(b) => Ok(b),
        _ => Err(err("invalid wire type", at)),
    }
}

fn expect_str(field: Field<'_>, at: usize) -> Result<(), ScanError> {
    utf8(expect_len(field, at)?, at)
}

fn expect_varint(field: Field<'_>, at: usize) -> Result<u64, ScanError> {
    match field {
        Field::Varint(v) => Ok(v),
        _ => Err(err("invalid wire type", at)),
    }
}

fn expect_fixed64(field: Field<'_>, at: usize) -> Result<u64, ScanError> {
    match field {
        Field::Fixed64(v) => Ok(v),
        _ => Err(err("invalid wire type", at)),
    }
}

fn expect_fixed32(field: Field<'_>, at: usize) -> Result<u32, ScanError> {
    match field {
        Field::Fixed32(v) => Ok(v),
        _ => Err(err("invalid wire type", at)),
    }
}

fn nested(field: Field<'_>, at: usize, depth: u32, check: Check) -> Result<(), ScanError> {
    let b = expect_len(field, at)?;
    if depth == 0 {
        return Err(err("recursion limit reached", at));
    }
    check(b, at, depth - 1)
}

/// An unknown field is skipped, but prost refuses even that once the recursion limit is reached.
fn unknown(depth: u32, at: usize) -> Result<(), ScanError> {
    if depth == 0 {
        Err(err("recursion limit reached", at))
    } else {
        Ok(())
    }
}

fn check_any_value(buf: &[u8], base: usize, depth: u32) -> Result<(), ScanError> {
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

fn check_array(buf: &[u8], base: usize, depth: u32) -> Result<(), ScanError> {
    walk(buf, base, depth, |tag, f, at| match tag {
        1 => nested(f, at, depth, check_any_value),
        _ => unknown(depth, at),
    })
}

fn check_kvlist(buf: &[u8], base: usize, depth: u32) -> Result<(), ScanError> {
    walk(buf, base, depth, |tag, f, at| match tag {
        1 => nested(f, at, depth, check_key_value),
        _ => unknown(depth, at),
    })
}

fn check_key_value(buf: &[u8], base: usize, depth: u32) -> Result<(), ScanError> {
    walk(buf, base, depth, |tag, f, at| match tag {
        1 => expect_str(f, at),
        2 => nested(f, at, depth, check_any_value),
        3 => expect_varint(f, at).map(|_| ()),
        _ => unknown(depth, at),
    })
}

fn check_entity_ref(buf: &[u8], base: usize, depth: u32) -> Result<(), ScanError> {
    walk(buf, base, depth, |tag, f, at| match tag {
        1..=4 => expect_str(f, at),
        _ => unknown(depth, at),
    })
}

fn check_scope(buf: &[u8], base: usize, depth: u32) -> Result<(), ScanError> {
    walk(buf, base, depth, |tag, f, at| match tag {
        1 | 2 => expect_str(f, at),
        3 => nested(f, at, depth, check_key_value),
        4 => expect_varint(f, at).map(|_| ()),
        _ => unknown(depth, at),
    })
}

fn check_event(buf: &[u8], base: usize, depth: u32) -> Result<(), ScanError> {
    walk(buf, base, depth, |tag, f, at| match tag {
        1 => expect_fixed64(f, at).map(|_| ()),
        2 => expect_str(f, at),
        3 => nested(f, at, depth, check_key_value),
        4 => expect_varint(f, at).map(|_| ()),
        _ => unknown(depth, at),
    })
}

fn check_link(buf: &[u8], base: usize, depth: u32) -> Result<(), ScanError> {
    walk(buf, base, depth, |tag, f, at| match tag {
        1 | 2 => expect_len(f, at).map(|_| ()),
        3 => expect_str(f, at),
        4 => nested(f, at, depth, check_key_value),
        5 => expect_varint(f, at).map(|_| ()),
        6 => expect_fixed32(f, at).map(|_| ()),
        _ => unknown(depth, at),
    })
}

fn check_status(buf: &[u8], base: usize, depth: u32) -> Result<(), ScanError> {
    walk(buf, base, depth, |tag, f, at| match tag {
        2 => expect_str(f, at),
        3 => expect_varint(f, at).map(|_| ()),
        _ => unknown(depth, at),
    })
}

// === the index ===

/// Where one resource (a `ResourceSpans` entry) sits in the request.
#[derive(Debug, Clone)]
pub struct ResourceIdx {
    /// The whole field, tag and length prefix included.
    pub field: Range<u32>,
    /// The `ResourceSpans` body.
    pub body: Range<u32>,
    /// The resource's attributes: a range of [`RequestIndex::resource_attrs`].
    pub attrs: Range<u32>,
}

/// Where one attribute (`KeyValue`) sits, read once by the scan so that processors never walk
/// the encoded fields again.
#[derive(Debug, Clone)]
pub struct AttrIdx {
    /// The whole `KeyValue` field within its span or resource, tag and length prefix included.
    pub field: Range<u32>,
    /// The key (validated UTF-8).
    pub key: Range<u32>,
    /// The value, as prost would read it (the last set value of the last `AnyValue`).
    pub value: ValueIdx,
}

/// An attribute value as positions in the request (see [`AttrIdx`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ValueIdx {
    /// No value set.
    Empty,
    /// A string (validated UTF-8): start and end.
    Str(u32, u32),
    /// A boolean.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A double (its bits).
    Double(u64),
    /// Bytes: start and end.
    Bytes(u32, u32),
    /// An `ArrayValue` body: start and end.
    Array(u32, u32),
    /// A `KeyValueList` body: start and end.
    KvList(u32, u32),
}

/// Where one `ScopeSpans` entry sits.
#[derive(Debug, Clone)]
pub struct ScopeIdx {
    /// Index into [`RequestIndex::resources`].
    pub resource: u32,
    /// The whole field, tag and length prefix included.
    pub field: Range<u32>,
    /// The `ScopeSpans` body.
    pub body: Range<u32>,
    /// The scope name (empty range when absent).
    pub name: Range<u32>,
    /// The scope version (empty range when absent).
    pub version: Range<u32>,
}

/// Where one span sits, with the fixed fields processors read most.
#[derive(Debug, Clone)]
pub struct SpanIdx {
    /// Index into [`RequestIndex::scopes`].
    pub scope: u32,
    /// The whole field, tag and length prefix included.
    pub field: Range<u32>,
    /// The `Span` body.
    pub body: Range<u32>,
    /// `trace_id` bytes.
    pub trace_id: Range<u32>,
    /// `span_id` bytes.
    pub span_id: Range<u32>,
    /// `parent_span_id` bytes.
    pub parent_span_id: Range<u32>,
    /// `name`.
    pub name: Range<u32>,
    /// `kind`.
    pub kind: i32,
    /// `status.code` (0 when absent).
    pub status_code: i32,
    /// `start_time_unix_nano`.
    pub start: u64,
    /// `end_time_unix_nano`.
    pub end: u64,
    /// The span's attributes: a range of [`RequestIndex::attrs`].
    pub attrs: Range<u32>,
}

/// The result of a successful [`scan`]: where everything is.
#[derive(Debug, Clone, Default)]
pub struct RequestIndex {
    /// Every `ResourceSpans`, in order.
    pub resources: Vec<ResourceIdx>,
    /// Every `ScopeSpans`, in order.
    pub scopes: Vec<ScopeIdx>,
    /// Every span, in order.
    pub spans: Vec<SpanIdx>,
    /// Every span attribute, span by span.
    pub attrs: Vec<AttrIdx>,
    /// Every resource attribute, resource by resource.
    pub resource_attrs: Vec<AttrIdx>,
}

fn r(range_start: usize, len: usize) -> Range<u32> {
    range_start as u32..(range_start + len) as u32
}

/// Validates `buf` as an `ExportTraceServiceRequest` and indexes its spans.
///
/// Fails exactly when prost's decoder would (checked by the fuzz target `wire_roundtrip`).
/// Requests of 4 GiB or more are refused (receivers cap far below that).
pub fn scan(buf: &[u8]) -> Result<RequestIndex, ScanError> {
    if buf.len() >= u32::MAX as usize {
        return Err(err("request too large", 0));
    }
    // Sized for the typical request (~600 bytes and ~12 attributes per span) so that the vectors
    // rarely grow while scanning.
    let mut index = RequestIndex {
        resources: Vec::with_capacity(4),
        scopes: Vec::with_capacity(8),
        spans: Vec::with_capacity((buf.len() / 400).min(1 << 14) + 1),
        attrs: Vec::with_capacity((buf.len() / 40).min(1 << 16) + 1),
        resource_attrs: Vec::with_capacity(32),
    };
    let depth = RECURSION_LIMIT;
    let mut pos = 0;
    while pos < buf.len() {
        let field_start = pos;
        let (tag, field) = next_field(buf, &mut pos, depth)?;
        if tag != 1 {
            continue;
        }
        let body = expect_len(field, field_start)?;
        let body_start = pos - body.len();
        let resource = index.resources.len() as u32;
        let first_attr = index.resource_attrs.len() as u32;
        index.resources.push(ResourceIdx {
            field: field_start as u32..pos as u32,
            body: r(body_start, body.len()),
            attrs: 0..0,
        });
        scan_resource_spans(buf, body_start, body.len(), resource, depth - 1, &mut index)?;
        index.resources[resource as usize].attrs = first_attr..index.resource_attrs.len() as u32;
    }
    Ok(index)
}

/// Walks the fields of the message body at `buf[start..start + len]`, calling `f` with each
/// field's tag, payload, whole-field range and payload offset (all absolute).
#[inline(always)]
fn for_each_field<'a>(
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
fn nested_body<'a>(field: Field<'a>, at: usize, depth: u32) -> Result<&'a [u8], ScanError> {
    let b = expect_len(field, at)?;
    if depth == 0 {
        return Err(err("recursion limit reached", at));
    }
    Ok(b)
}

fn scan_resource_spans(
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

fn scan_scope_spans(
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
fn offset_in(outer: &[u8], inner: &[u8]) -> Range<u32> {
    let start = inner.as_ptr() as usize - outer.as_ptr() as usize;
    r(start, inner.len())
}

/// The absolute offset of a field's payload: where a length-delimited payload starts, else the
/// field's own start (for error offsets).
#[inline(always)]
fn payload_at(base: usize, start: usize, pos: usize, field: &Field<'_>) -> usize {
    match field {
        Field::Len(b) => base + pos - b.len(),
        _ => base + start,
    }
}

#[inline(always)]
fn shifted(e: ScanError, base: usize) -> ScanError {
    ScanError {
        offset: base + e.offset,
        ..e
    }
}

/// UTF-8 validation as prost does it (`str::from_utf8`), with a branch-free ASCII test first: most
/// keys and values are short ASCII strings, for which the OR of all bytes (vectorised by the
/// compiler) is far cheaper than the general validator's per-call setup.
#[inline(always)]
fn utf8(b: &[u8], at: usize) -> Result<(), ScanError> {
    if b.iter().fold(0u8, |acc, &c| acc | c) < 0x80 || std::str::from_utf8(b).is_ok() {
        Ok(())
    } else {
        Err(err("invalid string value: data is not UTF-8 encoded", at))
    }
}

fn scan_span(
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
fn scan_attribute(
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
fn scan_resource(
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
fn scan_key_value(
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
fn scan_any_value(
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
