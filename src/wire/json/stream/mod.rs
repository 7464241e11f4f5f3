//! OTLP/JSON straight to protobuf bytes, in one streaming pass.
//!
//! sonic-rs's serde [`Deserializer`](sonic_rs::Deserializer) tokenises the body (SIMD string
//! scanning and UTF-8 validation; it measured 1.6–2x faster than serde_json's under these same
//! visitors, see BENCHMARKS.md); the visitors here write each value as protobuf the moment it is
//! read. There is no intermediate tree and no allocation per value: strings without escapes are
//! copied from the input into the output (the tokeniser hands them over borrowed), escaped
//! strings go through its one reused scratch buffer, hex ids and base64 bytes are decoded
//! straight into the output. The output vector is the only allocation that grows with the body.
//!
//! Nested messages are written length-first: a message reserves the bytes its length prefix
//! usually needs (1 for a key/value pair, 2 for a span, 3 for a scope's span list), writes its
//! fields, and on closing writes the length, moving its content by a byte or two in the rare case
//! the guess was wrong. Fields are written in the order the JSON gives them and default values are
//! left out, as prost does, so a body in the usual field order becomes exactly the bytes prost
//! would encode.
//!
//! **The proto3 JSON mapping**, as OTLP/JSON specifies it:
//! - field names in lowerCamelCase or as the proto spells them (`traceId` or `trace_id`);
//!   unknown fields are skipped (their values still have to be valid JSON); `null` is the default;
//! - `traceId`/`spanId`/`parentSpanId` as hex (either case; see [`super`] for ids of odd length);
//! - 64-bit integers as numbers or decimal strings; 32-bit ones too (strings may be padded with
//!   spaces);
//! - enums (`kind`, `status.code`) by number, by name (`SPAN_KIND_SERVER`), or as a numeric string;
//! - `doubleValue` as a number, `"NaN"`, `"Infinity"`, `"-Infinity"` or a numeric string;
//! - `bytesValue` as base64 (standard or URL-safe alphabet, padded or not);
//! - an `AnyValue` with several members takes the last one that is not `null`.
//!
//! **Memory bound.** Every JSON construct is at least as long as the protobuf it becomes, except
//! numbers written as fixed-width fields and messages' length prefixes; the worst case is
//! `"kind":-1` (9 bytes of JSON, 11 of protobuf). So the output is at most
//! [`MAX_EXPANSION_NUM`]/[`MAX_EXPANSION_DEN`] of the input plus [`MAX_EXPANSION_SLACK`] bytes
//! ([`output_bound`]); the output buffer starts at the input's length and, if it must grow,
//! grows once, to twice the input's length (a parse holds at most 3x the body, 4x for the
//! instant of that reallocation). Parsing holds nothing else that grows with the body
//! except the tokeniser's scratch buffer (at most the longest escaped string); nesting is capped
//! at 128 levels by sonic-rs (values of unknown fields are skipped without recursion).

use std::fmt;

use super::{SPAN_KINDS, STATUS_CODES};

use base64::Engine;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

mod any_value;
mod proto;
mod scalar;
mod schema;

use any_value::AnyValue;
use proto::*;
use scalar::Scalar;
use schema::*;
/// The output is at most `input * NUM / DEN + SLACK` bytes (see the module docs).
pub const MAX_EXPANSION_NUM: usize = 5;
/// See [`MAX_EXPANSION_NUM`].
pub const MAX_EXPANSION_DEN: usize = 4;
/// See [`MAX_EXPANSION_NUM`].
pub const MAX_EXPANSION_SLACK: usize = 16;

/// The largest protobuf encoding an OTLP/JSON body of `json_len` bytes can become.
pub fn output_bound(json_len: usize) -> usize {
    json_len / MAX_EXPANSION_DEN * MAX_EXPANSION_NUM + MAX_EXPANSION_NUM + MAX_EXPANSION_SLACK
}

/// Parses an OTLP/JSON `ExportTraceServiceRequest` into its protobuf encoding.
pub fn convert(json: &[u8]) -> Result<Vec<u8>, sonic_rs::Error> {
    let mut out = Vec::with_capacity(json.len());
    let mut de = sonic_rs::Deserializer::from_slice(json);
    Msg {
        out: &mut out,
        def: &REQUEST,
        field: 0,
        reserve: 0,
        in_array: false,
    }
    .deserialize(&mut de)?;
    de.end()?;
    if out.capacity() > json.len() && out.capacity() > out.len() + out.len() / 2 + 4096 {
        out.shrink_to_fit();
    }
    Ok(out)
}

/// One message: a JSON object (or `null`, or — inside an array — an error for `null`).
struct Msg<'o> {
    out: &'o mut Vec<u8>,
    def: &'static MsgDef,
    /// The field number this message is written under; 0 for the top level (no key, no length).
    field: u32,
    reserve: usize,
    in_array: bool,
}

impl<'de> DeserializeSeed<'de> for Msg<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Msg<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "an OTLP/JSON {} object", self.def.name)
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        if self.in_array || self.field == 0 {
            return Err(E::invalid_type(de::Unexpected::Unit, &self));
        }
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let out = self.out;
        let opened = (self.field != 0).then(|| open(out, self.field, self.reserve));
        // A span's `flags` (field 16) is written last, where prost puts it (fields go out in
        // number order), whatever its place in the JSON: 6 bytes, key and fixed32.
        let mut flags: Option<[u8; 6]> = None;
        while let Some(field) = map.next_key_seed(FieldName(self.def))? {
            match field {
                Some(fd) => {
                    let before = out.len();
                    map.next_value_seed(Value { out: &mut *out, fd })?;
                    if fd.number == SPAN_FLAGS && std::ptr::eq(self.def, &SPAN) {
                        flags = out[before..].try_into().ok();
                        out.truncate(before);
                    }
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        if let Some(flags) = flags {
            out.extend_from_slice(&flags);
        }
        if let Some(o) = opened {
            close(out, o);
        }
        Ok(())
    }
}

/// A key of a message: the field it names, or `None` for an unknown field.
struct FieldName(&'static MsgDef);

impl<'de> DeserializeSeed<'de> for FieldName {
    type Value = Option<&'static FieldDef>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_identifier(self)
    }
}

impl<'de> Visitor<'de> for FieldName {
    type Value = Option<&'static FieldDef>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a field name of {}", self.0.name)
    }

    #[inline]
    fn visit_str<E: de::Error>(self, key: &str) -> Result<Self::Value, E> {
        Ok(self
            .0
            .fields
            .iter()
            .find(|fd| fd.json == key || fd.proto == key))
    }
}

/// The value of one known field.
struct Value<'o> {
    out: &'o mut Vec<u8>,
    fd: &'static FieldDef,
}

impl<'de> DeserializeSeed<'de> for Value<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        let Value { out, fd } = self;
        match fd.kind {
            Kind::Message(def) => d.deserialize_any(Msg {
                out,
                def,
                field: fd.number,
                reserve: def.reserve,
                in_array: false,
            }),
            Kind::Repeated(def) => d.deserialize_any(Repeated {
                out,
                fd,
                item: Item::Msg(def),
            }),
            Kind::RepeatedAnyValue => d.deserialize_any(Repeated {
                out,
                fd,
                item: Item::AnyValue,
            }),
            Kind::RepeatedStr => d.deserialize_any(Repeated {
                out,
                fd,
                item: Item::Str,
            }),
            Kind::AnyValue => d.deserialize_any(AnyValue {
                out,
                field: fd.number,
                name: fd.json,
                in_array: false,
            }),
            _ => d.deserialize_any(Scalar { out, fd }),
        }
    }
}

#[derive(Clone, Copy)]
enum Item {
    Msg(&'static MsgDef),
    AnyValue,
    Str,
}

/// A repeated field: a JSON array (or `null`: empty).
struct Repeated<'o> {
    out: &'o mut Vec<u8>,
    fd: &'static FieldDef,
    item: Item,
}

impl<'de> Visitor<'de> for Repeated<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: an array", self.fd.json)
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let out = self.out;
        let field = self.fd.number;
        match self.item {
            Item::Msg(def) => {
                while seq
                    .next_element_seed(Msg {
                        out: &mut *out,
                        def,
                        field,
                        reserve: def.reserve,
                        in_array: true,
                    })?
                    .is_some()
                {}
            }
            Item::AnyValue => {
                while seq
                    .next_element_seed(AnyValue {
                        out: &mut *out,
                        field,
                        name: self.fd.json,
                        in_array: true,
                    })?
                    .is_some()
                {}
            }
            Item::Str => {
                while seq
                    .next_element_seed(ArrayStr {
                        out: &mut *out,
                        fd: self.fd,
                    })?
                    .is_some()
                {}
            }
        }
        Ok(())
    }
}

/// One string of a repeated string field (written even when empty; `null` is an error).
struct ArrayStr<'o> {
    out: &'o mut Vec<u8>,
    fd: &'static FieldDef,
}

impl<'de> DeserializeSeed<'de> for ArrayStr<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for ArrayStr<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: an array of strings", self.fd.json)
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<(), E> {
        put_len_field(self.out, self.fd.number, s.as_bytes());
        Ok(())
    }
}
