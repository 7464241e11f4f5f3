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

// ---------------------------------------------------------------------------------------------
// The schema: OTLP trace messages, their fields, numbers and JSON types.

#[derive(Clone, Copy)]
enum Kind {
    /// `string`.
    Str,
    /// `bytes` written as hex (trace and span ids).
    HexId,
    /// `fixed64` (timestamps).
    Fixed64,
    /// `fixed32` (flags).
    Fixed32,
    /// `uint32` (dropped counts).
    U32,
    /// `int32`.
    I32,
    /// An enum, by number or by one of these names (index = number).
    Enum(&'static [&'static str]),
    /// An optional message.
    Message(&'static MsgDef),
    /// A repeated message.
    Repeated(&'static MsgDef),
    /// A repeated string.
    RepeatedStr,
    /// An optional `AnyValue`.
    AnyValue,
    /// A repeated `AnyValue`.
    RepeatedAnyValue,
}

struct FieldDef {
    json: &'static str,
    proto: &'static str,
    number: u32,
    kind: Kind,
}

struct MsgDef {
    name: &'static str,
    /// Bytes reserved for this message's length prefix (its usual size).
    reserve: usize,
    fields: &'static [FieldDef],
}

const fn f(json: &'static str, proto: &'static str, number: u32, kind: Kind) -> FieldDef {
    FieldDef {
        json,
        proto,
        number,
        kind,
    }
}

static REQUEST: MsgDef = MsgDef {
    name: "ExportTraceServiceRequest",
    reserve: 0,
    fields: &[f(
        "resourceSpans",
        "resource_spans",
        1,
        Kind::Repeated(&RESOURCE_SPANS),
    )],
};

static RESOURCE_SPANS: MsgDef = MsgDef {
    name: "ResourceSpans",
    reserve: 3,
    fields: &[
        f("resource", "resource", 1, Kind::Message(&RESOURCE)),
        f("scopeSpans", "scope_spans", 2, Kind::Repeated(&SCOPE_SPANS)),
        f("schemaUrl", "schema_url", 3, Kind::Str),
    ],
};

static RESOURCE: MsgDef = MsgDef {
    name: "Resource",
    reserve: 2,
    fields: &[
        f("attributes", "attributes", 1, Kind::Repeated(&KEY_VALUE)),
        f(
            "droppedAttributesCount",
            "dropped_attributes_count",
            2,
            Kind::U32,
        ),
        f("entityRefs", "entity_refs", 3, Kind::Repeated(&ENTITY_REF)),
    ],
};

static ENTITY_REF: MsgDef = MsgDef {
    name: "EntityRef",
    reserve: 1,
    fields: &[
        f("schemaUrl", "schema_url", 1, Kind::Str),
        f("type", "type", 2, Kind::Str),
        f("idKeys", "id_keys", 3, Kind::RepeatedStr),
        f("descriptionKeys", "description_keys", 4, Kind::RepeatedStr),
    ],
};

static SCOPE_SPANS: MsgDef = MsgDef {
    name: "ScopeSpans",
    reserve: 3,
    fields: &[
        f("scope", "scope", 1, Kind::Message(&SCOPE)),
        f("spans", "spans", 2, Kind::Repeated(&SPAN)),
        f("schemaUrl", "schema_url", 3, Kind::Str),
    ],
};

static SCOPE: MsgDef = MsgDef {
    name: "InstrumentationScope",
    reserve: 1,
    fields: &[
        f("name", "name", 1, Kind::Str),
        f("version", "version", 2, Kind::Str),
        f("attributes", "attributes", 3, Kind::Repeated(&KEY_VALUE)),
        f(
            "droppedAttributesCount",
            "dropped_attributes_count",
            4,
            Kind::U32,
        ),
    ],
};

/// `Span.flags`, the one field whose number is out of its declaration order.
const SPAN_FLAGS: u32 = 16;

static SPAN: MsgDef = MsgDef {
    name: "Span",
    reserve: 2,
    fields: &[
        f("traceId", "trace_id", 1, Kind::HexId),
        f("spanId", "span_id", 2, Kind::HexId),
        f("traceState", "trace_state", 3, Kind::Str),
        f("parentSpanId", "parent_span_id", 4, Kind::HexId),
        f("flags", "flags", SPAN_FLAGS, Kind::Fixed32),
        f("name", "name", 5, Kind::Str),
        f("kind", "kind", 6, Kind::Enum(SPAN_KINDS)),
        f(
            "startTimeUnixNano",
            "start_time_unix_nano",
            7,
            Kind::Fixed64,
        ),
        f("endTimeUnixNano", "end_time_unix_nano", 8, Kind::Fixed64),
        f("attributes", "attributes", 9, Kind::Repeated(&KEY_VALUE)),
        f(
            "droppedAttributesCount",
            "dropped_attributes_count",
            10,
            Kind::U32,
        ),
        f("events", "events", 11, Kind::Repeated(&EVENT)),
        f("droppedEventsCount", "dropped_events_count", 12, Kind::U32),
        f("links", "links", 13, Kind::Repeated(&LINK)),
        f("droppedLinksCount", "dropped_links_count", 14, Kind::U32),
        f("status", "status", 15, Kind::Message(&STATUS)),
    ],
};

static EVENT: MsgDef = MsgDef {
    name: "Event",
    reserve: 1,
    fields: &[
        f("timeUnixNano", "time_unix_nano", 1, Kind::Fixed64),
        f("name", "name", 2, Kind::Str),
        f("attributes", "attributes", 3, Kind::Repeated(&KEY_VALUE)),
        f(
            "droppedAttributesCount",
            "dropped_attributes_count",
            4,
            Kind::U32,
        ),
    ],
};

static LINK: MsgDef = MsgDef {
    name: "Link",
    reserve: 1,
    fields: &[
        f("traceId", "trace_id", 1, Kind::HexId),
        f("spanId", "span_id", 2, Kind::HexId),
        f("traceState", "trace_state", 3, Kind::Str),
        f("attributes", "attributes", 4, Kind::Repeated(&KEY_VALUE)),
        f(
            "droppedAttributesCount",
            "dropped_attributes_count",
            5,
            Kind::U32,
        ),
        f("flags", "flags", 6, Kind::Fixed32),
    ],
};

static STATUS: MsgDef = MsgDef {
    name: "Status",
    reserve: 1,
    fields: &[
        f("message", "message", 2, Kind::Str),
        f("code", "code", 3, Kind::Enum(STATUS_CODES)),
    ],
};

static KEY_VALUE: MsgDef = MsgDef {
    name: "KeyValue",
    reserve: 1,
    fields: &[
        f("key", "key", 1, Kind::Str),
        f("value", "value", 2, Kind::AnyValue),
        f("keyStrindex", "key_strindex", 3, Kind::I32),
    ],
};

/// `AnyValue` is written by its own visitor (a oneof); this def only names it in messages.
static ANY_VALUE: MsgDef = MsgDef {
    name: "AnyValue",
    reserve: 1,
    fields: &[],
};

static ARRAY_VALUE: MsgDef = MsgDef {
    name: "ArrayValue",
    reserve: 1,
    fields: &[f("values", "values", 1, Kind::RepeatedAnyValue)],
};

static KEY_VALUE_LIST: MsgDef = MsgDef {
    name: "KeyValueList",
    reserve: 1,
    fields: &[f("values", "values", 1, Kind::Repeated(&KEY_VALUE))],
};

// ---------------------------------------------------------------------------------------------
// Protobuf writing.

const VARINT: u8 = 0;
const I64: u8 = 1;
const LEN: u8 = 2;
const I32: u8 = 5;

#[inline]
fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

#[inline]
fn varint_len(v: u64) -> usize {
    // 1 byte per 7 bits, at least one.
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
}

#[inline]
fn put_key(out: &mut Vec<u8>, field: u32, wire: u8) {
    put_varint(out, (u64::from(field) << 3) | u64::from(wire));
}

#[inline]
fn put_len_field(out: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    put_key(out, field, LEN);
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// An open length-delimited field: where its content starts and how many bytes were reserved
/// for its length.
struct Open {
    at: usize,
    reserve: usize,
}

#[inline]
fn open(out: &mut Vec<u8>, field: u32, reserve: usize) -> Open {
    put_key(out, field, LEN);
    let at = out.len();
    out.resize(at + reserve, 0);
    Open { at, reserve }
}

#[inline]
fn close(out: &mut Vec<u8>, o: Open) {
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

// ---------------------------------------------------------------------------------------------
// Visitors.

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

/// A scalar field. Defaults (0, "", empty ids) are left out, as prost leaves them out.
struct Scalar<'o> {
    out: &'o mut Vec<u8>,
    fd: &'static FieldDef,
}

/// What a scalar field accepts, for error messages.
fn expected(kind: Kind) -> &'static str {
    match kind {
        Kind::Str => "a string",
        Kind::HexId => "a hex string",
        Kind::Fixed64 => "an unsigned 64-bit integer (a number or a decimal string)",
        Kind::Fixed32 | Kind::U32 => "an unsigned 32-bit integer (a number or a decimal string)",
        Kind::I32 => "a 32-bit integer (a number or a decimal string)",
        Kind::Enum(_) => "an enum value (a number or a name)",
        _ => "a value",
    }
}

impl Scalar<'_> {
    fn put_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        let Scalar { out, fd } = self;
        let number = fd.number;
        match fd.kind {
            Kind::Fixed64 => {
                if v != 0 {
                    put_key(out, number, I64);
                    out.extend_from_slice(&v.to_le_bytes());
                }
            }
            Kind::Fixed32 | Kind::U32 => {
                let Ok(v) = u32::try_from(v) else {
                    return Err(E::custom(format_args!(
                        "{}: {v} is out of range for a 32-bit unsigned integer",
                        fd.json
                    )));
                };
                if v != 0 {
                    if matches!(fd.kind, Kind::Fixed32) {
                        put_key(out, number, I32);
                        out.extend_from_slice(&v.to_le_bytes());
                    } else {
                        put_key(out, number, VARINT);
                        put_varint(out, u64::from(v));
                    }
                }
            }
            Kind::I32 | Kind::Enum(_) => {
                let Ok(v) = i32::try_from(v) else {
                    return Err(E::custom(format_args!(
                        "{}: {v} is out of range for a 32-bit integer",
                        fd.json
                    )));
                };
                put_i32(out, number, v);
            }
            kind => {
                return Err(E::custom(format_args!(
                    "{}: invalid type: integer `{v}`, expected {}",
                    fd.json,
                    expected(kind)
                )))
            }
        }
        Ok(())
    }
}

#[inline]
fn put_i32(out: &mut Vec<u8>, number: u32, v: i32) {
    if v != 0 {
        put_key(out, number, VARINT);
        // int32 and enums are sign-extended to 64 bits on the wire.
        put_varint(out, i64::from(v) as u64);
    }
}

impl<'de> Visitor<'de> for Scalar<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.fd.json, expected(self.fd.kind))
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        self.put_u64(v)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        match self.fd.kind {
            Kind::I32 | Kind::Enum(_) => match i32::try_from(v) {
                Ok(v) => {
                    put_i32(self.out, self.fd.number, v);
                    Ok(())
                }
                Err(_) => Err(E::custom(format_args!(
                    "{}: {v} is out of range for a 32-bit integer",
                    self.fd.json
                ))),
            },
            _ if v >= 0 => self.put_u64(v as u64),
            _ => Err(E::invalid_type(de::Unexpected::Signed(v), &self)),
        }
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<(), E> {
        let name = self.fd.json;
        match self.fd.kind {
            Kind::Str => {
                if !s.is_empty() {
                    put_len_field(self.out, self.fd.number, s.as_bytes());
                }
                Ok(())
            }
            Kind::HexId => put_hex_id(self.out, self.fd.number, name, s),
            Kind::Fixed64 => match s.parse::<u64>() {
                Ok(v) => self.put_u64(v),
                Err(e) => Err(E::custom(format_args!("{name}: {s:?}: {e}"))),
            },
            Kind::Fixed32 | Kind::U32 => match s.trim().parse::<u32>() {
                Ok(v) => self.put_u64(u64::from(v)),
                Err(e) => Err(E::custom(format_args!("{name}: {s:?}: {e}"))),
            },
            Kind::I32 => match s.trim().parse::<i32>() {
                Ok(v) => {
                    put_i32(self.out, self.fd.number, v);
                    Ok(())
                }
                Err(e) => Err(E::custom(format_args!("{name}: {s:?}: {e}"))),
            },
            Kind::Enum(names) => {
                let v = match names.iter().position(|n| *n == s) {
                    Some(i) => i as i32,
                    None => s.trim().parse::<i32>().map_err(|_| {
                        E::custom(format_args!("{name}: {s:?} is not one of {names:?}"))
                    })?,
                };
                put_i32(self.out, self.fd.number, v);
                Ok(())
            }
            _ => Err(E::invalid_type(de::Unexpected::Str(s), &self)),
        }
    }
}

/// Writes a hex id as bytes. An id of odd length is kept as its characters (see [`super`]);
/// a `0x` prefix is accepted before an even number of digits.
fn put_hex_id<E: de::Error>(out: &mut Vec<u8>, number: u32, name: &str, s: &str) -> Result<(), E> {
    if s.is_empty() {
        return Ok(());
    }
    let digits = match s.strip_prefix("0x") {
        Some(rest) if rest.len() % 2 == 0 && rest.bytes().all(|b| b.is_ascii_hexdigit()) => rest,
        _ => s,
    };
    if let Some(bad) = digits.chars().find(|c| !c.is_ascii_hexdigit()) {
        return Err(E::custom(format_args!(
            "{name} {s:?} is not a hex string (found {bad:?})"
        )));
    }
    if digits.len() % 2 == 1 {
        put_len_field(out, number, digits.as_bytes());
        return Ok(());
    }
    put_key(out, number, LEN);
    put_varint(out, (digits.len() / 2) as u64);
    let at = out.len();
    out.resize(at + digits.len() / 2, 0);
    hex::decode_to_slice(digits, &mut out[at..])
        .map_err(|e| E::custom(format_args!("{name} {s:?}: {e}")))
}

/// An `AnyValue`: an object whose last non-null member is the value (or `null` outside arrays).
struct AnyValue<'o> {
    out: &'o mut Vec<u8>,
    field: u32,
    name: &'static str,
    in_array: bool,
}

impl<'de> DeserializeSeed<'de> for AnyValue<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for AnyValue<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: an OTLP/JSON AnyValue object", self.name)
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        if self.in_array {
            return Err(E::invalid_type(de::Unexpected::Unit, &self));
        }
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let out = self.out;
        let o = open(out, self.field, ANY_VALUE.reserve);
        let body = out.len();
        while let Some(member) = map.next_key_seed(MemberName)? {
            match member {
                Some(member) => map.next_value_seed(Member {
                    out: &mut *out,
                    body,
                    member,
                })?,
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        close(out, o);
        Ok(())
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum MemberKind {
    String = 1,
    Bool = 2,
    Int = 3,
    Double = 4,
    Array = 5,
    KvList = 6,
    Bytes = 7,
}

impl MemberKind {
    fn json(self) -> &'static str {
        match self {
            MemberKind::String => "stringValue",
            MemberKind::Bool => "boolValue",
            MemberKind::Int => "intValue",
            MemberKind::Double => "doubleValue",
            MemberKind::Array => "arrayValue",
            MemberKind::KvList => "kvlistValue",
            MemberKind::Bytes => "bytesValue",
        }
    }
}

struct MemberName;

impl<'de> DeserializeSeed<'de> for MemberName {
    type Value = Option<MemberKind>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_identifier(self)
    }
}

impl<'de> Visitor<'de> for MemberName {
    type Value = Option<MemberKind>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an AnyValue member name")
    }
    #[inline]
    fn visit_str<E: de::Error>(self, key: &str) -> Result<Self::Value, E> {
        Ok(match key {
            "stringValue" | "string_value" => Some(MemberKind::String),
            "boolValue" | "bool_value" => Some(MemberKind::Bool),
            "intValue" | "int_value" => Some(MemberKind::Int),
            "doubleValue" | "double_value" => Some(MemberKind::Double),
            "arrayValue" | "array_value" => Some(MemberKind::Array),
            "kvlistValue" | "kvlist_value" => Some(MemberKind::KvList),
            "bytesValue" | "bytes_value" => Some(MemberKind::Bytes),
            _ => None,
        })
    }
}

/// One member of an `AnyValue`. A non-null member replaces whatever an earlier one wrote.
struct Member<'o> {
    out: &'o mut Vec<u8>,
    /// Where the `AnyValue`'s content starts.
    body: usize,
    member: MemberKind,
}

impl<'de> DeserializeSeed<'de> for Member<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        match self.member {
            MemberKind::Array | MemberKind::KvList => {
                let def = if self.member == MemberKind::Array {
                    &ARRAY_VALUE
                } else {
                    &KEY_VALUE_LIST
                };
                d.deserialize_any(NestedList {
                    out: self.out,
                    body: self.body,
                    def,
                    field: self.member as u32,
                })
            }
            _ => d.deserialize_any(self),
        }
    }
}

impl Member<'_> {
    /// Drops an earlier member's encoding and returns the output to write this one into.
    fn start(&mut self) -> &mut Vec<u8> {
        self.out.truncate(self.body);
        &mut *self.out
    }

    fn put_double(mut self, v: f64) {
        let out = self.start();
        put_key(out, MemberKind::Double as u32, I64);
        out.extend_from_slice(&v.to_bits().to_le_bytes());
    }

    fn put_int(mut self, v: i64) {
        let out = self.start();
        put_key(out, MemberKind::Int as u32, VARINT);
        put_varint(out, v as u64);
    }
}

impl<'de> Visitor<'de> for Member<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.member {
            MemberKind::String => "a string",
            MemberKind::Bool => "true or false",
            MemberKind::Int => "a 64-bit integer (a number or a decimal string)",
            MemberKind::Double => {
                "a number, a numeric string, \"NaN\", \"Infinity\" or \"-Infinity\""
            }
            MemberKind::Bytes => "a base64 string",
            MemberKind::Array | MemberKind::KvList => "an object with \"values\"",
        };
        write!(f, "{}: {what}", self.member.json())
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_bool<E: de::Error>(mut self, v: bool) -> Result<(), E> {
        if self.member != MemberKind::Bool {
            return Err(E::invalid_type(de::Unexpected::Bool(v), &self));
        }
        let out = self.start();
        put_key(out, MemberKind::Bool as u32, VARINT);
        out.push(u8::from(v));
        Ok(())
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        match self.member {
            MemberKind::Int => match i64::try_from(v) {
                Ok(v) => {
                    self.put_int(v);
                    Ok(())
                }
                Err(_) => Err(E::custom(format_args!(
                    "intValue: {v} is out of range for a 64-bit integer"
                ))),
            },
            MemberKind::Double => {
                self.put_double(v as f64);
                Ok(())
            }
            _ => Err(E::invalid_type(de::Unexpected::Unsigned(v), &self)),
        }
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        match self.member {
            MemberKind::Int => {
                self.put_int(v);
                Ok(())
            }
            MemberKind::Double => {
                self.put_double(v as f64);
                Ok(())
            }
            _ => Err(E::invalid_type(de::Unexpected::Signed(v), &self)),
        }
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        if self.member != MemberKind::Double {
            return Err(E::invalid_type(de::Unexpected::Float(v), &self));
        }
        self.put_double(v);
        Ok(())
    }

    fn visit_str<E: de::Error>(mut self, s: &str) -> Result<(), E> {
        match self.member {
            MemberKind::String => {
                put_len_field(self.start(), MemberKind::String as u32, s.as_bytes());
                Ok(())
            }
            MemberKind::Int => match s.parse::<i64>() {
                Ok(v) => {
                    self.put_int(v);
                    Ok(())
                }
                Err(e) => Err(E::custom(format_args!("intValue: {s:?}: {e}"))),
            },
            MemberKind::Double => {
                let v = match s {
                    "NaN" => f64::NAN,
                    "Infinity" => f64::INFINITY,
                    "-Infinity" => f64::NEG_INFINITY,
                    _ => s.parse::<f64>().map_err(|_| {
                        E::custom(format_args!(
                            "doubleValue: {s:?} is not a number, \"NaN\", \"Infinity\" or \"-Infinity\""
                        ))
                    })?,
                };
                self.put_double(v);
                Ok(())
            }
            MemberKind::Bytes => {
                let out = self.start();
                put_bytes_value(out, s).map_err(|e| E::custom(format_args!("bytesValue: {e}")))
            }
            _ => Err(E::invalid_type(de::Unexpected::Str(s), &self)),
        }
    }
}

/// Writes a base64 `bytesValue` (standard alphabet first, then URL-safe; padding optional).
fn put_bytes_value(out: &mut Vec<u8>, s: &str) -> Result<(), base64::DecodeError> {
    use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
    use base64::engine::DecodePaddingMode;
    const LENIENT: GeneralPurposeConfig = GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true);
    const STANDARD: GeneralPurpose = GeneralPurpose::new(&base64::alphabet::STANDARD, LENIENT);
    const URL_SAFE: GeneralPurpose = GeneralPurpose::new(&base64::alphabet::URL_SAFE, LENIENT);
    put_key(out, MemberKind::Bytes as u32, LEN);
    let o = Open {
        at: out.len(),
        reserve: 1,
    };
    out.push(0);
    let body = out.len();
    if let Err(first) = STANDARD.decode_vec(s, out) {
        out.truncate(body);
        if URL_SAFE.decode_vec(s, out).is_err() {
            return Err(first);
        }
    }
    close(out, o);
    Ok(())
}

/// `arrayValue` / `kvlistValue`: `{"values": [...]}` (other members are skipped).
struct NestedList<'o> {
    out: &'o mut Vec<u8>,
    body: usize,
    def: &'static MsgDef,
    field: u32,
}

impl<'de> Visitor<'de> for NestedList<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "an OTLP/JSON {} object", self.def.name)
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<(), A::Error> {
        self.out.truncate(self.body);
        Msg {
            out: self.out,
            def: self.def,
            field: self.field,
            reserve: self.def.reserve,
            in_array: false,
        }
        .visit_map(map)
    }
}
