//! Attribute values as borrowed views, and encoders for the attributes and events tollgate adds.

use super::scan::FieldIter;
use super::view::{read_any_value, read_key_value_fields};

/// One attribute value, borrowed from the request it was read from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AttrValue<'a> {
    /// A string value.
    Str(&'a str),
    /// A boolean.
    Bool(bool),
    /// A signed 64-bit integer.
    Int(i64),
    /// A double.
    Double(f64),
    /// Raw bytes.
    Bytes(&'a [u8]),
    /// An array: the encoded `ArrayValue` message body.
    Array(ArrayRef<'a>),
    /// A key/value list: the encoded `KeyValueList` message body.
    KvList(KvListRef<'a>),
    /// An `AnyValue` with no value set.
    Empty,
}

impl<'a> AttrValue<'a> {
    /// The value as a string, when it is one.
    pub fn as_str(&self) -> Option<&'a str> {
        match self {
            AttrValue::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The value as an integer: an int, a double with no fractional part, or a string holding an
    /// integer (emitters differ). Returns `None` for anything else.
    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            AttrValue::Int(i) => Some(i),
            AttrValue::Double(d) if d.is_finite() && d.fract() == 0.0 && d.abs() < 9.0e15 => {
                Some(d as i64)
            }
            AttrValue::Str(s) => s.trim().parse().ok(),
            _ => None,
        }
    }

    /// The value as a double: a double, an int, or a string holding a number.
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            AttrValue::Double(d) => Some(d),
            AttrValue::Int(i) => Some(i as f64),
            AttrValue::Str(s) => s.trim().parse().ok(),
            _ => None,
        }
    }

    /// The value as a boolean: a bool, or the strings `true`/`false`.
    pub fn as_bool(&self) -> Option<bool> {
        match *self {
            AttrValue::Bool(b) => Some(b),
            AttrValue::Str(s) if s.eq_ignore_ascii_case("true") => Some(true),
            AttrValue::Str(s) if s.eq_ignore_ascii_case("false") => Some(false),
            _ => None,
        }
    }
}

/// An encoded `ArrayValue` (validated by the scan).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ArrayRef<'a>(pub(crate) &'a [u8]);

impl<'a> ArrayRef<'a> {
    /// Calls `f` for each element.
    pub fn for_each(&self, mut f: impl FnMut(AttrValue<'a>)) {
        for field in FieldIter::new(self.0) {
            if let Ok((1, super::scan::Field::Len(b))) = field {
                f(read_any_value(b));
            }
        }
    }
}

/// An encoded `KeyValueList` (validated by the scan).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KvListRef<'a>(pub(crate) &'a [u8]);

impl<'a> KvListRef<'a> {
    /// Calls `f` for each key/value pair.
    pub fn for_each(&self, mut f: impl FnMut(&'a str, AttrValue<'a>)) {
        for field in FieldIter::new(self.0) {
            if let Ok((1, super::scan::Field::Len(b))) = field {
                let (k, v) = read_key_value_fields(b);
                f(k, v);
            }
        }
    }
}

// === encoders ===

/// Appends a protobuf varint.
pub fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// The encoded length of a varint.
pub fn varint_len(v: u64) -> usize {
    // 1 byte per started group of 7 bits, at least 1.
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
}

fn put_tag(out: &mut Vec<u8>, field: u32, wire_type: u8) {
    put_varint(out, (u64::from(field) << 3) | u64::from(wire_type));
}

fn put_len_field(out: &mut Vec<u8>, field: u32, body: &[u8]) {
    put_tag(out, field, 2);
    put_varint(out, body.len() as u64);
    out.extend_from_slice(body);
}

/// A value to encode as a new attribute.
#[derive(Debug, Clone, PartialEq)]
pub enum NewValue<'a> {
    /// A string.
    Str(&'a str),
    /// An integer.
    Int(i64),
    /// A double.
    Double(f64),
    /// A boolean.
    Bool(bool),
}

fn encode_any_value(out: &mut Vec<u8>, value: &NewValue<'_>) {
    match value {
        NewValue::Str(s) => put_len_field(out, 1, s.as_bytes()),
        NewValue::Bool(b) => {
            put_tag(out, 2, 0);
            put_varint(out, u64::from(*b));
        }
        NewValue::Int(i) => {
            put_tag(out, 3, 0);
            put_varint(out, *i as u64);
        }
        NewValue::Double(d) => {
            put_tag(out, 4, 1);
            out.extend_from_slice(&d.to_le_bytes());
        }
    }
}

/// Encodes a `KeyValue` message body (key + value).
pub fn encode_key_value(out: &mut Vec<u8>, key: &str, value: &NewValue<'_>) {
    put_len_field(out, 1, key.as_bytes());
    let mut any = Vec::with_capacity(16);
    encode_any_value(&mut any, value);
    put_len_field(out, 2, &any);
}

/// Field number of `Span.attributes`.
pub const SPAN_ATTRIBUTES: u32 = 9;
/// Field number of `Span.events`.
pub const SPAN_EVENTS: u32 = 11;

/// Appends one span attribute (`Span.attributes`, field 9) as a complete field, ready to splice
/// onto the end of a span body.
pub fn push_span_attribute(out: &mut Vec<u8>, key: &str, value: NewValue<'_>) {
    let mut kv = Vec::with_capacity(key.len() + 24);
    encode_key_value(&mut kv, key, &value);
    put_len_field(out, SPAN_ATTRIBUTES, &kv);
}

/// Appends one span event (`Span.events`, field 11) with attributes, ready to splice onto the end
/// of a span body.
pub fn push_span_event(
    out: &mut Vec<u8>,
    time_unix_nano: u64,
    name: &str,
    attributes: &[(&str, NewValue<'_>)],
) {
    let mut ev = Vec::with_capacity(64);
    put_tag(&mut ev, 1, 1);
    ev.extend_from_slice(&time_unix_nano.to_le_bytes());
    put_len_field(&mut ev, 2, name.as_bytes());
    for (k, v) in attributes {
        let mut kv = Vec::with_capacity(k.len() + 24);
        encode_key_value(&mut kv, k, v);
        put_len_field(&mut ev, 3, &kv);
    }
    put_len_field(out, SPAN_EVENTS, &ev);
}
