//! Reading a scanned request: attribute values, and [`SpanRef`], the zero-copy view of one span
//! that processors read through [`SpanAttrs`].

use std::ops::Range;

use super::attr::{ArrayRef, AttrValue, KvListRef};
use super::scan::{AttrIdx, Field, FieldIter, RequestIndex, SpanIdx, ValueIdx};
use super::SpanAttrs;

// === reading values (after a successful scan) ===

/// Reads an `AnyValue` body. Only called on bytes the scan validated.
pub(crate) fn read_any_value(buf: &[u8]) -> AttrValue<'_> {
    any_value_if_set(buf).unwrap_or(AttrValue::Empty)
}

/// The value an `AnyValue` body sets (its last oneof field), or `None` when it sets none — which
/// matters because prost merges repeated occurrences of a message: an empty occurrence changes nothing.
fn any_value_if_set(buf: &[u8]) -> Option<AttrValue<'_>> {
    let mut value = None;
    for f in FieldIter::new(buf) {
        let Ok((tag, f)) = f else { break };
        value = Some(match (tag, f) {
            (1, Field::Len(b)) => AttrValue::Str(std::str::from_utf8(b).unwrap_or_default()),
            (2, Field::Varint(v)) => AttrValue::Bool(v != 0),
            (3, Field::Varint(v)) => AttrValue::Int(v as i64),
            (4, Field::Fixed64(v)) => AttrValue::Double(f64::from_bits(v)),
            (5, Field::Len(b)) => AttrValue::Array(ArrayRef(b)),
            (6, Field::Len(b)) => AttrValue::KvList(KvListRef(b)),
            (7, Field::Len(b)) => AttrValue::Bytes(b),
            (8, Field::Varint(_)) => AttrValue::Empty,
            _ => continue,
        });
    }
    value
}

/// Reads a `KeyValue` body into key and value. Only called on bytes the scan validated.
/// (When one `KeyValue` repeats its value as two arrays, prost concatenates them; this view shows
/// the last one. Forwarded bytes are never affected.)
pub(crate) fn read_key_value_fields(buf: &[u8]) -> (&str, AttrValue<'_>) {
    let mut key = "";
    let mut value = AttrValue::Empty;
    for f in FieldIter::new(buf) {
        match f {
            Ok((1, Field::Len(b))) => key = std::str::from_utf8(b).unwrap_or_default(),
            Ok((2, Field::Len(b))) => {
                if let Some(v) = any_value_if_set(b) {
                    value = v;
                }
            }
            Ok(_) => {}
            Err(_) => break,
        }
    }
    (key, value)
}

// === the zero-copy span view ===

/// A view of one indexed span in a scanned request.
#[derive(Debug, Clone, Copy)]
pub struct SpanRef<'a> {
    buf: &'a [u8],
    index: &'a RequestIndex,
    span: &'a SpanIdx,
}

impl<'a> SpanRef<'a> {
    /// A view of span number `i` of a request scanned into `index`.
    pub fn new(buf: &'a [u8], index: &'a RequestIndex, i: usize) -> Self {
        Self {
            buf,
            index,
            span: &index.spans[i],
        }
    }

    /// The span's index entry.
    pub fn idx(&self) -> &'a SpanIdx {
        self.span
    }

    fn slice(&self, r: &Range<u32>) -> &'a [u8] {
        &self.buf[r.start as usize..r.end as usize]
    }

    /// Calls `f` for each event of the span: (time, name).
    pub fn for_each_event(&self, f: &mut dyn FnMut(u64, &'a str)) {
        for field in FieldIter::new(self.slice(&self.span.body)) {
            if let Ok((11, Field::Len(ev))) = field {
                let mut time = 0;
                let mut name = "";
                for g in FieldIter::new(ev) {
                    match g {
                        Ok((1, Field::Fixed64(t))) => time = t,
                        Ok((2, Field::Len(n))) => name = std::str::from_utf8(n).unwrap_or_default(),
                        _ => {}
                    }
                }
                f(time, name);
            }
        }
    }

    /// Calls `f` for each span attribute with the byte range of its whole field within the
    /// request (so an editor can remove it).
    pub fn for_each_attribute_field(&self, f: &mut dyn FnMut(&'a str, AttrValue<'a>, Range<u32>)) {
        for a in self.attrs() {
            f(self.str_at(&a.key), self.value(a.value), a.field.clone());
        }
    }

    /// The span's attributes as the scan indexed them (keys and values are read with
    /// [`SpanRef::key`] and [`SpanRef::value`]).
    pub fn attrs(&self) -> &'a [AttrIdx] {
        let r = &self.span.attrs;
        &self.index.attrs[r.start as usize..r.end as usize]
    }

    /// The attributes of the span's resource, as the scan indexed them.
    pub fn resource_attrs(&self) -> &'a [AttrIdx] {
        let scope = &self.index.scopes[self.span.scope as usize];
        let r = &self.index.resources[scope.resource as usize].attrs;
        &self.index.resource_attrs[r.start as usize..r.end as usize]
    }

    /// The key of an indexed attribute, as bytes (compare these before converting anything).
    #[inline]
    pub fn key_bytes(&self, a: &AttrIdx) -> &'a [u8] {
        self.slice(&a.key)
    }

    /// The key of an indexed attribute.
    #[inline]
    pub fn key(&self, a: &AttrIdx) -> &'a str {
        self.str_at(&a.key)
    }

    /// The value of an indexed attribute.
    #[inline]
    pub fn value(&self, v: ValueIdx) -> AttrValue<'a> {
        let b = |s: u32, e: u32| &self.buf[s as usize..e as usize];
        match v {
            ValueIdx::Empty => AttrValue::Empty,
            ValueIdx::Str(s, e) => AttrValue::Str(std::str::from_utf8(b(s, e)).unwrap_or_default()),
            ValueIdx::Bool(x) => AttrValue::Bool(x),
            ValueIdx::Int(i) => AttrValue::Int(i),
            ValueIdx::Double(bits) => AttrValue::Double(f64::from_bits(bits)),
            ValueIdx::Bytes(s, e) => AttrValue::Bytes(b(s, e)),
            ValueIdx::Array(s, e) => AttrValue::Array(ArrayRef(b(s, e))),
            ValueIdx::KvList(s, e) => AttrValue::KvList(KvListRef(b(s, e))),
        }
    }

    /// A string the scan validated (never fails after a successful scan).
    #[inline]
    fn str_at(&self, r: &Range<u32>) -> &'a str {
        std::str::from_utf8(self.slice(r)).unwrap_or_default()
    }
}

/// The last attribute in `attrs` whose key is `key`, compared as bytes.
fn find<'a>(span: &SpanRef<'a>, attrs: &'a [AttrIdx], key: &str) -> Option<&'a AttrIdx> {
    attrs
        .iter()
        .rev()
        .find(|a| span.key_bytes(a) == key.as_bytes())
}

impl<'a> SpanAttrs<'a> for SpanRef<'a> {
    fn name(&self) -> &'a str {
        std::str::from_utf8(self.slice(&self.span.name)).unwrap_or_default()
    }
    fn kind(&self) -> i32 {
        self.span.kind
    }
    fn trace_id(&self) -> &'a [u8] {
        self.slice(&self.span.trace_id)
    }
    fn span_id(&self) -> &'a [u8] {
        self.slice(&self.span.span_id)
    }
    fn parent_span_id(&self) -> &'a [u8] {
        self.slice(&self.span.parent_span_id)
    }
    fn start_time_unix_nano(&self) -> u64 {
        self.span.start
    }
    fn end_time_unix_nano(&self) -> u64 {
        self.span.end
    }
    fn status_code(&self) -> i32 {
        self.span.status_code
    }
    fn scope_name(&self) -> &'a str {
        let scope = &self.index.scopes[self.span.scope as usize];
        std::str::from_utf8(self.slice(&scope.name)).unwrap_or_default()
    }
    fn scope_version(&self) -> &'a str {
        let scope = &self.index.scopes[self.span.scope as usize];
        std::str::from_utf8(self.slice(&scope.version)).unwrap_or_default()
    }
    fn for_each_attribute(&self, f: &mut dyn FnMut(&'a str, AttrValue<'a>)) {
        for a in self.attrs() {
            f(self.key(a), self.value(a.value));
        }
    }
    fn for_each_resource_attribute(&self, f: &mut dyn FnMut(&'a str, AttrValue<'a>)) {
        for a in self.resource_attrs() {
            f(self.key(a), self.value(a.value));
        }
    }
    fn attribute(&self, key: &str) -> Option<AttrValue<'a>> {
        find(self, self.attrs(), key).map(|a| self.value(a.value))
    }
    fn resource_attribute(&self, key: &str) -> Option<AttrValue<'a>> {
        find(self, self.resource_attrs(), key).map(|a| self.value(a.value))
    }
    fn attribute_entry(&self, key: &str) -> Option<(&'a str, AttrValue<'a>)> {
        find(self, self.attrs(), key).map(|a| (self.key(a), self.value(a.value)))
    }
    fn resource_attribute_entry(&self, key: &str) -> Option<(&'a str, AttrValue<'a>)> {
        find(self, self.resource_attrs(), key).map(|a| (self.key(a), self.value(a.value)))
    }
}
