//! The validating walk over an encoded `ExportTraceServiceRequest`.
//!
//! [`scan`] accepts exactly the byte strings prost's decoder accepts for this message (same wire
//! types, UTF-8 strings, varint rules, recursion limit; unknown fields skipped), so a request that
//! passes the scan can be forwarded byte for byte and every backend will decode it. While walking it
//! records, per span, the offsets of the fields processors read and of every attribute, in a few
//! `Vec`s per request (read through [`super::view::SpanRef`]).

use std::ops::Range;

mod check;
mod field;
mod index;

use check::*;
use field::*;
pub(crate) use field::{Field, FieldIter};
use index::*;
/// Why a request is not a valid `ExportTraceServiceRequest`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid protobuf: {reason} at byte {offset}")]
pub struct ScanError {
    /// What was wrong.
    pub reason: &'static str,
    /// Offset from the start of the request.
    pub offset: usize,
}

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
